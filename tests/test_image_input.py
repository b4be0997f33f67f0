"""Pictures as hostile input (issue 9): a bounded regular file, a bounded number of pixels decoded reduced,
EXIF orientation, every pixel mode read by its real range, no NaN from ink that vanishes, and whatever Pillow
raises on a damaged file turned into one line."""

from __future__ import annotations

import io
import os
import struct
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import numpy as np
import pytest
from conftest import error_lines
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image, ImageDraw, ImageFilter

from micrograd_mnist import checkpoint, cli, nn
from micrograd_mnist.images import MAX_BYTES, MAX_PIXELS, ImageError, load_digit, load_gray, to_mnist

ROOT = Path(__file__).resolve().parents[1]
PAPER, INK = 200, 40  # a photo's gray paper and dark-gray ink, so that every mode has to keep mid-tones


def seven() -> np.ndarray:
    """A blurred '7' on gray paper, as 8-bit levels: a bar, a slanted stroke, soft edges of many levels."""
    image = Image.new("L", (96, 112), PAPER)
    draw = ImageDraw.Draw(image)
    draw.rectangle([20, 14, 76, 24], fill=INK)
    draw.line([(74, 20), (38, 98)], fill=INK, width=10)
    levels = np.asarray(image.filter(ImageFilter.GaussianBlur(2)))
    assert len(np.unique(levels)) > 50  # mid-tones to lose, if a mode is read wrongly
    return levels


def one(width: int = 100, height: int = 120) -> Image.Image:
    """An upright '1': a vertical stroke with a flag at the top left, so no rotation or flip looks the same."""
    image = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(image)
    x, top, bottom, half = width // 2, height // 6, height * 5 // 6, width // 20  # a stroke a tenth as wide
    draw.rectangle([x - half, top, x + half, bottom], fill=0)
    draw.line([(x - half, top + half), (x - 4 * half, top + 4 * half)], fill=0, width=half * 3 // 2)
    return image


def ink_box(vector: np.ndarray, threshold: float = 0.5) -> tuple[int, int]:
    rows, cols = np.nonzero(vector.reshape(28, 28) > threshold)
    return int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)


def check_vector(vector: np.ndarray) -> None:
    assert vector.shape == (784,) and vector.dtype == np.float32
    assert np.isfinite(vector).all() and vector.min() >= 0 and vector.max() <= 1


def one_line_error(path, match: str) -> str:
    with pytest.raises(ImageError, match=match) as info:
        load_digit(path)
    assert "\n" not in str(info.value)
    return str(info.value)


# --- every pixel mode, read by its real range ------------------------------------------------------------------

def _sixteen(levels: np.ndarray) -> np.ndarray:
    return levels.astype(np.uint16) * 257  # 255 * 257 = 65535: the same shades on the 16-bit scale


def _palette_transparent(levels: np.ndarray) -> Image.Image:
    """A gray palette whose paper entry is transparent, its hidden colour black."""
    image = Image.fromarray(levels).convert("P")
    palette = [value for level in range(256) for value in (level, level, level)]
    palette[3 * PAPER:3 * PAPER + 3] = [0, 0, 0]
    image.putpalette(palette)
    image.info["transparency"] = PAPER
    return image


def _coverage(levels: np.ndarray, mode: str) -> Image.Image:
    """Black ink whose alpha is its coverage: laid on white it gives back `levels` (and read without its
    alpha it is all black)."""
    alpha = Image.fromarray((255 - levels).astype(np.uint8))
    black = Image.new("L", alpha.size, 0)
    if mode == "LA":
        return Image.merge("LA", (black, alpha))
    return Image.merge("RGBA", (black, black, black, alpha))


def _animated(levels: np.ndarray, path: Path) -> None:
    first = Image.fromarray(levels)
    second = Image.new("L", first.size, 255)
    ImageDraw.Draw(second).ellipse([10, 10, 80, 100], outline=0, width=12)  # a '0': must not be what we read
    first.save(path, save_all=True, append_images=[second], duration=100, loop=0)


