"""Optimizers: `SGD` (momentum, weight decay) and `Adam`, updating parameters in place.

They work on Tensors and on Values alike: the updates are written with
augmented assignments, which act in place on arrays and rebind floats.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np


class Optimizer:
    STATE: tuple[str, ...] = ()

    def __init__(self, params: Iterable, lr: float) -> None:
        self.params = list(params)
        if not self.params:
            raise ValueError("optimizer got an empty parameter list: pass model.parameters()")
        if not (lr > 0 and math.isfinite(lr)):
            raise ValueError(f"learning rate must be a positive number, got {lr}")
        self.lr = lr

    @staticmethod
    def _check(name: str, value: float, low: float, high: float = math.inf) -> float:
        if not low <= value < high:
            raise ValueError(f"{name} must lie in [{low}, {high}), got {value}")
        return value

    def zero_grad(self) -> None:
        for p in self.params:
            p.zero_grad()

    def step(self) -> None:
        raise NotImplementedError

    def _gradients(self):
        """(index, parameter, gradient + weight_decay · parameter) for each parameter with a gradient."""
        for i, p in enumerate(self.params):
            if p.grad is not None:
                yield i, p, (p.grad + self.weight_decay * p.data if self.weight_decay else p.grad)

    # Buffers (momentum, Adam's moments) by name, so a checkpoint can hold them as plain arrays.
    def state_dict(self) -> dict[str, np.ndarray]:
        state = {f"{name}.{i}": np.asarray(buf) for name in self.STATE for i, buf in enumerate(getattr(self, name))
                 if buf is not None}
        return state | ({"t": np.array(self.t, dtype=np.int64)} if hasattr(self, "t") else {})

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Take back what state_dict gave; ValueError, leaving the optimizer as it was, for a name this
        optimizer does not keep, a buffer not shaped like its parameter or not finite, or a bad step count."""
        n = len(self.params)
        unknown = sorted(set(state) - {f"{name}.{i}" for name in self.STATE for i in range(n)} - {"t"})
        if unknown:  # e.g. SGD's buffers given to Adam: silently dropping them would change the run
            raise ValueError(f"optimizer state {', '.join(unknown[:3])} is not kept by {type(self).__name__}")
        for name in self.STATE:
            for i in range(n):
                buf = state.get(f"{name}.{i}")
                if buf is None:
                    continue
                array = np.asarray(buf)
                if array.shape != np.shape(self.params[i].data):
                    raise ValueError(f"optimizer state {name}.{i} has shape {array.shape}, "
                                     f"the parameter has {np.shape(self.params[i].data)}")
                if array.dtype.kind != "f" or not np.isfinite(array).all():
                    raise ValueError(f"optimizer state {name}.{i} must hold finite floating-point numbers")
        if hasattr(self, "t"):  # SGD keeps no step count (a file from before may hold t = 0: ignored)
            t = np.asarray(state.get("t", np.zeros(n, np.int64)))
            if t.shape != (n,) or t.dtype.kind not in "iu" or (t < 0).any():
                raise ValueError(f"optimizer state t (each parameter's step count) must be {n} integers >= 0, "
                                 f"got {t.tolist()!r:.40}")
        for name in self.STATE:
            setattr(self, name, [state.get(f"{name}.{i}") for i in range(n)])
        if hasattr(self, "t"):
            self.t = [int(steps) for steps in t]


def _copy(g):
    return g.copy() if isinstance(g, np.ndarray) else g


class SGD(Optimizer):
    """p -= lr · (momentum buffer of (grad + weight_decay · p)), as in torch.optim.SGD."""

    STATE = ("buffers",)

    def __init__(self, params: Iterable, lr: float = 0.01, momentum: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False) -> None:
        super().__init__(params, lr)
        self.momentum, self.nesterov = self._check("momentum", momentum, 0.0), nesterov
        if nesterov and not momentum:  # Nesterov looks ahead along the momentum: without one it is plain SGD
            raise ValueError("SGD(nesterov=True) needs momentum > 0, e.g. momentum=0.9")
        self.weight_decay = self._check("weight_decay", weight_decay, 0.0)
        self.buffers: list = [None] * len(self.params)

    def step(self) -> None:
        for i, p, g in self._gradients():
            if self.momentum:
                buf = self.buffers[i]
                if buf is None:
                    buf = _copy(g)
                else:
                    buf *= self.momentum
                    buf += g
                self.buffers[i] = buf
                g = g + self.momentum * buf if self.nesterov else buf
            p.data -= self.lr * g


class Adam(Optimizer):
    """Adam (Kingma & Ba), with bias correction; weight_decay is L2 added to the gradient."""

    STATE = ("m", "v")

    def __init__(self, params: Iterable, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0) -> None:
        super().__init__(params, lr)
        self.betas = tuple(self._check(f"betas[{i}]", b, 0.0, 1.0) for i, b in enumerate(betas))
        self.eps, self.weight_decay = self._check("eps", eps, 0.0), self._check("weight_decay", weight_decay, 0.0)
        self.m: list = [None] * len(self.params)
        self.v: list = [None] * len(self.params)
        # Steps per parameter, as torch.optim keeps them: a parameter that first gets a gradient late
        # (a frozen layer thawed) starts its bias correction at step 1, not at the others' count.
        self.t: list[int] = [0] * len(self.params)

    def step(self) -> None:
        b1, b2 = self.betas
        for i, p, g in self._gradients():
            if self.m[i] is None:
                self.m[i], self.v[i] = g * 0, g * 0  # fresh zeros of g's shape and dtype
            self.t[i] += 1
            t, m, v = self.t[i], self.m[i], self.v[i]
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * g * g
            self.m[i], self.v[i] = m, v  # for Values the augmented assignments above made new floats
            p.data -= (self.lr / (1 - b1 ** t)) * m / ((v / (1 - b2 ** t)) ** 0.5 + self.eps)
