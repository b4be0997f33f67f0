"""The array engine: the same op table as `Value`, run on whole NumPy arrays.

Differences from the scalar engine are only those arrays force: inputs may
broadcast, so each gradient is summed back to its input's shape; gradients
start as `None`; and `no_grad()` skips recording for inference.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from numbers import Real

import numpy as np

from . import ops
from .graph import no_cycle_collection, toposort

_grad_enabled = True


@contextmanager
def no_grad() -> Iterator[None]:
    """Run without recording the graph: for inference and parameter updates."""
    global _grad_enabled
    previous, _grad_enabled = _grad_enabled, False
    try:
        yield
    finally:
        _grad_enabled = previous


class Tensor:
    """An ndarray that remembers how it was made: `Tensor(np.ones((2, 3)), label="x")`."""

    __array_ufunc__ = None  # `ndarray + Tensor` defers to Tensor.__radd__ instead of looping elementwise

    __slots__ = ("data", "grad", "op", "parents", "params", "requires_grad", "label", "_visited")

    def __init__(self, data, requires_grad: bool = False, label: str | None = None, dtype=None):
        if isinstance(data, Tensor):
            data = data.data
        if not isinstance(data, np.ndarray) or data.dtype.kind != "f" or (dtype is not None and data.dtype != dtype):
            data = _as_array(data, dtype)
        self.data = data
        self.grad: np.ndarray | None = None
        self.op = None
        self.parents: tuple = ()
        self.params: tuple = ()
        self.requires_grad = requires_grad
        self.label = label
        self._visited = None  # toposort's mark

    @classmethod
    def _from_op(cls, op: ops.Op, parents: tuple, params: tuple = ()) -> Tensor:
        data = op.forward(np, *[p.data for p in parents], *params)
        out = cls.__new__(cls)
        out.data = data if data.__class__ is np.ndarray else np.asarray(data)
        out.grad = out.label = out._visited = None
        out.op, out.parents, out.params, out.requires_grad = None, (), (), False
        if _grad_enabled:
            for p in parents:
                if p.requires_grad:
                    out.op, out.parents, out.params, out.requires_grad = op, parents, params, True
                    break
        return out

    def _lift(self, other) -> Tensor:
        if other.__class__ is Tensor:
            return other
        if isinstance(other, (Real, np.ndarray)) and not isinstance(other, bool):
            # a constant takes this tensor's dtype, so float32 stays float32
            return Tensor(np.asarray(other, dtype=self.data.dtype))
        raise TypeError(f"can't combine a Tensor with {type(other).__name__}: use a number, an ndarray or a Tensor")

    def _binary(self, op, other) -> Tensor:
        return Tensor._from_op(op, (self, self._lift(other)))

    def _rbinary(self, op, other) -> Tensor:
        return Tensor._from_op(op, (self._lift(other), self))

    # --- elementwise, as in Value ----------------------------------------
    def __add__(self, other): return self._binary(ops.add, other)
    def __radd__(self, other): return self._rbinary(ops.add, other)
    def __sub__(self, other): return self._binary(ops.sub, other)
    def __rsub__(self, other): return self._rbinary(ops.sub, other)
    def __mul__(self, other): return self._binary(ops.mul, other)
    def __rmul__(self, other): return self._rbinary(ops.mul, other)
    def __truediv__(self, other): return self._binary(ops.div, other)
    def __rtruediv__(self, other): return self._rbinary(ops.div, other)
    def __neg__(self): return Tensor._from_op(ops.neg, (self,))

    def __pow__(self, p: float) -> Tensor:
        if not isinstance(p, Real) or isinstance(p, bool):
            raise TypeError(f"Tensor ** p needs p to be a plain number (a constant exponent), got {type(p).__name__}")
        return Tensor._from_op(ops.pow, (self,), (p,))

    def exp(self) -> Tensor: return Tensor._from_op(ops.exp, (self,))
    def log(self) -> Tensor: return Tensor._from_op(ops.log, (self,))
    def tanh(self) -> Tensor: return Tensor._from_op(ops.tanh, (self,))
    def sigmoid(self) -> Tensor: return Tensor._from_op(ops.sigmoid, (self,))
    def relu(self) -> Tensor: return Tensor._from_op(ops.relu, (self,))

    # --- array ops ---------------------------------------------------------
    def __matmul__(self, other) -> Tensor:
        other = self._lift(other)
        a, b = self.shape, other.shape
        if len(a) not in (1, 2) or len(b) != 2 or a[-1] != b[0]:
            raise ValueError(f"matmul shape mismatch: {a} @ {b}; the left's last dimension must equal "
                             "the right's first (x @ W with W of shape (in, out))")
        return Tensor._from_op(ops.matmul, (self, other))

    def __rmatmul__(self, other) -> Tensor:
        return self._lift(other).__matmul__(self)

    def sum(self, axis: int | None = None, keepdims: bool = False) -> Tensor:
        return Tensor._from_op(ops.sum, (self,), (axis, keepdims))

    def mean(self, axis: int | None = None, keepdims: bool = False) -> Tensor:
        return Tensor._from_op(ops.mean, (self,), (axis, keepdims))

    def max(self, axis: int | None = None, keepdims: bool = False) -> Tensor:
        return Tensor._from_op(ops.max, (self,), (axis, keepdims))

    def logsumexp(self, axis: int | None = None, keepdims: bool = False) -> Tensor:
        return Tensor._from_op(ops.logsumexp, (self,), (axis, keepdims))

    def reshape(self, *shape) -> Tensor:
        shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        try:
            return Tensor._from_op(ops.reshape, (self,), (tuple(shape),))
        except ValueError:
            raise ValueError(f"can't reshape a tensor of shape {self.shape} "
                             f"({self.data.size} numbers) to {tuple(shape)}") from None

    def __getitem__(self, index) -> Tensor:
        if isinstance(index, Tensor):  # Tensors hold floats; as an index they mean integers
            index = index.data.astype(np.intp)
        try:
            return Tensor._from_op(ops.getitem, (self,), (index,))
        except IndexError as e:
            raise IndexError(f"index {index!r} does not fit a tensor of shape {self.shape}: {e}") from None

    @property
    def T(self) -> Tensor:
        return Tensor._from_op(ops.transpose, (self,))

    # --- backprop ----------------------------------------------------------
    def backward(self, grad: np.ndarray | None = None) -> None:
        """Accumulate d(self)/d(leaf) into `.grad` of every tensor that requires grad.

        `self` must be a single number unless `grad` (dL/dself) is given.
        """
        if not self.requires_grad:
            raise RuntimeError("backward() on a tensor that nothing requires grad for: make the leaves you want "
                               "gradients of with Tensor(..., requires_grad=True)")
        if grad is None:
            if self.data.size != 1:
                raise ValueError(f"backward() on a tensor of shape {self.shape} needs grad=dL/dself; "
                                 "call it on a scalar loss, or pass the upstream gradient")
            grad = np.ones_like(self.data)
        else:
            grad = np.asarray(grad, dtype=self.data.dtype)
            if grad.shape != self.shape:
                raise ValueError(f"backward(grad) got grad of shape {grad.shape} for a tensor of shape {self.shape}")
        with no_cycle_collection():
            order = toposort(self)
            for node in order:
                if node.op is not None:
                    node.grad = None  # intermediate grads are this pass's alone; only leaves accumulate
            self.grad = grad if self.grad is None else self.grad + grad
            for node in reversed(order):
                op, g = node.op, node.grad
                if op is None or g is None:
                    continue
                parents = node.parents
                inputs = [p.data for p in parents]
                for parent, vjp in zip(parents, op.vjp):
                    if parent.requires_grad:  # e.g. no gradient for the image batch in x @ W
                        grad = vjp(np, g, node.data, *inputs, *node.params)
                        if grad.shape != parent.data.shape:
                            grad = unbroadcast(grad, parent.data.shape)
                        if parent.op is None and (grad is g or not grad.flags.writeable):
                            grad = grad.copy()  # a leaf owns its grad: no aliasing, safe to edit in place
                        parent.grad = grad if parent.grad is None else parent.grad + grad

    def zero_grad(self) -> None:
        self.grad = None

    def detach(self) -> Tensor:
        return Tensor(self.data)

    # --- conveniences ------------------------------------------------------
    @property
    def shape(self) -> tuple:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    def item(self) -> float:
        return self.data.item()

    def numpy(self) -> np.ndarray:
        return self.data

    def __len__(self) -> int:
        return len(self.data)

    def __iter__(self) -> Iterator[Tensor]:
        return (self[i] for i in range(len(self)))  # len() refuses a 0-d tensor, as iteration should

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        return self.data if dtype is None else self.data.astype(dtype)

    def __repr__(self) -> str:
        label = f", label={self.label!r}" if self.label else ""
        grad = ", requires_grad=True" if self.requires_grad else ""
        body = np.array2string(self.data, precision=4, threshold=8, edgeitems=2, separator=", ")
        return f"Tensor({body}, dtype={self.dtype}{grad}{label})"


def unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum `grad` down to `shape`: the adjoint of NumPy broadcasting."""
    if grad.shape == shape:
        return grad
    grad = grad.sum(axis=tuple(range(grad.ndim - len(shape))))  # leading axes broadcasting added
    keep = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    return grad.sum(axis=keep, keepdims=True) if keep else grad


def _as_array(data, dtype) -> np.ndarray:
    """Lists and numbers become float32 (PyTorch's default); an ndarray keeps a
    float dtype, so float64 stays available for gradient checks."""
    if data is None or isinstance(data, (str, bytes)):
        raise TypeError(f"Tensor(data) needs numbers (an ndarray, a list or a number), got {data!r:.60}")
    if dtype is None:
        float_array = isinstance(data, np.ndarray) and data.dtype.kind == "f"
        dtype = data.dtype if float_array else np.float32
    try:
        return np.asarray(data, dtype=dtype)
    except (TypeError, ValueError):
        got = f"{type(data).__name__}: {data!r:.60}"
        raise TypeError(f"Tensor(data) needs numbers (an ndarray, a list or a number), got {got}") from None