# name: (file suffix, how to save the same '7', what it must read as, if not `levels`)
MODES = {
    "I;16 PNG": (".png", lambda lv, p: Image.fromarray(_sixteen(lv)).save(p), None),
    "I;16B TIFF": (".tif", lambda lv, p: Image.frombytes("I;16B", (lv.shape[1], lv.shape[0]),
                                                          _sixteen(lv).astype(">u2").tobytes()).save(p), None),
    "I TIFF, 16-bit values": (".tif", lambda lv, p: Image.fromarray(_sixteen(lv).astype(np.int32)).save(p), None),
    "I TIFF, 8-bit values": (".tif", lambda lv, p: Image.fromarray(lv.astype(np.int32)).save(p), None),
    "F TIFF, 0 to 1": (".tif", lambda lv, p: Image.fromarray(lv.astype(np.float32) / 255).save(p), None),
    "F TIFF, 0 to 255": (".tif", lambda lv, p: Image.fromarray(lv.astype(np.float32)).save(p), None),
    "P PNG": (".png", lambda lv, p: Image.fromarray(lv).convert("P").save(p), None),
    "P PNG, transparent paper": (".png", lambda lv, p: _palette_transparent(lv).save(p),
                                 lambda lv: np.where(lv == PAPER, 255, lv)),
    "P GIF, transparent paper": (".gif", lambda lv, p: _palette_transparent(lv).save(p),
                                 lambda lv: np.where(lv == PAPER, 255, lv)),
    "LA PNG": (".png", lambda lv, p: _coverage(lv, "LA").save(p), None),
    "RGBA PNG": (".png", lambda lv, p: _coverage(lv, "RGBA").save(p), None),
    "CMYK TIFF": (".tif", lambda lv, p: Image.fromarray(lv).convert("RGB").convert("CMYK").save(p), None),
    "1 PNG": (".png", lambda lv, p: Image.fromarray(lv).point(lambda v: 255 * (v > 128)).convert("1").save(p),
              lambda lv: np.where(lv > 128, 255, 0).astype(np.uint8)),
    "animated GIF": (".gif", _animated, None),
    "animated PNG": (".png", _animated, None),
}


@pytest.mark.parametrize("name", MODES)
def test_every_mode_reads_as_its_8_bit_grayscale_version(tmp_path, name):
    suffix, save, expected = MODES[name]
    levels = seven()
    path = tmp_path / f"seven{suffix}"
    save(levels, path)
    with Image.open(path) as check:  # the file really is in the mode under test
        mode = check.mode
    assert mode == {"I;16 PNG": "I;16", "I;16B TIFF": "I;16B", "I TIFF, 16-bit values": "I",
                    "I TIFF, 8-bit values": "I", "F TIFF, 0 to 1": "F", "F TIFF, 0 to 255": "F",
                    "CMYK TIFF": "CMYK", "1 PNG": "1", "LA PNG": "LA", "RGBA PNG": "RGBA",
                    "animated PNG": "L"}.get(name, "P"), mode
    reference_levels = levels if expected is None else expected(levels)
    Image.fromarray(reference_levels.astype(np.uint8)).save(tmp_path / "reference.png")
    reference = load_digit(tmp_path / "reference.png")
    vector = load_digit(path)
    check_vector(vector)
    # The same shades reach to_mnist, up to float rounding (x*257/65535 is not bit-for-bit x/255; alpha is
    # composited in float): that can move a shade across an 8-bit step before the 20x20 resize, one level
    # (0.004) in a pixel, which Lanczos spreads but does not grow. 0.01 is that, with room; a mode read at
    # the wrong range is off by far more (16-bit clipped at 255 reads as one flat colour).
    np.testing.assert_allclose(vector, reference, atol=0.01)


def test_16_bit_mid_tones_are_not_clipped_to_black_and_white(tmp_path):
    """The cause behind the I;16 case: convert("L") clips 16-bit values at 255, so all but black were white."""
    levels = seven()
    Image.fromarray(_sixteen(levels)).save(tmp_path / "seven16.png")
    gray = load_gray(tmp_path / "seven16.png")
    np.testing.assert_allclose(gray, levels / 255, atol=1e-6)
    assert len(np.unique(np.round(gray * 255))) > 50


