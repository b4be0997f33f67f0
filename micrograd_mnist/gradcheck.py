"""Check autograd against central finite differences, in either engine."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from .tensor import Tensor
from .value import Value


class GradcheckError(AssertionError):
    pass


def gradcheck(f: Callable, inputs: Sequence, eps: float = 1e-6, atol: float = 1e-6, rtol: float = 1e-4,
              seed: int = 0) -> bool:
    """True if every gradient of `f(*inputs)` matches (f(x+eps) − f(x−eps)) / 2eps.

    `inputs` are all Values or all float64 Tensors with requires_grad. A
    non-scalar output is first dotted with fixed random weights, so the check
    exercises each VJP with a non-trivial upstream gradient, not just ones.
    Raises GradcheckError naming the worst entry on a mismatch.
    """
    inputs = list(inputs)
    if all(isinstance(x, Value) for x in inputs):
        cells = [(x, None) for x in inputs]
    elif all(isinstance(x, Tensor) and x.requires_grad for x in inputs):
        if any(x.dtype != np.float64 for x in inputs):
            raise ValueError("gradcheck needs float64 Tensors: float32 cannot resolve finite differences")
        cells = [(x, idx) for x in inputs for idx in np.ndindex(x.shape)]
    else:
        raise TypeError("gradcheck takes a list of Values, or of float64 Tensors with requires_grad=True")

    weights = {}

    def loss():
        out = f(*inputs)
        if isinstance(out, Tensor) and out.data.size != 1:
            if "w" not in weights:
                weights["w"] = np.random.default_rng(seed).normal(size=out.shape)
            out = (out * weights["w"]).sum()
        return out

    for x in inputs:
        x.zero_grad()
    loss().backward()
    analytic = [x.grad if idx is None else (0.0 if x.grad is None else x.grad[idx]) for x, idx in cells]

    def loss_at(x, idx, delta: float) -> float:
        original = _get(x, idx)
        _set(x, idx, original + delta)
        value = loss().data
        _set(x, idx, original)  # restore exactly, not by subtracting delta
        return float(np.sum(value))  # a Value's float, or a size-1 array

    for (x, idx), got in zip(cells, analytic):
        numeric = (loss_at(x, idx, eps) - loss_at(x, idx, -eps)) / (2 * eps)
        if not abs(got - numeric) <= atol + rtol * abs(numeric):
            name = x.label or type(x).__name__
            where = "" if idx is None else f"[{', '.join(map(str, idx))}]"
            raise GradcheckError(f"gradient of {name}{where}: autograd {got:.8g}, finite differences {numeric:.8g}")
    return True


def _get(x, idx) -> float:
    return x.data if idx is None else x.data[idx]


def _set(x, idx, value: float) -> None:
    if idx is None:
        x.data = value
    else:
        x.data[idx] = value
