"""Bringing an ordinary picture into MNIST's form: 28×28 grayscale, white digit on black,
the digit scaled into a 20×20 box and centred by its centre of mass (as LeCun's set was made).

A picture is a hostile input like any other: it must be a regular file of bounded size, of a bounded
number of pixels, decoded by one of a few well-known parsers, and whatever Pillow raises while
decoding it becomes one line for the user.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .files import FileError, open_input

# A phone photo is 2-15 MB (a 108 MP one at top quality ~40 MB) and a PNG of a drawn digit a few KB;
# 64 MB takes any of those and refuses a wrong file (a video, a disk image) before reading a byte of it.
MAX_BYTES = 64 * 2**20
# The most pixels we decode. Pillow itself refuses only above 179 MP (twice its MAX_IMAGE_PIXELS, and
# warns from 89 MP), and a 13000² blank PNG of 194 KB then costs 2.8 GB. 40 MP is more than a camera's
# usual 12-24 MP, and decoded at the widest mode we keep (4 bytes a pixel) it is 160 MB. A JPEG, what
# the 48-108 MP modes of phones give, is decoded reduced (draft), so for it this counts the pixels
# that reduction leaves.
MAX_PIXELS = 40_000_000
# The digit ends up 20 pixels tall: a working copy whose longer side is at most this still gives a
# digit that fills a tenth of the picture 200 pixels, and keeps the float arrays below ~16 MB each.
WORK_SIDE = 2048
# Parsers for the formats a picture of a digit comes in. Not EPS (Pillow runs Ghostscript on it)
# nor the dozens of rare formats Image.open would otherwise try on whatever bytes it is given.
FORMATS = ("PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP", "PPM")
FORMAT_HINT = "give a PNG or JPEG of one digit"

_SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N")


class ImageError(Exception):
    """An image that can't be read; the message is one line for the user."""


def load_digit(path: str | Path) -> np.ndarray:
    """A (784,) float32 vector in [0, 1], ready for the model."""
    gray = load_gray(path)
    digit = _crop_ink(gray)
    if digit is None:
        raise ImageError(f"no ink found in {path}: it is one flat colour; give a picture of a digit")
    vector = _place(digit)
    if not vector.any():
        raise ImageError(f"the ink in {path} vanishes when its {digit.shape[1]}×{digit.shape[0]}-pixel digit is "
                         f"scaled into MNIST's 20×20 box: the strokes are too thin or too faint; "
                         f"crop the picture to the digit or draw it bolder")
    return vector


def load_gray(path: str | Path) -> np.ndarray:
    """The picture at `path` as a 2-D float32 array in [0, 1] (0 black, 1 white), upright as its EXIF
    orientation says, transparent parts laid on white paper, its longer side at most WORK_SIDE."""
    try:
        file = open_input(path, MAX_BYTES, "picture of a digit")
    except FileNotFoundError:
        raise ImageError(f"no image at {path}") from None
    except IsADirectoryError:
        raise ImageError(f"{path} is a folder; {FORMAT_HINT}") from None
    except FileError as e:
        raise ImageError(str(e)) from None
    except OSError as e:
        raise ImageError(f"can't open {path}: {e.strerror or e}") from None
    with file:
        image, orientation = _decode(file, path)
    return _to_gray(image, orientation, path)


