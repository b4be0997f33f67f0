"""Optimizers: `SGD` (momentum, weight decay) and `Adam`, updating parameters in place.

They work on Tensors and on Values alike. For a Tensor whose gradient is an
array of its own shape and dtype (what backward() gives), each update is
NumPy arithmetic with `out=`, into the parameter, its buffers and one or two
scratch arrays kept per parameter: no fresh memory per step. The long in-place
sums (y += x, y -= x) go through blas.py, which gives NumPy's numbers (NaNs'
bits aside: see there) with the work split between OpenBLAS's threads. Anything
else (a Value's float, a gradient set by hand in another dtype) takes the same
formulas written with augmented assignments, which act in place on arrays and
rebind floats. All give the same numbers (with the same caveat): the same
operations in the same order.
Either way the update ends by assigning `p.data`, which is what advances a
Tensor's version (so a graph built before the step refuses to backpropagate).

When every parameter is an array of one dtype, the gradients, buffers and
scratch arrays of all of them also lie end to end in one flat array each
(`_Flat`): zero_grad() lends backward() the gradients' places in it, and a step
is then a handful of long calls, the same arithmetic, instead of a handful
per parameter (for a small layer the call costs more than its numbers).
"""

from __future__ import annotations

import math
import sys
import weakref
from collections.abc import Iterable

import numpy as np

from . import blas


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
        self._flat: _Flat | None = None

    @staticmethod
    def _check(name: str, value: float, low: float, high: float = math.inf) -> float:
        if not low <= value < high:
            raise ValueError(f"{name} must lie in [{low}, {high}), got {value}")
        return value

    def zero_grad(self) -> None:
        flat = self._layout()
        if flat is not None:
            flat.lend_gradients(self.params)  # which also forgets each gradient, as Tensor.zero_grad() does
            return
        for p in self.params:
            p.zero_grad()

    def _layout(self) -> _Flat | None:
        """The flat layout of the parameters (made on first use, again when their shapes change), or None."""
        if self._flat is None or not self._flat.fits(self.params):
            self._flat = _Flat.of(self.params)
        return self._flat

    def step(self) -> None:
        """One update of every parameter that has a gradient: on the flat arrays when backward() wrote every
        gradient into its lent place, else parameter by parameter."""
        flat = self._flat
        gradient = None if flat is None else flat.gradient(self.params)
        if gradient is None or not self._step_flat(flat, gradient):
            self._step_each()

    def _step_flat(self, flat: _Flat, gradient: np.ndarray) -> bool:
        raise NotImplementedError

    def _step_each(self) -> None:
        raise NotImplementedError

    def _decayed(self, g: np.ndarray, datas: list[np.ndarray], parts: list[np.ndarray], out: np.ndarray):
        """g + weight_decay · p as out= arithmetic into `out`, whose `parts` lie over the parameter arrays
        `datas` (one parameter: [data], [out]; all of them: _Flat's views); g itself without decay."""
        decay = float(self.weight_decay)  # a Python float, so float32 stays float32
        if not decay:
            return g
        for data, part in zip(datas, parts):
            np.multiply(data, decay, out=part)
        return np.add(g, out, out=out)

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


