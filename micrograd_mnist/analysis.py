"""The numbers behind two of `plot`'s pictures, computed here so that viz only draws them: how well a straight
line separates two digits in 2-D (`project_and_fit`), and how gradients shrink layer by layer at initialization
(`layer_gradients`)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .data import DataError
from .nn import MLP, Linear
from .nn import functional as F


class Projection(NamedTuple):
    points: np.ndarray  # (m, 2): the chosen images on the first two principal components
    labels: np.ndarray  # (m,): their digits
    digits: tuple[int, int]  # (a, b): the line predicts b on the side where points @ w + bias > 0
    w: np.ndarray  # (2,)
    bias: float
    wrong: np.ndarray  # (m,) bool: on the wrong side of the line
    explained: np.ndarray  # (2,): fraction of the variance each component explains


def project_and_fit(images: np.ndarray, labels: np.ndarray, n: int = 500, digits: tuple[int, int] = (3, 8),
                    seed: int = 0, steps: int = 500) -> Projection:
    """Pick n/2 images of each digit, project them to 2-D by PCA (SVD) and fit the best straight line.

    The line is a logistic regression on the 2-D points, by `steps` of full-batch gradient descent on
    standardized coordinates (convex, so plain gradient descent finds the optimum's neighbourhood).
    A set with fewer than 2 images of either digit is a DataError.
    """
    images, labels = np.asarray(images, dtype=np.float64), np.asarray(labels)
    a, b = digits
    if a == b:
        raise ValueError(f"separability needs two different digits, got {digits}")
    rng = np.random.default_rng(seed)
    chosen = []
    for d in (a, b):
        pool = np.flatnonzero(labels == d)
        if len(pool) < 2:
            raise DataError(f"separability needs at least 2 images of digit {d}, found {len(pool)}")
        chosen.append(rng.choice(pool, size=min(len(pool), n // 2), replace=False))
    index = np.concatenate(chosen)
    x, y = images[index], labels[index]
    centred = x - x.mean(axis=0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    points = centred @ vt[:2].T
    explained = s[:2] ** 2 / (s ** 2).sum()

    mu, sd = points.mean(axis=0), points.std(axis=0) + 1e-12
    z = (points - mu) / sd
    target = (y == b).astype(np.float64)
    v, c, lr = np.zeros(2), 0.0, 1.0  # gradient descent on standardized coordinates: a step of 1 is safe
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(z @ v + c)))
        v -= lr * z.T @ (p - target) / len(z)
        c -= lr * float((p - target).mean())
    w = v / sd  # back to PCA coordinates: z @ v + c == points @ w + bias
    bias = c - float(mu @ w)
    wrong = (points @ w + bias > 0) != (y == b)
    return Projection(points, y, (a, b), w, bias, wrong, explained)


def layer_gradients(activation: str, depth: int = 8, width: int = 32, seed: int = 0, batch: int = 64) -> np.ndarray:
    """Mean |dloss/dW| of each Linear layer (first = next to the input) of a fresh MLP, on one random batch.

    The network is MLP([784] + [width] * (depth - 1) + [10], activation) with this project's (PyTorch's)
    initialization; the batch is uniform random pixels with random labels, the loss cross-entropy.
    """
    if depth < 2:
        raise ValueError(f"depth must be at least 2 Linear layers, got {depth}")
    rng = np.random.default_rng(seed)
    model = MLP([784] + [width] * (depth - 1) + [10], activation, rng=rng)
    x = rng.random((batch, 784)).astype(np.float32)
    y = rng.integers(0, 10, batch)
    F.cross_entropy(model(x), y).backward()
    return np.array([float(np.abs(layer.weight.grad).mean()) for layer in model if isinstance(layer, Linear)])
