"""micrograd's own demo: a 2-16-16-1 ReLU MLP separating two moons with a max-margin loss.

The scalar engine's showcase, and the benchmark's workload: the model, loss
and step take the scalar class as an argument, so the same code drives our
`Value` and micrograd's. The decision-boundary picture's grid is scored by the
Tensor engine, with the trained model's weights.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from . import nn
from .graph import building
from .nn import scalar
from .tensor import Tensor, no_grad
from .value import Value


def make_moons(n: int = 100, noise: float = 0.1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaving half circles (as sklearn's make_moons), labels −1 / +1."""
    rng = np.random.default_rng(seed)
    upper = np.arange(n) < n // 2
    t = rng.uniform(0, np.pi, n)
    x = np.where(upper, np.cos(t), 1 - np.cos(t))
    y = np.where(upper, np.sin(t), 0.5 - np.sin(t))
    X = np.stack([x, y], axis=1) + rng.normal(0, noise, (n, 2))
    return X, np.where(upper, -1, 1)


def make_model(value: type = Value, seed: int = 1) -> scalar.MLP:
    """2-16-16-1 with micrograd's init: weights U(−1, 1), biases 0."""
    return scalar.MLP([2, 16, 16, 1], "relu", value=value, seed=seed)


def loss(model: scalar.MLP, X: np.ndarray, y: np.ndarray, value: type = Value, alpha: float = 1e-4):
    """micrograd's demo loss: mean hinge (1 − y·score)⁺ plus alpha·Σp², and the accuracy."""
    inputs = [[value(float(x)) for x in row] for row in X]
    scores = [model(x)[0] for x in inputs]
    losses = [(1 + -float(yi) * score).relu() for yi, score in zip(y, scores)]
    data_loss = sum(losses) * (1.0 / len(losses))
    reg_loss = alpha * sum(p * p for p in model.parameters())
    accuracy = np.mean([(yi > 0) == (score.data > 0) for yi, score in zip(y, scores)])
    return data_loss + reg_loss, float(accuracy)


def step(model: scalar.MLP, X: np.ndarray, y: np.ndarray, k: int, steps: int = 100, value: type = Value):
    """One step of micrograd's demo: forward, backward, SGD with a decaying rate."""
    total, accuracy = loss(model, X, y, value)
    model.zero_grad()
    total.backward()
    lr = 1.0 - 0.9 * k / steps
    for p in model.parameters():
        p.data -= lr * p.grad
    return total.data, accuracy


def scores(model: scalar.MLP, points: np.ndarray) -> np.ndarray:
    """The model's score for each (x, y) point, computed by the Tensor engine with the scalar model's weights.

    The same numbers as `model(point)[0].data` for every point, but a whole grid in one matrix product:
    tens of thousands of points would take the scalar engine seconds.
    """
    twin = nn.MLP(model.sizes, model.activation, dtype=np.float64)
    twin.load_state_dict(model.state_dict())
    with no_grad():
        return twin(Tensor(np.asarray(points, dtype=np.float64))).data[:, 0]


def decision_grid(model: scalar.MLP, X: np.ndarray, n: int = 200, margin: float = 1.0):
    """A grid n × n over the points (`margin` beyond them, as micrograd's demo) and the model's score at each.

    Returns xx, yy, scores, each (n, n): the model says class +1 where the score is above 0.
    """
    xx, yy = np.meshgrid(np.linspace(X[:, 0].min() - margin, X[:, 0].max() + margin, n),
                         np.linspace(X[:, 1].min() - margin, X[:, 1].max() + margin, n))
    return xx, yy, scores(model, np.column_stack([xx.ravel(), yy.ravel()])).reshape(xx.shape)


class Trained(NamedTuple):
    model: scalar.MLP
    X: np.ndarray  # (100, 2): the points it learned
    y: np.ndarray  # their labels, -1 or +1
    accuracy: float  # the last step's, measured before its update


def train(steps: int = 100, seed: int = 1, log: Callable[[str], None] = print) -> Trained:
    """Train the demo with our engine: the model, its data and the last step's accuracy. (`micrograd-mnist
    moons --out DIR` draws its decision boundary from `decision_grid` and `scores`.)"""
    X, y = make_moons(100, seed=seed)
    model = make_model(seed=seed)
    accuracy = 0.0
    with building():  # each step builds a graph of some 70,000 Values: no cycle collector walking it
        for k in range(steps):
            total, accuracy = step(model, X, y, k, steps)
            if k % 10 == 0 or k == steps - 1:
                log(f"step {k:3d}  loss {total:.4f}  accuracy {accuracy:.0%}")
    return Trained(model, X, y, accuracy)