class _Flat:
    """Arrays shaped like the parameters, laid end to end in one flat array: the gradients (lent to backward()
    by zero_grad()), each optimizer buffer, and scratch. A step on them is a few long calls."""

    def __init__(self, params: list) -> None:
        self.datas = [p.data for p in params]  # the arrays the layout was made for: another one means a new layout
        self.shapes, self.dtype = [d.shape for d in self.datas], self.datas[0].dtype
        ends = np.cumsum([d.size for d in self.datas]).tolist()
        self.bounds = list(zip([0] + ends[:-1], ends))
        self.gradients = np.empty(ends[-1], self.dtype)
        # Weak references (a dead one to start with): while a lent view is referred to from its parameter alone,
        # backward() may write into it (tensor._spare counts references); one the caller kept is left alone.
        self.gradient_views: list = [_DEAD] * len(params)
        self.states: dict[str, tuple[np.ndarray, list[np.ndarray]]] = {}
        self._scratch: list[tuple[np.ndarray, list[np.ndarray]]] = []

    @classmethod
    def of(cls, params: list) -> _Flat | None:
        """The layout of `params` if they are Tensors on writeable float arrays of one dtype, no two of them
        sharing memory (weight decay reads each parameter after the one before it is updated: tied weights
        must take the per-parameter path to see that update)."""
        datas = [p.data for p in params]
        first = datas[0]
        if first.__class__ is not np.ndarray or first.dtype.kind != "f":
            return None
        for p, data in zip(params, datas):
            if (data.__class__ is not np.ndarray or data.dtype != first.dtype or not data.flags.writeable
                    or not hasattr(p, "_spare_grad") or data.size == 0):
                return None
        spans = sorted(byte_bounds(d) for d in datas)
        if any(low < high for (_, high), (low, _) in zip(spans, spans[1:])):
            return None
        return cls(params)

    def fits(self, params: list) -> bool:
        for p, data in zip(params, self.datas):
            if p.data is not data:
                return False
        return True

    def scratch(self, k: int) -> tuple[np.ndarray, list[np.ndarray]]:
        """Scratch array k (made on first use) and its per-parameter views."""
        while len(self._scratch) <= k:
            self._scratch.append(self.views(np.empty_like(self.gradients)))
        return self._scratch[k]

    def views(self, array: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        return array, [array[a:b].reshape(shape) for (a, b), shape in zip(self.bounds, self.shapes)]

    def lend_gradients(self, params: list) -> None:
        """Give each parameter its place in `gradients` as the array its next backward() writes into."""
        views, live = [], 0
        for ref in self.gradient_views:
            view = ref()
            views.append(view)
            live += view is not None
        # The flat array is referred to by this object, by each lent view alive, and by getrefcount's argument.
        # Any other reference is an array the caller made from a gradient (p.grad[0], p.grad.T): its numbers
        # must stay, so backward gets a fresh flat array.
        if _refcount is None or _refcount(self.gradients) > 2 + live:
            self.gradients = np.empty_like(self.gradients)
            views = [None] * len(params)
        for i, (p, view) in enumerate(zip(params, views)):
            if view is None:
                (a, b), shape = self.bounds[i], self.shapes[i]
                view = self.gradients[a:b].reshape(shape)
                self.gradient_views[i] = weakref.ref(view)
            p.grad, p._spare_grad = None, view

    def gradient(self, params: list) -> np.ndarray | None:
        """All the gradients as one array, if backward() wrote every one into its lent place and every
        parameter is still on the array the layout was made for; else None."""
        for p, ref, data in zip(params, self.gradient_views, self.datas):
            if p.grad is None or p.grad is not ref() or p.data is not data:
                return None
        return self.gradients

    def writeable(self) -> bool:
        for d in self.datas:
            if not d.flags.writeable:
                return False
        return True

    def state(self, opt: Optimizer, name: str):
        """The optimizer's per-parameter buffers `name`: this layout's flat array when they are its views,
        None before the first step, True when they are separate arrays that move() can make one (as after
        load_state_dict), False when they can't be one (only some exist, or another dtype). Changes nothing."""
        buffers = getattr(opt, name)
        array, views = self.states.get(name, (None, ()))
        if array is not None and all(b is v for b, v in zip(buffers, views)):
            return array
        if all(b is None for b in buffers):
            return None
        return all(b.__class__ is np.ndarray and b.shape == shape and b.dtype == self.dtype
                   for b, shape in zip(buffers, self.shapes))

    def move(self, opt: Optimizer, name: str) -> np.ndarray:
        """Copy the separate buffers `name` into one flat array, which becomes the optimizer's buffers."""
        buffers = getattr(opt, name)
        array = self.adopt(opt, name, np.empty_like(self.gradients))
        for view, b in zip(getattr(opt, name), buffers):
            np.copyto(view, b)
        return array

    def adopt(self, opt: Optimizer, name: str, array: np.ndarray) -> np.ndarray:
        """Make the flat `array` the optimizer's buffers `name` (each parameter's buffer a view of it)."""
        array, views = self.views(array)
        self.states[name] = (array, views)
        setattr(opt, name, list(views))
        return array

    def subtract(self, params: list, delta: list[np.ndarray]) -> None:
        for p, data, d in zip(params, self.datas, delta):
            blas.subtract_(data, d)
            p.data = data  # advances the version, as in the per-parameter path


_DEAD = weakref.ref(type("_Gone", (), {})())  # a weak reference whose object is gone: it gives None
_refcount = getattr(sys, "getrefcount", None)  # as in tensor._spare: elsewhere than CPython, no reuse
byte_bounds = getattr(np.lib, "array_utils", np).byte_bounds  # NumPy 2 moved it


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

    def _step_each(self) -> None:
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

    def _update(self, g: np.ndarray, buf: np.ndarray | None, s: np.ndarray, t: np.ndarray | None):
        """lr · (g's momentum buffer), written into s, and the buffer (None before the first step): the formulas
        above as out= arithmetic on arrays of one shape, one parameter's or all of them end to end (_Flat)."""
        momentum = float(self.momentum)  # Python floats, so float32 stays float32
        if momentum:
            if buf is None:
                buf = g.copy()
            else:
                np.multiply(buf, momentum, out=buf)
                blas.add_(buf, g)
            if self.nesterov:
                np.multiply(buf, momentum, out=t)
                g = np.add(g, t, out=t)
            else:
                g = buf
        return np.multiply(g, float(self.lr), out=s), buf  # g may be s itself: a ufunc may write over its input

    def _step_in_place(self, i: int, p) -> None:
        """step() for one array parameter, into p, its buffer and scratch."""
        data, s = p.data, self._scratch(i)
        g = self._decayed(p.grad, [data], [s], s)
        delta, self.buffers[i] = self._update(g, self.buffers[i], s, self._scratch(i, 1) if self.nesterov else None)
        blas.subtract_(data, delta)
        p.data = data  # the one place the version advances: the setter counts the in-place change

    def _step_flat(self, flat: _Flat, gradient: np.ndarray) -> bool:
        """step() for all parameters at once, on the flat arrays; False, having changed nothing, if it can't."""
        buf = flat.state(self, "buffers") if self.momentum else None
        if buf is False or not flat.writeable():
            return False
        if buf is True:
            buf = flat.move(self, "buffers")
        s, deltas = flat.scratch(0)
        t = flat.scratch(1)[0] if self.nesterov else None
        g = self._decayed(gradient, flat.datas, deltas, s)
        first = buf is None
        _, buf = self._update(g, buf, s, t)
        if self.momentum and first:
            flat.adopt(self, "buffers", buf)
        flat.subtract(self.params, deltas)
        return True


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

    def _step_each(self) -> None:
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

    def _update(self, g: np.ndarray, m, v, s: np.ndarray, u: np.ndarray, t: int):
        """The step (lr / (1 − b1ᵗ)) · m / (√(v / (1 − b2ᵗ)) + eps), written into u, and the moments m and v
        (None before the first step), from g (which may be u itself): the formulas above as out= arithmetic on
        arrays of one shape, one parameter's or all of them end to end (_Flat)."""
        b1, b2 = (float(b) for b in self.betas)  # Python floats, so float32 stays float32
        lr, eps = float(self.lr), float(self.eps)
        if m is None:
            m, v = g * 0, g * 0  # as above (so a nan or inf gradient gives the same nan)
        np.multiply(m, b1, out=m)
        blas.add_(m, np.multiply(g, 1 - b1, out=s))
        np.multiply(v, b2, out=v)
        np.multiply(np.multiply(g, 1 - b2, out=s), g, out=s)  # ((1 − b2) · g) · g, left to right as written above
        blas.add_(v, s)
        np.divide(v, 1 - b2 ** t, out=s)
        np.sqrt(s, out=s)  # NumPy computes an array's ** 0.5 as its square root
        np.add(s, eps, out=s)
        np.multiply(m, lr / (1 - b1 ** t), out=u)
        return np.divide(u, s, out=u), m, v

    def _step_in_place(self, i: int, p, t: int) -> None:
        """step() for one array parameter, into p, m, v and scratch."""
        data = p.data
        s, u = self._scratch(i), self._scratch(i, 1)
        g = self._decayed(p.grad, [data], [u], u)
        delta, self.m[i], self.v[i] = self._update(g, self.m[i], self.v[i], s, u, t)
        blas.subtract_(data, delta)
        p.data = data  # the one place the version advances: the setter counts the in-place change

    def _step_flat(self, flat: _Flat, gradient: np.ndarray) -> bool:
        """step() for all parameters at once, on the flat arrays; False, having changed nothing, if it can't
        (also when the parameters' step counts differ: one t for all is what makes them one array)."""
        m, v = flat.state(self, "m"), flat.state(self, "v")
        t = self.t[0]
        if (m is False or v is False or (m is None) != (v is None) or any(n != t for n in self.t)
                or not flat.writeable()):
            return False
        if m is True:
            m = flat.move(self, "m")
        if v is True:
            v = flat.move(self, "v")
        t += 1
        self.t = [t] * len(self.params)
        (s, _), (u, deltas) = flat.scratch(0), flat.scratch(1)
        g = self._decayed(gradient, flat.datas, deltas, u)
        first = m is None
        _, m, v = self._update(g, m, v, s, u, t)
        if first:
            flat.adopt(self, "m", m)
            flat.adopt(self, "v", v)
        flat.subtract(self.params, deltas)
        return True