def test_non_finite_float_pixels_are_refused(tmp_path):
    pixels = seven().astype(np.float32) / 255
    pixels[5, 5] = np.nan
    Image.fromarray(pixels).save(tmp_path / "nan.tif")
    one_line_error(tmp_path / "nan.tif", "not numbers")


# --- EXIF orientation ------------------------------------------------------------------------------------------

# EXIF orientation -> how the camera stored the upright picture (the inverse of what a viewer does to it)
STORED = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
          5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_90, 7: Image.Transpose.TRANSVERSE,
          8: Image.Transpose.ROTATE_270}


def _with_orientation(image: Image.Image, orientation: int, path: Path, **options) -> None:
    exif = Image.Exif()
    exif[0x0112] = orientation  # Orientation
    image.save(path, exif=exif.tobytes(), **options)


@pytest.mark.parametrize("orientation", sorted(STORED))
def test_exif_orientation_stands_the_digit_up(tmp_path, orientation):
    upright = one()
    upright.save(tmp_path / "upright.png")
    _with_orientation(upright.transpose(STORED[orientation]), orientation, tmp_path / "turned.png")
    expected = load_digit(tmp_path / "upright.png")
    vector = load_digit(tmp_path / "turned.png")
    height, width = ink_box(vector)
    assert height == 20 and width <= 8  # a vertical stroke, not a horizontal one
    np.testing.assert_allclose(vector, expected, atol=1e-6)  # transposes are exact: the very same digit


@pytest.mark.parametrize("orientation", [6, 8])
def test_a_phone_photo_turned_sideways_reads_upright(tmp_path, orientation):
    """The reported case: a JPEG of a '1' taken with the phone turned, which EXIF says to rotate."""
    upright = one(600, 720).convert("RGB")
    upright.save(tmp_path / "upright.jpg", quality=90)
    _with_orientation(upright.transpose(STORED[orientation]), orientation, tmp_path / "photo.jpg", quality=90)
    with Image.open(tmp_path / "photo.jpg") as stored:
        assert stored.size == (720, 600)  # the pixels really are sideways
    vector = load_digit(tmp_path / "photo.jpg")
    height, width = ink_box(vector)
    assert height == 20 and width <= 8
    # JPEG's blocks fall differently on the turned pixels; the digits still agree to a few levels on average
    assert np.abs(vector - load_digit(tmp_path / "upright.jpg")).mean() < 0.01


# --- ink that vanishes -----------------------------------------------------------------------------------------

def _faint_diagonal(size: int = 2000, level: int = 245) -> Image.Image:
    image = Image.new("L", (size, size), 255)
    ImageDraw.Draw(image).line([(0, 0), (size - 1, size - 1)], fill=level, width=1)
    return image


def test_ink_that_vanishes_in_the_20x20_box_is_one_line_not_nan(tmp_path):
    # a 1-pixel line, 10 levels off the paper, across 2000 pixels: each of the 20x20 box's pixels averages
    # ~100 inked pixels of 10,000, a tenth of a level, which rounds to black (before: round(NaN) ValueError)
    _faint_diagonal().save(tmp_path / "faint.png")
    message = one_line_error(tmp_path / "faint.png", "vanishes when its 2000×2000-pixel digit is scaled")
    assert "bolder" in message
    image = Image.new("L", (1000, 1000), 255)
    image.putpixel((500, 500), 254)  # a single dot one level off the paper
    image.save(tmp_path / "dot.png")
    one_line_error(tmp_path / "dot.png", "vanishes")


def test_to_mnist_gives_zeros_not_nan_when_the_ink_vanishes():
    gray = np.asarray(_faint_diagonal(), dtype=np.float32) / 255
    with np.errstate(all="raise"):  # no 0/0 on the way
        result = to_mnist(gray)
    assert result.shape == (784,) and result.dtype == np.float32 and not result.any()


