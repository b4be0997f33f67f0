"""Losses and activations as functions of Tensors."""

from __future__ import annotations

import numpy as np

from .. import ops
from ..tensor import Tensor


def cross_entropy(logits: Tensor, labels) -> Tensor:
    """Mean negative log-likelihood of `labels` (ints) under softmax(`logits`).

    One fused op (log-softmax + pick + mean): stable for large logits, and its
    gradient is simply (softmax − onehot) / N.
    """
    if isinstance(labels, Tensor):
        labels = labels.data
        if labels.dtype.kind == "f" and np.array_equal(labels, np.round(labels)):
            labels = labels.astype(np.int64)  # Tensors hold floats; a Tensor of whole numbers is a label Tensor
    labels = np.asarray(labels)
    shape = logits.shape
    if len(shape) != 2 or shape[0] == 0:
        raise ValueError(f"cross_entropy expects logits of shape (batch, classes) with batch > 0, got {shape}")
    if labels.shape != shape[:1] or labels.dtype.kind not in "iu":
        raise ValueError(f"cross_entropy expects labels as {shape[0]} integers (one per row of logits), "
                         f"got an array of shape {labels.shape} and dtype {labels.dtype}")
    if not below(labels, shape[1]):
        raise ValueError(f"cross_entropy labels must lie in [0, {shape[1]}), got values from "
                         f"{labels.min()} to {labels.max()}")
    return Tensor.apply(ops.cross_entropy, logits, params=(labels,))


def below(indices: np.ndarray, n: int) -> bool:
    """Whether every integer in `indices` lies in [0, n). Native signed integers are read as unsigned, which
    turns each negative one into a number of at least 2^(bits−1): one pass instead of min() and max(), for
    any n up to that. Other integers (big-endian, or n beyond that) take min() and max()."""
    unsigned, limit = _UNSIGNED.get(indices.dtype, (None, 0))
    if n <= limit:
        return bool(indices.view(unsigned).max() < n)
    if indices.dtype.kind == "u":
        return bool(indices.max() < n)
    return bool(indices.min() >= 0 and indices.max() < n)


# a native signed dtype: its unsigned twin, and the largest n the one-pass check holds for (2^(bits−1))
_UNSIGNED = {np.dtype(f"i{size}"): (np.dtype(f"u{size}"), 2 ** (8 * size - 1)) for size in (1, 2, 4, 8)}


def mse(pred: Tensor, target) -> Tensor:
    """Mean squared error."""
    shape = target.shape if isinstance(target, Tensor) else np.shape(target)
    try:
        grows = np.broadcast_shapes(pred.shape, shape) != pred.shape
    except ValueError:
        grows = True
    if grows:  # (6, 1) against (6,) would quietly broadcast to (6, 6) and average 36 wrong differences
        raise ValueError(f"mse needs a target shaped like pred {pred.shape} (or broadcastable to it), got {shape}")
    return ((pred - target) ** 2).mean()


def log_softmax(x: Tensor, axis: int = -1) -> Tensor:
    return x - x.logsumexp(axis=axis, keepdims=True)


def relu(x: Tensor) -> Tensor:
    return x.relu()


def sigmoid(x: Tensor) -> Tensor:
    return x.sigmoid()


def tanh(x: Tensor) -> Tensor:
    return x.tanh()
