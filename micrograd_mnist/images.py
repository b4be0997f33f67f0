"""Bringing an ordinary picture into MNIST's form: 28×28 grayscale, white digit on black,
the digit scaled into a 20×20 box and centred by its centre of mass (as LeCun's set was made)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


class ImageError(Exception):
    """An image that can't be read; the message is one line for the user."""


def load_digit(path: str | Path) -> np.ndarray:
    """A (784,) float32 vector in [0, 1], ready for the model."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
                # ink on a transparent canvas: transparent pixels are (0, 0, 0, 0), black, so lay them on white
                paper = Image.new("RGBA", image.size, (255, 255, 255, 255))
                paper.alpha_composite(image.convert("RGBA"))
                image = paper
            gray = np.asarray(image.convert("L"), dtype=np.float32) / 255
    except FileNotFoundError:
        raise ImageError(f"no image at {path}") from None
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as e:
        raise ImageError(f"can't read {path} as an image ({e}); give a PNG or JPEG of one digit") from None
    digit = to_mnist(gray)
    if not digit.any():
        raise ImageError(f"no ink found in {path}: it is one flat colour; give a picture of a digit")
    return digit


def to_mnist(gray: np.ndarray) -> np.ndarray:
    from PIL import Image

    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    if border.mean() > 0.5:  # dark ink on light paper: MNIST digits are white on black
        gray, border = 1 - gray, 1 - border
    gray = np.clip(gray - np.median(border), 0, 1)  # the paper's own shade becomes black
    rows, cols = np.nonzero(gray > 0.1 * gray.max()) if gray.max() > 0 else ([], [])
    if len(rows) == 0:
        return np.zeros(784, dtype=np.float32)
    digit = gray[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    scale = 20 / max(digit.shape)
    size = (max(1, round(digit.shape[1] * scale)), max(1, round(digit.shape[0] * scale)))
    digit = np.asarray(Image.fromarray((digit * 255).astype(np.uint8)).resize(size, Image.LANCZOS),
                       dtype=np.float32) / 255
    canvas = np.zeros((28, 28), dtype=np.float32)
    top, left = (28 - digit.shape[0]) // 2, (28 - digit.shape[1]) // 2
    canvas[top:top + digit.shape[0], left:left + digit.shape[1]] = digit
    # shift so the centre of mass sits at the centre, as in MNIST
    ys, xs = np.indices(canvas.shape)
    mass = canvas.sum()
    dy, dx = round(13.5 - (ys * canvas).sum() / mass), round(13.5 - (xs * canvas).sum() / mass)
    return _shift(canvas, dy, dx).reshape(784)


def _shift(image: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """Move the picture by (dy, dx), filling with black (np.roll would wrap ink round the edges)."""
    out = np.zeros_like(image)
    h, w = image.shape
    out[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = image[max(-dy, 0):h - max(dy, 0),
                                                                      max(-dx, 0):w - max(dx, 0)]
    return out