def _decode(file, path: str | Path):
    """Every step that parses the file's bytes, in one guarded place: Pillow's parsers raise whatever
    malformed bytes lead them to (OSError, ValueError for oversized text chunks, SyntaxError,
    struct.error, EOFError, IndexError, ...), and each of those means the same to the user."""
    from PIL import ExifTags, Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings(), _c_stderr_silenced():
            # Pillow warns of metadata it skipped (corrupt EXIF, odd TIFF tags) and of big pictures, which
            # our own, lower cap below refuses: either would be a stray second line for the user.
            warnings.simplefilter("ignore")
            image = Image.open(file, formats=FORMATS)
            declared = image.size
            side = max(declared)
            if image.format in ("JPEG", "MPO") and side > WORK_SIDE:
                # JPEG can be decoded at 1/2, 1/4 or 1/8 scale, and grayscale, without the full picture
                target = (max(1, declared[0] * WORK_SIDE // side), max(1, declared[1] * WORK_SIDE // side))
                image.draft("L", target)
            if image.size[0] * image.size[1] > MAX_PIXELS:
                raise ImageError(f"{path} is {declared[0]:,}×{declared[1]:,} pixels, more than the "
                                 f"{MAX_PIXELS // 1_000_000} megapixels a picture of a digit needs; "
                                 f"scale it down or crop it to the digit")
            # An animated picture (GIF, APNG, WebP) opens on its first frame, which is the one we read.
            image.load()
            orientation = image.getexif().get(ExifTags.Base.Orientation, 1)
        return image, orientation
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(f"can't read {path}: it is not a picture in a format we read "
                         f"({', '.join(FORMATS)}), or a damaged one; {FORMAT_HINT}") from None
    except Image.DecompressionBombError as e:  # raised by Image.open itself, before we see the size
        raise ImageError(f"can't read {path}: Pillow refuses it as too large ({e}); "
                         f"scale it down or crop it to the digit") from None
    except Exception as e:  # see the docstring: any failure in there is the file's
        reason = " ".join(str(e).split()) or type(e).__name__
        raise ImageError(f"can't read {path} as an image ({reason}); {FORMAT_HINT}") from None


@contextlib.contextmanager
def _c_stderr_silenced() -> Iterator[None]:
    """libtiff reports a damaged TIFF by printing to the process's stderr from C, besides the error Pillow
    raises for it: lines beside ours that no Python code can catch. While Pillow decodes, fd 2 is /dev/null."""
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no stderr at all: nothing to keep clean
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _to_gray(image, orientation: int, path: str | Path) -> np.ndarray:
    from PIL import Image

    mode = image.mode
    full_scale = 65535.0 if mode in _SIXTEEN_BIT else None  # read only for I and F pixels, below
    factor = math.ceil(max(image.size) / WORK_SIDE)
    try:
        # Into a mode that reduce can average (it can't 1, P or I;16), premultiplied where there is
        # transparency, so that averaging doesn't mix in the colour hidden under transparent pixels.
        if mode in _SIXTEEN_BIT:
            image = image.convert("I")  # I keeps every 16-bit value; convert("L") would clip them at 255
        elif mode in ("I", "F"):
            pass  # averaged as they are, scaled below
        elif mode in ("LA", "La", "PA", "RGBA", "RGBa"):
            image = image.convert("La" if mode in ("LA", "La") else "RGBa")
        elif "transparency" in image.info:  # a palette or colour key marks some pixels transparent
            image = image.convert("RGBA").convert("RGBa")
        elif mode in ("1", "P"):
            image = image.convert("L")
        if factor > 1:
            image = image.reduce(factor)
        if image.mode not in ("I", "F", "La", "RGBa", "L"):
            image = image.convert("L")
    except ValueError:  # a mode Pillow can't average or make gray (LAB, say)
        raise ImageError(f"can't read {path}: Pillow can't turn its {mode} pixels into gray; {FORMAT_HINT}") from None
    method = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
              5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
              8: Image.Transpose.ROTATE_90}.get(orientation)
    if method is not None:  # the camera was turned: the pixels are stored sideways, EXIF says how to stand them up
        image = image.transpose(method)

    if image.mode in ("I", "F"):
        values = np.asarray(image, dtype=np.float64)
        if not np.isfinite(values).all():
            raise ImageError(f"{path} has pixels that are not numbers (NaN or infinity); {FORMAT_HINT}")
        return _scaled(values, full_scale)
    pixels = np.asarray(image, dtype=np.float32)
    if image.mode in ("La", "RGBa"):
        # premultiplied ink (luma as Pillow weighs it) over white paper where it is transparent
        ink = pixels[..., 0] if image.mode == "La" else pixels[..., :3] @ np.float32([0.299, 0.587, 0.114])
        return np.clip((ink + 255 - pixels[..., -1]) / 255, 0, 1)
    return pixels / 255


def _scaled(values: np.ndarray, full_scale: float | None) -> np.ndarray:
    """Integer or float pixels as [0, 1]. Without a known full scale (32-bit and float images carry none),
    the smallest usual one that holds the values: 1 (float 0-1), 255 (Pillow's own convention for I and F),
    65535 (16-bit); beyond those, or with negative values, the values' own span."""
    low, high = float(values.min()), float(values.max())
    if full_scale is None:
        full_scale = next((scale for scale in (1.0, 255.0, 65535.0) if low >= 0 and high <= scale), None)
    if full_scale is None:
        span = high - low
        return ((values - low) / span if span > 0 else np.zeros_like(values)).astype(np.float32)
    return np.clip(values / full_scale, 0, 1).astype(np.float32)


def to_mnist(gray: np.ndarray) -> np.ndarray:
    """A 2-D grayscale array in [0, 1] in MNIST's form; all zeros where there is no ink to find."""
    digit = _crop_ink(gray)
    return np.zeros(784, dtype=np.float32) if digit is None else _place(digit)


def _crop_ink(gray: np.ndarray) -> np.ndarray | None:
    """The digit as white ink on black, cropped to its ink; None if the picture is one flat colour."""
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    if border.mean() > 0.5:  # dark ink on light paper: MNIST digits are white on black
        gray, border = 1 - gray, 1 - border
    gray = np.clip(gray - np.median(border), 0, 1)  # the paper's own shade becomes black
    peak = gray.max()
    if peak <= 0:
        return None
    rows, cols = np.nonzero(gray > 0.1 * peak)
    return gray[rows.min():rows.max() + 1, cols.min():cols.max() + 1]


def _place(digit: np.ndarray) -> np.ndarray:
    """Scale the cropped digit into 20×20 and centre it by mass on 28×28; all zeros if no ink survives
    the scaling (strokes so thin or faint that their average rounds to black)."""
    from PIL import Image

    scale = 20 / max(digit.shape)
    size = (max(1, round(digit.shape[1] * scale)), max(1, round(digit.shape[0] * scale)))
    digit = np.asarray(Image.fromarray((digit * 255).astype(np.uint8)).resize(size, Image.LANCZOS),
                       dtype=np.float32) / 255
    canvas = np.zeros((28, 28), dtype=np.float32)
    top, left = (28 - digit.shape[0]) // 2, (28 - digit.shape[1]) // 2
    canvas[top:top + digit.shape[0], left:left + digit.shape[1]] = digit
    mass = canvas.sum()
    if mass <= 0:  # nothing to centre, and dividing by it would give NaN shifts
        return canvas.reshape(784)
    # shift so the centre of mass sits at the centre, as in MNIST
    ys, xs = np.indices(canvas.shape)
    dy, dx = round(13.5 - (ys * canvas).sum() / mass), round(13.5 - (xs * canvas).sum() / mass)
    return _shift(canvas, dy, dx).reshape(784)


def _shift(image: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """Move the picture by (dy, dx), filling with black (np.roll would wrap ink round the edges)."""
    out = np.zeros_like(image)
    h, w = image.shape
    out[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = image[max(-dy, 0):h - max(dy, 0),
                                                                      max(-dx, 0):w - max(dx, 0)]
    return out
