"""Optimizers: `SGD` (momentum, weight decay) and `Adam`, updating parameters in place.

They work on Tensors and on Values alike. For a Tensor whose gradient is an
array of its own shape and dtype (what backward() gives), each update is
NumPy arithmetic with `out=`, into the parameter, its buffers and one or two
scratch arrays kept per parameter: no fresh memory per step. Anything else (a
Value's float, a gradient set by hand in another dtype) takes the same formulas
written with augmented assignments, which act in place on arrays and rebind
floats. Both give the same numbers: the same operations in the same order.
Either way the update ends by assigning `p.data`, which is what advances a
Tensor's version (so a graph built before the step refuses to backpropagate).
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
        self._scratches: dict[tuple[int, int], np.ndarray] = {}

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

    def _in_place(self, p, *buffers) -> bool:
        """Whether p's update can run as out= arithmetic: an array parameter, and a gradient and buffers
        (None until the first step) of its shape and dtype; a buffer loaded in another dtype stays on the
        plain path, which keeps it in that dtype."""
        data = p.data
        if data.__class__ is not np.ndarray or not data.flags.writeable:
            return False
        for a in (p.grad, *buffers):
            if a is not None and (a.__class__ is not np.ndarray or a.dtype != data.dtype or a.shape != data.shape):
                return False
        return True

    def _scratch(self, i: int, k: int = 0) -> np.ndarray:
        """Scratch array k for parameter i, made on first use and kept (not state: a checkpoint never holds it)."""
        key = (i, k)
        s = self._scratches.get(key)
        data = self.params[i].data
        if s is None or s.shape != data.shape or s.dtype != data.dtype:
            s = self._scratches[key] = np.empty_like(data)
        return s

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
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            if self._in_place(p, self.buffers[i]):
                self._step_in_place(i, p)
                continue
            g = p.grad + self.weight_decay * p.data if self.weight_decay else p.grad
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

    def _step_in_place(self, i: int, p) -> None:
        """step() for one array parameter, the same operations as above, written into p and the buffers."""
        data, g = p.data, p.grad
        lr, momentum, decay = float(self.lr), float(self.momentum), float(self.weight_decay)  # float32 stays float32
        s = self._scratch(i)
        if decay:
            np.multiply(data, decay, out=s)
            g = np.add(g, s, out=s)
        if momentum:
            buf = self.buffers[i]
            if buf is None:
                buf = self.buffers[i] = g.copy()
            else:
                np.multiply(buf, momentum, out=buf)
                np.add(buf, g, out=buf)
            if self.nesterov:
                t = self._scratch(i, 1)
                np.multiply(buf, momentum, out=t)
                g = np.add(g, t, out=t)
            else:
                g = buf
        np.multiply(g, lr, out=s)  # g may be s itself: an elementwise ufunc may write over its input
        np.subtract(data, s, out=data)
        p.data = data  # the one place the version advances: the setter counts the in-place change


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
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            self.t[i] += 1
            t = self.t[i]
            if self._in_place(p, self.m[i], self.v[i]):
                self._step_in_place(i, p, t)
                continue
            g = p.grad + self.weight_decay * p.data if self.weight_decay else p.grad
            if self.m[i] is None:
                self.m[i], self.v[i] = g * 0, g * 0  # fresh zeros of g's shape and dtype
            m, v = self.m[i], self.v[i]
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * g * g
            self.m[i], self.v[i] = m, v  # for Values the augmented assignments above made new floats
            p.data -= (self.lr / (1 - b1 ** t)) * m / ((v / (1 - b2 ** t)) ** 0.5 + self.eps)

    def _step_in_place(self, i: int, p, t: int) -> None:
        """step() for one array parameter, the same operations as above, written into p, m, v and scratch."""
        b1, b2 = (float(b) for b in self.betas)
        lr, eps, decay = float(self.lr), float(self.eps), float(self.weight_decay)  # float32 stays float32
        data, g = p.data, p.grad
        s, u = self._scratch(i), self._scratch(i, 1)
        if decay:
            np.multiply(data, decay, out=u)
            g = np.add(g, u, out=u)
        if self.m[i] is None:
            self.m[i], self.v[i] = g * 0, g * 0  # as above (so a nan or inf gradient gives the same nan)
        m, v = self.m[i], self.v[i]
        np.multiply(m, b1, out=m)
        np.add(m, np.multiply(g, 1 - b1, out=s), out=m)
        np.multiply(v, b2, out=v)
        np.multiply(np.multiply(g, 1 - b2, out=s), g, out=s)  # ((1 − b2) · g) · g, left to right as written above
        np.add(v, s, out=v)
        np.divide(v, 1 - b2 ** t, out=s)
        np.sqrt(s, out=s)  # NumPy computes an array's ** 0.5 as its square root
        np.add(s, eps, out=s)
        np.multiply(m, lr / (1 - b1 ** t), out=u)
        np.divide(u, s, out=u)
        np.subtract(data, u, out=data)
        p.data = data  # the one place the version advances: the setter counts the in-place change
