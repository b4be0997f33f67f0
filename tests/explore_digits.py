"""Digit-like synthetic MNIST for the explorer's tests: class k is a drawn glyph of k (strokes with jitter),
brought to MNIST's form by the same code as `predict`, so a vertical stroke drawn on the page is a "1".

conftest's `data_dir` holds random prototypes, which no drawing resembles; these glyphs do.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from micrograd_mnist import data
from micrograd_mnist.images import to_mnist

SIDE = 56
# Each glyph as polylines and ellipses in a unit box, y downwards.
GLYPHS: dict[int, list] = {
    0: [("ellipse", (0.22, 0.08, 0.78, 0.92))],
    1: [("line", [(0.5, 0.08), (0.5, 0.92)])],
    2: [("line", [(0.2, 0.3), (0.32, 0.12), (0.62, 0.1), (0.78, 0.28), (0.2, 0.9), (0.82, 0.9)])],
    3: [("line", [(0.2, 0.12), (0.8, 0.12), (0.45, 0.48), (0.78, 0.65), (0.62, 0.9), (0.2, 0.86)])],
    4: [("line", [(0.66, 0.92), (0.66, 0.08), (0.15, 0.65), (0.88, 0.65)])],
    5: [("line", [(0.8, 0.1), (0.28, 0.1), (0.24, 0.46), (0.66, 0.44), (0.8, 0.66), (0.62, 0.9), (0.2, 0.86)])],
    6: [("line", [(0.7, 0.08), (0.32, 0.5)]), ("ellipse", (0.25, 0.48, 0.75, 0.92))],
    7: [("line", [(0.15, 0.1), (0.85, 0.1), (0.42, 0.92)])],
    8: [("ellipse", (0.3, 0.06, 0.7, 0.48)), ("ellipse", (0.24, 0.48, 0.76, 0.94))],
    9: [("ellipse", (0.25, 0.08, 0.75, 0.52)), ("line", [(0.75, 0.3), (0.7, 0.92)])],
}
# Test images 0 and 1: a 7 and a 2, as MNIST's own test set begins; test image 2 is a 1 labelled 4,
# so the trained network has at least one mistake to show.
FIRST_TEST = [(7, 7), (2, 2), (1, 4)]


def glyph(k: int, rng: np.random.Generator) -> np.ndarray:
    """Digit k drawn white on black at SIDE×SIDE, jittered (stretch, shear, shift, stroke width), in MNIST's form."""
    image = Image.new("L", (SIDE, SIDE), 0)
    draw = ImageDraw.Draw(image)
    sx, sy = rng.uniform(0.75, 1.0, 2) * SIDE * 0.8
    shear, dx, dy = rng.uniform(-0.15, 0.15), *rng.uniform(0.05, 0.15, 2) * SIDE
    width = int(rng.integers(4, 8))

    def at(x: float, y: float) -> tuple[float, float]:
        return dx + sx * (x + shear * (0.5 - y)), dy + sy * y

    for kind, shape in GLYPHS[k]:
        if kind == "line":
            draw.line([at(*p) for p in shape], fill=255, width=width, joint="curve")
        else:
            x0, y0, x1, y1 = shape
            centre, (ax, ay) = at((x0 + x1) / 2, (y0 + y1) / 2), ((x1 - x0) * sx / 2, (y1 - y0) * sy / 2)
            draw.ellipse([centre[0] - ax, centre[1] - ay, centre[0] + ax, centre[1] + ay], outline=255, width=width)
    return to_mnist(np.asarray(image, dtype=np.float32) / 255)


def digit_set(n: int, rng: np.random.Generator, first: list[tuple[int, int]] = ()) -> tuple[np.ndarray, np.ndarray]:
    """n glyphs as uint8 28×28 images and their labels; `first` fixes the first few (glyph, label) pairs."""
    pairs = list(first) + [(int(k), int(k)) for k in rng.integers(0, 10, n - len(first))]
    images = np.stack([glyph(k, rng).reshape(28, 28) for k, _ in pairs])
    return np.round(images * 255).astype(np.uint8), np.array([label for _, label in pairs], dtype=np.uint8)


def write_digit_idx(folder: Path, n_train: int = 7000, n_test: int = 300, seed: int = 0) -> Path:
    """The four IDX files of a digit-like set in `folder` (7,000 training images keep 2,000 after the
    5,000 held out for validation)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = (*digit_set(n_train, rng), *digit_set(n_test, rng, FIRST_TEST))
    for name, array in zip(data.FILES, arrays):
        data.write_idx(folder / name, array)
    return folder
