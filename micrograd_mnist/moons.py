"""micrograd's own demo: a 2-16-16-1 ReLU MLP separating two moons with a max-margin loss.

The scalar engine's showcase, and the benchmark's workload: every function
here takes the scalar class as an argument, so the same code drives our
`Value` and micrograd's.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .nn import scalar
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
    model = scalar.MLP([2, 16, 16, 1], "relu", value=value)
    rng = np.random.default_rng(seed)
    model.load_state_dict({name: rng.uniform(-1, 1, np.shape(p)) if name.endswith("weight") else np.zeros(np.shape(p))
                           for name, p in model.named_parameters().items()})
    return model


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
    params = model.parameters()
    for p in params:
        p.grad = 0.0
    total.backward()
    lr = 1.0 - 0.9 * k / steps
    for p in params:
        p.data -= lr * p.grad
    return total.data, accuracy


def train(steps: int = 100, seed: int = 1, log: Callable[[str], None] = print) -> float:
    """Train the demo with our engine; returns the final accuracy."""
    X, y = make_moons(100, seed=seed)
    model = make_model(seed=seed)
    accuracy = 0.0
    for k in range(steps):
        total, accuracy = step(model, X, y, k, steps)
        if k % 10 == 0 or k == steps - 1:
            log(f"step {k:3d}  loss {total:.4f}  accuracy {accuracy:.0%}")
    return accuracy
