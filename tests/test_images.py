"""Bringing a picture of a digit into MNIST's form: inverted if need be, scaled into 20x20, centred by mass."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from micrograd_mnist.images import ImageError, load_digit, to_mnist


def ring(size: int = 100, box=(25, 15, 75, 85), ink: int = 0, paper: int = 255, width: int = 8) -> Image.Image:
    """A '0': an ellipse outline, by default black ink on white paper."""
    image = Image.new("L", (size, size), paper)
    ImageDraw.Draw(image).ellipse(box, outline=ink, width=width)
    return image


def gray(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("L"), dtype=np.float32) / 255


def centre_of_mass(pixels: np.ndarray) -> tuple[float, float]:
    ys, xs = np.indices(pixels.shape)
    return float((ys * pixels).sum() / pixels.sum()), float((xs * pixels).sum() / pixels.sum())


def bounding_box(pixels: np.ndarray, threshold: float = 0.0) -> tuple[int, int]:
    rows, cols = np.nonzero(pixels > threshold)
    return int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)


def check_mnist_form(vector: np.ndarray) -> np.ndarray:
    assert vector.shape == (784,) and vector.dtype == np.float32
    assert vector.min() >= 0 and vector.max() <= 1
    pixels = vector.reshape(28, 28)
    cy, cx = centre_of_mass(pixels)
    assert abs(cy - 13.5) <= 1 and abs(cx - 13.5) <= 1, (cy, cx)
    height, width = bounding_box(pixels)
    assert height <= 20 and width <= 20
    return pixels


def test_black_on_white_is_inverted_scaled_and_centred():
    pixels = check_mnist_form(to_mnist(gray(ring())))
    assert pixels.max() > 0.9  # the ink is bright now
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    assert border.max() < 0.01  # the paper is black
    assert pixels[13:15, 13:15].max() < 0.1  # the hole of the 0 stays dark
    assert max(bounding_box(pixels)) == 20  # the longer side fills the 20-pixel box
    assert (pixels > 0.5).sum() > 30  # a real stroke survived, not a speck


def test_white_on_black_is_not_inverted():
    dark = to_mnist(gray(ring(ink=255, paper=0)))
    light = to_mnist(gray(ring()))
    check_mnist_form(dark)
    assert dark.reshape(28, 28)[0].max() < 0.01 and dark.max() > 0.9
    np.testing.assert_allclose(dark, light, atol=0.02)  # same digit, same result whichever the polarity


def test_an_off_centre_digit_is_moved_to_the_centre():
    image = ring(size=300, box=(10, 200, 60, 290))  # small, in the bottom-left corner
    pixels = check_mnist_form(to_mnist(gray(image)))
    assert max(bounding_box(pixels)) == 20  # scaled up from a 90-pixel-tall ellipse


def test_centred_by_mass_not_by_box():
    image = Image.new("L", (140, 140), 255)
    draw = ImageDraw.Draw(image)
    draw.rectangle([40, 20, 99, 29], fill=0)  # a 'T': a bar 60 wide and 10 tall on top ...
    draw.rectangle([65, 30, 74, 109], fill=0)  # ... over a stem 10 wide and 80 tall
    pixels = check_mnist_form(to_mnist(gray(image)))
    rows = np.nonzero(pixels.max(axis=1) > 0.5)[0]
    # the bar outweighs its share of the height, so the mass sits above the box's middle: the box moves down
    assert (rows.min() + rows.max()) / 2 > 13.5 + 1


def test_aspect_ratio_is_kept():
    image = Image.new("L", (120, 120), 255)
    ImageDraw.Draw(image).rectangle([55, 20, 64, 99], fill=0)  # a '1': 10 wide, 80 tall
    pixels = check_mnist_form(to_mnist(gray(image)))
    height, width = bounding_box(pixels, threshold=0.5)
    assert height == 20 and 2 <= width <= 4  # 10 * 20 / 80 = 2.5


def test_grey_paper_and_dark_grey_ink():
    image = ring(ink=40, paper=200)  # a photo: neither black nor white
    pixels = check_mnist_form(to_mnist(gray(image)))
    assert pixels.reshape(28, 28)[0].max() < 0.01
    assert pixels.max() > 0.5


@pytest.mark.parametrize("value", [0.0, 1.0, 0.5, 0.8])
def test_blank_image_gives_zeros(value):
    result = to_mnist(np.full((50, 40), value, dtype=np.float32))
    assert result.shape == (784,) and result.dtype == np.float32
    assert not result.any()


def test_load_digit_reads_a_png(tmp_path):
    path = tmp_path / "zero.png"
    ring().convert("RGB").save(path)
    with Image.open(path) as check:
        assert check.mode == "RGB" and check.size == (100, 100)
    vector = load_digit(path)
    check_mnist_form(vector)
    np.testing.assert_allclose(vector, to_mnist(gray(ring())), atol=1e-6)
    assert load_digit(str(path)).shape == (784,)


def test_load_digit_reads_a_jpeg_and_a_grayscale_png(tmp_path):
    ring().convert("RGB").save(tmp_path / "zero.jpg", quality=95)
    ring().save(tmp_path / "zero-l.png")
    reference = to_mnist(gray(ring()))
    np.testing.assert_allclose(load_digit(tmp_path / "zero-l.png"), reference, atol=1e-6)
    jpeg = load_digit(tmp_path / "zero.jpg")
    check_mnist_form(jpeg)
    assert np.abs(jpeg - reference).mean() < 0.05  # lossy, but the same digit


def test_load_digit_missing_file(tmp_path):
    with pytest.raises(ImageError, match="no image at") as info:
        load_digit(tmp_path / "nothing.png")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("content", [b"", b"hello, not a picture\n", b"\x89PNG\r\n\x1a\n truncated"])
def test_load_digit_not_an_image(tmp_path, content):
    path = tmp_path / "digit.png"
    path.write_bytes(content)
    with pytest.raises(ImageError, match="digit.png") as info:
        load_digit(path)
    assert "\n" not in str(info.value)


def test_load_digit_on_a_folder(tmp_path):
    with pytest.raises(ImageError, match="is a folder; give a PNG or JPEG of one digit"):
        load_digit(tmp_path)


def test_load_digit_refuses_a_blank_image(tmp_path):
    image = tmp_path / "white.png"
    Image.new("L", (40, 30), 255).save(image)
    with pytest.raises(ImageError, match="no ink"):
        load_digit(image)


def test_a_decompression_bomb_is_an_image_error(tmp_path, monkeypatch):
    image = tmp_path / "big.png"
    Image.new("L", (64, 64), 0).save(image)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 64x64 is past twice the limit: an error, not a warning
    with pytest.raises(ImageError, match="can't read") as info:
        load_digit(image)
    assert "big.png" in str(info.value)


def ink_band(profile: np.ndarray) -> np.ndarray:
    where = np.nonzero(profile > 0.1)[0]
    assert where.size, "no ink at all"
    assert np.array_equal(where, np.arange(where.min(), where.max() + 1)), f"ink split into pieces: {where}"
    return where


def test_centring_does_not_wrap_ink_round_the_edges(tmp_path):
    image = Image.new("L", (140, 140), 255)
    draw = ImageDraw.Draw(image)
    draw.rectangle([20, 20, 119, 39], fill=0)  # a thick bar along the top ...
    draw.rectangle([20, 20, 22, 119], fill=0)  # ... and a thin stem down the left: the mass sits top-left
    image.save(tmp_path / "gamma.png")
    pixels = load_digit(tmp_path / "gamma.png").reshape(28, 28)
    rows, cols = ink_band(pixels.max(axis=1)), ink_band(pixels.max(axis=0))
    assert 15 <= rows.size <= 20 and 15 <= cols.size <= 20, (rows, cols)
    # the shift moves the digit down and right, towards the centre; the edges it left behind stay black
    assert rows.min() > 0 and cols.min() > 0
    assert pixels[0].max() < 0.01 and pixels[:, 0].max() < 0.01


def test_black_ink_on_a_transparent_background(tmp_path):
    """Transparent pixels are black underneath: black ink on them is still a digit, not a blank."""
    clear = Image.new("RGBA", (100, 100), (0, 0, 0, 0))
    ImageDraw.Draw(clear).ellipse((25, 15, 75, 85), outline=(0, 0, 0, 255), width=8)
    clear.save(tmp_path / "clear.png")
    with Image.open(tmp_path / "clear.png") as check:
        assert check.mode == "RGBA"

    pixels = load_digit(tmp_path / "clear.png").reshape(28, 28)
    assert pixels.max() > 0.5
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    assert border.max() < 0.01

    ring().save(tmp_path / "white.png")
    opaque = load_digit(tmp_path / "white.png").reshape(28, 28)
    assert np.corrcoef(pixels.ravel(), opaque.ravel())[0, 1] > 0.9