def test_a_bold_line_at_the_same_size_still_reads(tmp_path):
    image = Image.new("L", (2000, 2000), 255)
    ImageDraw.Draw(image).line([(100, 100), (1899, 1899)], fill=0, width=40)
    image.save(tmp_path / "bold.png")
    vector = load_digit(tmp_path / "bold.png")
    check_vector(vector)
    assert vector.max() > 0.5


# --- bounded input: regular file, bytes, pixels ----------------------------------------------------------------

def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path):
    os.mkfifo(tmp_path / "digit.png")
    one_line_error(tmp_path / "digit.png", "FIFO")


def test_a_file_too_large_to_be_a_picture_is_refused_unread(tmp_path):
    path = tmp_path / "huge.png"
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.truncate(MAX_BYTES + 1)  # sparse: costs no disk
    one_line_error(path, f"{MAX_BYTES + 1:,} bytes")


def test_a_folder_is_one_line(tmp_path):
    one_line_error(tmp_path, "is a folder")


def test_formats_outside_the_list_are_not_parsed(tmp_path):
    # EPS would be decoded by running Ghostscript on it; Image.open would also try dozens of rare parsers
    (tmp_path / "digit.eps").write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 28 28\nshowpage\n")
    one_line_error(tmp_path / "digit.eps", "not a picture in a format we read")


MEMORY_CHECK = textwrap.dedent("""
    import resource, sys
    resource.setrlimit(resource.RLIMIT_AS, (700 * 2**20, 700 * 2**20))
    from micrograd_mnist.images import ImageError, load_digit
    try:
        vector = load_digit(sys.argv[1])
    except ImageError as e:
        print("ImageError:", e)
    else:
        rows, cols = vector.reshape(28, 28).nonzero()
        print("digit", rows.max() - rows.min() + 1, cols.max() - cols.min() + 1)
""")


