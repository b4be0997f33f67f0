"""How well a trained classifier does: its probabilities, its accuracy, and where it goes wrong.

One place for these numbers, so that `train`'s metrics.json, `evaluate`, `plot confusion` and the explorer
all count the same way.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .nn import MLP
from .tensor import no_grad


def predict_proba(model: MLP, images: np.ndarray, batch_size: int = 2000) -> np.ndarray:
    """(n, classes): the softmax of the model's logits for each image, computed in batches without a graph."""
    with no_grad():
        logits = np.concatenate([model(images[i:i + batch_size]).data for i in range(0, len(images), batch_size)])
    z = np.exp(logits - logits.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def accuracy(model: MLP, images: np.ndarray, labels: np.ndarray) -> float:
    return float((predict_proba(model, images).argmax(axis=1) == labels).mean())


def confusion_matrix(predicted: np.ndarray, labels: np.ndarray, classes: int = 10) -> np.ndarray:
    """counts[true, predicted]."""
    counts = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(counts, (labels, predicted), 1)
    return counts


class Report(NamedTuple):
    predicted: np.ndarray  # (n,): the most probable class of each image
    confusion: np.ndarray  # (classes, classes): counts[true, predicted]
    accuracy: float  # the share of images predicted right
    per_class: list[float | None]  # per true class, the share of its images predicted right; None: it has none


def report(model: MLP, images: np.ndarray, labels: np.ndarray, classes: int = 10) -> Report:
    """Everything `evaluate` prints and metrics.json records about a test set, from one pass over it."""
    predicted = predict_proba(model, images).argmax(axis=1)
    counts = confusion_matrix(predicted, labels, classes)
    per_class = [float(row[k] / row.sum()) if row.sum() else None for k, row in enumerate(counts)]
    return Report(predicted, counts, float((predicted == labels).mean()), per_class)