def run_capped(path: Path) -> subprocess.CompletedProcess:
    """load_digit(path) in a process that can't have more than 700 MB of address space."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", PYTHONPATH=str(ROOT))  # BLAS threads reserve memory too
    return subprocess.run([sys.executable, "-c", MEMORY_CHECK, str(path)], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=120)


def test_a_13000_square_blank_png_is_refused_before_decoding(tmp_path):
    # 194 KB on disk, 169 megapixels: before, 2.8 GB of memory to find it blank
    path = tmp_path / "blank.png"
    Image.new("L", (13000, 13000), 255).save(path)
    assert path.stat().st_size < 1_000_000
    done = run_capped(path)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # not even Pillow's DecompressionBombWarning
    assert done.stdout.strip() == (f"ImageError: {path} is 13,000×13,000 pixels, more than the "
                                   f"{MAX_PIXELS // 1_000_000} megapixels a picture of a digit needs; "
                                   f"scale it down or crop it to the digit")


def test_a_13000_square_jpeg_is_decoded_reduced(tmp_path):
    # JPEG decodes at 1/4 scale in gray (draft): 10 MP of one byte instead of 169 MP of three, then floats
    image = Image.new("L", (13000, 13000), 255)
    ImageDraw.Draw(image).rectangle([6000, 2000, 7000, 11000], fill=0)
    image.save(tmp_path / "one.jpg", quality=90)
    done = run_capped(tmp_path / "one.jpg")
    assert done.returncode == 0 and done.stderr == "", done.stderr
    height, width = map(int, done.stdout.split()[1:])
    assert done.stdout.startswith("digit") and height == 20 and width <= 5  # 1000 * 20 / 9000 ≈ 2, blurred


@pytest.mark.parametrize("mode", ["L", "RGBA"])
def test_a_png_just_under_the_pixel_cap_fits_in_bounded_memory(tmp_path, mode):
    # 6300² = 39.7 MP: decoded at full size (PNG can't be decoded reduced), then reduced before any float
    # array (before: 690 MB for L, 820 MB for RGBA; now 95 and 350 MB)
    image = Image.new("L", (6300, 6300), 255)
    ImageDraw.Draw(image).rectangle([3000, 1000, 3400, 5000], fill=0)
    image.convert(mode).save(tmp_path / "one.png")
    done = run_capped(tmp_path / "one.png")
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert done.stdout.split()[:2] == ["digit", "20"]


# --- Pillow's decoder errors -----------------------------------------------------------------------------------

def _png(image: Image.Image | None = None) -> bytes:
    buffer = io.BytesIO()
    (image or one(64, 64)).save(buffer, "PNG")
    return buffer.getvalue()


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _chunks(png: bytes) -> list[bytes]:
    out, pos = [], 8
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos:pos + 4])
        out.append(png[pos:pos + 12 + length])
        pos += 12 + length
    return out


def _insert(png: bytes, chunk: bytes, before_end: bool) -> bytes:
    chunks = _chunks(png)
    where = len(chunks) - 1 if before_end else 1  # after IHDR, or after IDAT (read only when decoding)
    return png[:8] + b"".join(chunks[:where]) + chunk + b"".join(chunks[where:])


TEXT_BOMB = zlib.compress(b"\0" * (8 * 2**20), 9)  # 8 MB of text in 8 KB; Pillow stops at 1 MB

DAMAGED = {
    "zTXt bomb before IDAT": lambda png: _insert(png, _chunk(b"zTXt", b"k\0\0" + TEXT_BOMB), before_end=False),
    "zTXt bomb after IDAT": lambda png: _insert(png, _chunk(b"zTXt", b"k\0\0" + TEXT_BOMB), before_end=True),
    "iTXt bomb": lambda png: _insert(png, _chunk(b"iTXt", b"k\0\1\0\0\0" + TEXT_BOMB), before_end=False),
    "IHDR cut short": lambda png: png[:8] + _chunk(b"IHDR", b"\0\0") + b"".join(_chunks(png)[1:]),
    "IHDR bad CRC": lambda png: png[:29] + b"\0\0\0\0" + png[33:],
    "truncated": lambda png: png[:len(png) // 2],
    "IDAT garbage": lambda png: png[:8] + _chunks(png)[0] + _chunk(b"IDAT", b"not zlib") + _chunks(png)[-1],
}


@pytest.mark.parametrize("name", DAMAGED)
def test_a_damaged_png_is_one_line(tmp_path, name):
    path = tmp_path / "digit.png"
    path.write_bytes(DAMAGED[name](_png()))
    message = one_line_error(path, "digit.png")
    assert "give a PNG or JPEG" in message


def test_pillow_warnings_on_damaged_metadata_do_not_reach_the_user(tmp_path, recwarn):
    buffer = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 1
    one().save(buffer, "JPEG", exif=exif.tobytes())
    data = buffer.getvalue()
    at = data.find(b"Exif\0\0") + 6
    (tmp_path / "digit.jpg").write_bytes(data[:at] + b"MM\0\x2a\xff\xff\xff\xff" + data[at + 8:])  # IFD far away
    check_vector(load_digit(tmp_path / "digit.jpg"))
    assert not [w for w in recwarn if w.filename.replace("\\", "/").find("/PIL/") >= 0]


# --- random and mutated bytes ----------------------------------------------------------------------------------

def _jpeg() -> bytes:
    buffer = io.BytesIO()
    one(64, 64).save(buffer, "JPEG", quality=80)
    return buffer.getvalue()


VALID = {"png": _png(), "jpeg": _jpeg()}


def _fix_crcs(data: bytes) -> bytes:
    """A mutated PNG with its chunk CRCs made right again, so the mutation reaches the chunk parsers."""
    out, pos = bytearray(data[:8]), 8
    while pos + 12 <= len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        if pos + 12 + length > len(data):
            break
        body = data[pos + 4:pos + 8 + length]
        out += data[pos:pos + 8 + length] + struct.pack(">I", zlib.crc32(body))
        pos += 12 + length
    return bytes(out + data[pos:])


@st.composite
def mutated(draw) -> bytes:
    kind = draw(st.sampled_from(sorted(VALID)))
    data = bytearray(VALID[kind])
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(data) - 1))
        data[at] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        data = data[:draw(st.integers(0, len(data)))]
    if kind == "png" and draw(st.booleans()):
        return _fix_crcs(bytes(data))
    return bytes(data)


MAGIC = [b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF89a", b"BM", b"II*\0", b"MM\0*", b"RIFF", b"P5\n"]


@given(data=mutated() | st.builds(lambda magic, rest: magic + rest, st.sampled_from(MAGIC), st.binary(max_size=600)))
def test_random_and_mutated_bytes_give_only_image_errors(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("fuzz") / "digit"
    path.write_bytes(data)
    try:
        vector = load_digit(path)
    except ImageError as e:
        assert "\n" not in str(e)
    else:
        check_vector(vector)


# --- the CLI ---------------------------------------------------------------------------------------------------

@pytest.fixture
def model_path(tmp_path) -> Path:
    path = tmp_path / "model.npz"
    checkpoint.save(path, nn.MLP([784, 16, 10], "relu", rng=np.random.default_rng(0)), {})
    return path


def _predict(model_path: Path, image: Path, capsys) -> tuple[int, list[str]]:
    code = cli.main(["predict", str(model_path), str(image)])
    out, err = capsys.readouterr()
    return code, error_lines(err, "predict")


def test_cli_predict_reads_a_good_image(tmp_path, model_path, capsys):
    one().save(tmp_path / "one.png")
    assert cli.main(["predict", str(model_path), str(tmp_path / "one.png")]) == 0
    out, err = capsys.readouterr()
    assert out.startswith(f"{tmp_path / 'one.png'}: ") and err == ""


def test_cli_predict_on_a_fifo_is_one_line(tmp_path, model_path, capsys):
    os.mkfifo(tmp_path / "digit.png")
    code, lines = _predict(model_path, tmp_path / "digit.png", capsys)
    assert code == 2 and len(lines) == 1 and "FIFO" in lines[0]


@pytest.mark.parametrize("name", ["zTXt bomb after IDAT", "truncated"])
def test_cli_predict_on_a_damaged_image_is_one_line(tmp_path, model_path, capsys, name):
    (tmp_path / "digit.png").write_bytes(DAMAGED[name](_png()))
    code, lines = _predict(model_path, tmp_path / "digit.png", capsys)
    assert code == 2 and len(lines) == 1 and "can't read" in lines[0]


def test_cli_predict_on_ink_that_vanishes_is_one_line(tmp_path, model_path, capsys):
    _faint_diagonal().save(tmp_path / "faint.png")
    code, lines = _predict(model_path, tmp_path / "faint.png", capsys)
    assert code == 2 and len(lines) == 1 and "vanishes" in lines[0]


def test_cli_predict_on_a_damaged_compressed_tiff_prints_only_our_line(tmp_path, model_path, capfd):
    # libtiff prints its own complaint to the process's stderr from C ("LZWDecode: Not enough data ...")
    buffer = io.BytesIO()
    one(64, 64).save(buffer, "TIFF", compression="tiff_lzw")
    data = buffer.getvalue()
    (tmp_path / "digit.tif").write_bytes(data[:8] + b"\x80" * 40 + data[48:])  # the LZW strip starts at 8
    code = cli.main(["predict", str(model_path), str(tmp_path / "digit.tif")])
    out, err = capfd.readouterr()
    lines = error_lines(err, "predict")
    assert code == 2 and len(lines) == 1 and "can't read" in lines[0], err


def test_a_size_beyond_pillows_own_limit_is_one_line(tmp_path):
    # 2³¹-1 square in the header: Image.open itself refuses (DecompressionBombError), before we see the size
    header = struct.pack(">IIBBBBB", 2**31 - 1, 2**31 - 1, 8, 0, 0, 0, 0)
    png = _png()
    (tmp_path / "digit.png").write_bytes(png[:8] + _chunk(b"IHDR", header) + b"".join(_chunks(png)[1:]))
    message = one_line_error(tmp_path / "digit.png", "can't read .*digit.png: Pillow refuses it as too large")
    assert "scale it down" in message
