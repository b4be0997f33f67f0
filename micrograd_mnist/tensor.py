"""The array engine: the same op table as `Value`, run on whole NumPy arrays.

Differences from the scalar engine are only those arrays force: inputs may
broadcast, so each gradient is summed back to its input's shape; gradients
start as `None`; and `no_grad()` skips recording for inference.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from numbers import Real

import numpy as np

from . import ops
from .graph import building, display_svg, toposort

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

    __slots__ = ("_data", "grad", "op", "parents", "params", "requires_grad", "label", "_visited", "_version",
                 "_saved_versions", "_spare_grad", "_saved")

    def __init__(self, data, requires_grad: bool = False, label: str | None = None, dtype=None):
        """A copy of `data` (as `torch.tensor` copies): an optimizer updating it in place must not rewrite the
        caller's array. `Tensor.from_numpy` shares memory instead."""
        if isinstance(data, Tensor):
            data = data.data
        self._setup(_as_array(data, dtype, copy=True), requires_grad, label)

    @classmethod
    def from_numpy(cls, array: np.ndarray, requires_grad: bool = False, label: str | None = None) -> Tensor:
        """A Tensor on `array`'s memory, no copy (as `torch.from_numpy`): for data the engine only reads,
        such as a batch of images. A non-float array is converted (and so copied)."""
        if not (isinstance(array, np.ndarray) and array.dtype.kind in ("f", "b")):
            array = _as_array(array, None)
        out = cls.__new__(cls)
        out._setup(array, requires_grad, label)
        return out

    def _setup(self, data: np.ndarray, requires_grad: bool, label: str | None) -> None:
        if requires_grad and data.dtype.kind != "f":
            raise TypeError(f"only float tensors can require grad; this one holds {data.dtype}")
        self._data = data
        self.grad: np.ndarray | None = None
        self.op = None
        self.parents: tuple = ()
        self.params: tuple = ()
        self.requires_grad = requires_grad
        self.label = label
        self._visited = None  # toposort's mark
        self._version, self._saved_versions = 0, ()
        self._spare_grad = None  # a leaf's last gradient array, kept by zero_grad() for backward to write into
        self._saved = None  # what a fused forward (FAST_FORWARD) kept for its fused backward

    # Assigning .data (which `W.data -= lr * g` does, after updating in place) counts as a change:
    # backward through a graph that used the old values would mix old and new numbers, so it refuses.
    @property
    def data(self) -> np.ndarray:
        return self._data

    @data.setter
    def data(self, value: np.ndarray) -> None:
        self._data = value
        self._version += 1

    @classmethod
    def apply(cls, op: ops.Op, *parents: Tensor, params: tuple = ()) -> Tensor:
        """Run one row of the op table on Tensors and record it for backward, as tinygrad's `Function.apply`:
        `Tensor.apply(ops.linear, x, W, b)`; `params` are the op's constants (`params=(labels,)`)."""
        if len(parents) != len(op.vjp) or not _all_tensors(parents):  # one VJP per input
            raise TypeError(f"{op.name} takes {len(op.vjp)} Tensor(s), got "
                            f"{', '.join(type(p).__name__ for p in parents) or 'none'}")
        return cls._from_op(op, parents, tuple(params))

    @classmethod
    def _from_op(cls, op: ops.Op, parents: tuple, params: tuple = ()) -> Tensor:
        record = False
        if _grad_enabled:
            for p in parents:
                if p.requires_grad:
                    record = True
                    break
        inputs = [p._data for p in parents]
        fast = FAST_FORWARD.get(op.name)
        result = None if fast is None else fast(record, *inputs, *params)
        if result is None:
            data, saved = op.forward(np, *inputs, *params), None
        else:
            data, saved = result
        out = cls.__new__(cls)
        out._data = data if data.__class__ is np.ndarray else np.asarray(data)
        out.grad = out.label = out._visited = None
        out._version, out._saved = 0, saved
        if record:
            out.op, out.parents, out.params, out.requires_grad = op, parents, params, True
            out._saved_versions = tuple([p._version for p in parents])
        else:
            out.op, out.parents, out.params, out.requires_grad, out._saved_versions = None, (), (), False, ()
        return out

    def _lift(self, other) -> Tensor:
        if other.__class__ is Tensor:
            return other
        if isinstance(other, (Real, np.ndarray)) and not isinstance(other, bool):
            # a constant takes this tensor's dtype, so float32 stays float32
            return Tensor.from_numpy(np.asarray(other, dtype=self._data.dtype))
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
        if len(a) not in (1, 2):
            raise ValueError(f"matmul shape mismatch: {a} @ {b}; the left must be a vector or a matrix "
                             f"(1-D or 2-D), not {len(a)}-D: reshape it to (batch, features)")
        if len(b) != 2:
            raise ValueError(f"matmul shape mismatch: {a} @ {b}; the right must be a matrix (2-D), not {len(b)}-D: "
                             f"for a vector w, use x @ w.reshape({b[0] if b else 1}, 1)")
        if a[-1] != b[0]:
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
        if isinstance(index, Tensor):
            index = _as_index(index)
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
            grad = np.array(grad, dtype=self.data.dtype)  # a copy: the caller's array must not become a grad
            if grad.shape != self.shape:
                raise ValueError(f"backward(grad) got grad of shape {grad.shape} for a tensor of shape {self.shape}")
        with building():
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
                for parent, version in zip(parents, node._saved_versions):
                    if parent._version != version:
                        raise RuntimeError(_modified_message(parent, node))
                fast = FAST_BACKWARD.get(op.name)
                if fast is not None and fast(node, g, *parents):
                    continue
                inputs = [p._data for p in parents]
                for parent, vjp in zip(parents, op.vjp):
                    if parent.requires_grad:  # e.g. no gradient for the image batch in x @ W
                        _accumulate(parent, vjp(np, g, node._data, *inputs, *node.params), g)

    def zero_grad(self) -> None:
        """Forget the gradient (`.grad` is None, as after torch's zero_grad()). The array is kept aside, and
        the next backward() writes this leaf's new gradient into it rather than into fresh memory, if
        nothing else holds it by then (an array you kept, `g = t.grad`, is never overwritten)."""
        if self.grad is not None:
            self._spare_grad = self.grad
        self.grad = None

    def detach(self) -> Tensor:
        """The same numbers (shared, as in PyTorch), cut from the graph."""
        return Tensor.from_numpy(self.data)

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
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d tensor: it holds one number; use .item() to read it")
        return (self[i] for i in range(len(self)))

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        return self.data if dtype is None else self.data.astype(dtype)

    def __repr__(self) -> str:
        label = f", label={self.label!r}" if self.label else ""
        grad = ", requires_grad=True" if self.requires_grad else ""
        body = np.array2string(self.data, precision=4, threshold=8, edgeitems=2, separator=", ")
        return f"Tensor({body}, dtype={self.dtype}{grad}{label})"

    def _repr_svg_(self) -> str | None:  # Jupyter shows the graph (drawn by viz, found as a plugin)
        return display_svg(self)


def _all_tensors(items: tuple) -> bool:
    for item in items:
        if item.__class__ is not Tensor and not isinstance(item, Tensor):
            return False
    return True


def unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum `grad` down to `shape`: the adjoint of NumPy broadcasting."""
    if grad.shape == shape:
        return grad
    grad = grad.sum(axis=tuple(range(grad.ndim - len(shape))))  # leading axes broadcasting added
    keep = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    return grad.sum(axis=keep, keepdims=True) if keep else grad


def _accumulate(parent: Tensor, grad, g: np.ndarray) -> None:
    """Add one VJP's result to `parent.grad`: an array of the parent's dtype and shape (summed back over
    broadcasting), owned by a leaf; `g` is the upstream gradient the VJP was given."""
    data = parent._data
    if grad.__class__ is not np.ndarray or grad.dtype != data.dtype:
        grad = np.asarray(grad, dtype=data.dtype)  # a grad is an array of its tensor's dtype
    if grad.shape != data.shape:
        grad = unbroadcast(grad, data.shape)
    if parent.op is not None:
        parent.grad = grad if parent.grad is None else parent.grad + grad
    elif parent.grad is not None:
        parent.grad += grad  # in place: a leaf's grad is its own (below)
    elif grad is g or not grad.flags.owndata:
        # a leaf owns its grad: a view (g.T, a broadcast, g itself) would share memory
        # with another leaf's grad or the caller's array, and an in-place edit would hit both
        out = _spare(parent)
        if out is None:
            parent.grad = grad.copy()
        else:
            np.copyto(out, grad)
            parent.grad = out
    else:
        parent.grad = grad


# While only the slot holding it (and getrefcount's own argument) refers to a spare gradient, nobody can see
# it change. Elsewhere than CPython there is no reference count to ask, and spares are simply not reused.
_refcount = getattr(sys, "getrefcount", None)


def _spare(leaf: Tensor) -> np.ndarray | None:
    """The leaf's spare gradient array (see zero_grad) if backward may write this pass's gradient into it."""
    spare = getattr(leaf, "_spare_grad", None)  # a Tensor made other than by _setup may lack the slot
    if spare is None:
        return None
    leaf._spare_grad = None
    data = leaf._data
    if _refcount is None or _refcount(spare) > 2 or spare.shape != data.shape or spare.dtype != data.dtype:
        return None
    return spare


def _spare_or_new(leaf: Tensor) -> np.ndarray:
    spare = _spare(leaf)
    return np.empty_like(leaf._data) if spare is None else spare


def _linear_backward(node: Tensor, g: np.ndarray, x: Tensor, W: Tensor, b: Tensor) -> bool:
    """ops.linear's three VJPs (g · Wᵀ, xᵀ · g, Σ g over the batch) for the usual layer: a 2-D batch, every
    array of one dtype. A leaf's first gradient of the pass goes straight into its spare array (no fresh
    memory per step). The same operations in the same order as the table's VJPs, so the same numbers
    (tests/test_speed_paths.py). False, having done nothing, for any other case: the table handles those."""
    xd, Wd, bd = x._data, W._data, b._data
    dtype = g.dtype
    if xd.ndim != 2 or g.ndim != 2 or bd.shape != g.shape[1:] or not xd.dtype == Wd.dtype == bd.dtype == dtype:
        return False  # e.g. a bias of shape (1,) broadcast over the outputs: the table sums it back
    if x.requires_grad:
        _accumulate(x, g @ Wd.T, g)
    if W.requires_grad:
        if W.op is None and W.grad is None:
            W.grad = np.matmul(xd.T, g, out=_spare_or_new(W))
        else:
            _accumulate(W, xd.T @ g, g)
    if b.requires_grad:
        if b.op is None and b.grad is None:
            b.grad = np.add.reduce(g, axis=0, out=_spare_or_new(b))  # what unbroadcast's g.sum(axis=(0,)) does
        else:
            _accumulate(b, g, g)
    return True


def _linear_forward(record: bool, x: np.ndarray, W: np.ndarray, b: np.ndarray):
    """ops.linear's forward, x @ W + b, with the bias added into the product's array instead of a new one."""
    if x.ndim != 2 or b.shape != W.shape[1:] or not x.dtype == W.dtype == b.dtype:
        return None
    out = np.matmul(x, W)
    return np.add(out, b, out=out), None


def _relu_forward(record: bool, a: np.ndarray):
    """ops.relu's forward, max(a, 0), against an array of zeros rather than the number 0: NumPy's maximum
    runs 3-4x faster on two arrays than on an array and a scalar, and gives the same numbers."""
    if a.dtype.kind != "f":
        return None
    return np.maximum(a, _zeros(a.size, a.dtype)[:a.size].reshape(a.shape)), None


_ZEROS: dict[np.dtype, np.ndarray] = {}


def _zeros(size: int, dtype: np.dtype) -> np.ndarray:
    """At least `size` zeros of `dtype`, kept for reuse (the largest size asked for, per dtype). Never
    written: where NumPy's big allocations are fresh mappings (Linux), the memory behind them is the
    operating system's one shared zero page, so they cost address space rather than RAM."""
    zeros = _ZEROS.get(dtype)
    if zeros is None or zeros.size < size:
        zeros = _ZEROS[dtype] = np.zeros(max(size, 2 * (0 if zeros is None else zeros.size)), dtype)
        zeros.flags.writeable = False
    return zeros


def _cross_entropy_forward(record: bool, logits: np.ndarray, labels: np.ndarray):
    """ops.cross_entropy's forward, the same operations; when a graph is recorded it also keeps
    softmax(logits), which the table's VJP would compute again the same way, for the fused backward."""
    if logits.ndim != 2:
        return None
    shifted = logits - _row_max(logits)
    e = np.exp(shifted)
    total = e.sum(axis=-1, keepdims=True)
    n = len(labels)
    # the table's (shifted − log total)[rows, labels], picked first: the same n differences, summed in the same order
    out = -(shifted[np.arange(n), labels] - np.log(total[:n, 0])).sum() / n
    if out != out:  # a NaN or infinite logit: the table's own forward, so even a NaN's sign bit is the same
        return None
    return out, (np.divide(e, total, out=e) if record else None)


def _row_max(a: np.ndarray) -> np.ndarray:
    """a.max(axis=-1, keepdims=True) for a 2-D array, read down the columns of a transposed copy when rows are
    short, where NumPy's row reduction is 3-6x slower. The same numbers (a max is exact, whatever the order)
    except which NaN a row with several NaNs gives: the caller leaves NaN rows to the table."""
    if a.shape[1] > 32:
        return a.max(axis=-1, keepdims=True)
    return np.ascontiguousarray(a.T).max(axis=0)[:, None]


def _cross_entropy_backward(node: Tensor, g: np.ndarray, logits: Tensor) -> bool:
    """ops.cross_entropy's VJP, (softmax − onehot) · g / n, from the softmax its forward kept."""
    grad, node._saved = node._saved, None  # used once: it becomes the gradient (a second backward: the table)
    if grad is None or not logits.requires_grad:
        return False
    labels = node.params[0]
    grad[np.arange(len(labels)), labels] -= 1
    grad *= g / len(labels)
    _accumulate(logits, grad, g)
    return True


# Fused rules, by op name, for the ops a training step spends its time in. Each computes what the op table
# computes (same operations, same order, same numbers) with fewer temporaries, and gives None (forward) or
# False (backward) to leave a case it does not cover to the table. A forward returns (out, saved): `saved`
# is kept on the new node for its backward. Setting both to {} runs everything through the table.
FAST_FORWARD: dict[str, Callable[..., tuple | None]] = {"linear": _linear_forward, "relu": _relu_forward,
                                                        "cross_entropy": _cross_entropy_forward}
FAST_BACKWARD: dict[str, Callable[..., bool]] = {"linear": _linear_backward,
                                                 "cross_entropy": _cross_entropy_backward}


def _modified_message(tensor: Tensor, user: Tensor) -> str:
    name = f"{tensor.label!r} " if tensor.label else ""
    return (f"backward(): the tensor {name}of shape {tensor.shape} was changed (its .data assigned, e.g. by an "
            f"optimizer step) after {user.op.name} used it, so this graph's gradients would mix old and new "
            "values; run the forward pass again, then backward()")


def _as_index(index: Tensor) -> np.ndarray:
    """A Tensor as an index: a boolean one masks, a float one must hold whole numbers (Tensors hold floats)."""
    data = index.data
    if data.dtype.kind == "b":
        return data
    whole = data.astype(np.intp)
    if not np.array_equal(whole, data):
        raise IndexError(f"a Tensor index must hold whole numbers (or booleans, to mask); got {data!r:.60}")
    return whole


def _as_array(data, dtype, copy: bool = False) -> np.ndarray:
    """Lists and numbers become float32 (PyTorch's default); an ndarray keeps a
    float dtype, so float64 stays available for gradient checks. Booleans stay
    booleans (a mask); anything complex is refused rather than silently made real."""
    if data is None or isinstance(data, (str, bytes)):
        raise TypeError(f"Tensor(data) needs numbers (an ndarray, a list or a number), got {data!r:.60}")
    if dtype is None:
        array = data if isinstance(data, np.ndarray) else np.asarray(data) if _all_bools(data) else None
        kind = array.dtype.kind if array is not None else ""
        dtype = array.dtype if kind in ("f", "b") else np.float32
        if kind == "c":
            raise TypeError(f"Tensor(data) needs real numbers, got a {array.dtype} array: take .real or abs() first")
    elif isinstance(data, np.ndarray) and data.dtype.kind == "c":
        raise TypeError(f"Tensor(data) needs real numbers, got a {data.dtype} array: take .real or abs() first")
    try:
        return np.array(data, dtype=dtype) if copy else np.asarray(data, dtype=dtype)
    except (TypeError, ValueError):
        got = f"{type(data).__name__}: {data!r:.60}"
        raise TypeError(f"Tensor(data) needs numbers (an ndarray, a list or a number), got {got}") from None


def _all_bools(data) -> bool:
    """True for a bool or a (nested) non-empty list of bools: PyTorch makes those a bool tensor."""
    if isinstance(data, (bool, np.bool_)):
        return True
    return isinstance(data, (list, tuple)) and len(data) > 0 and all(_all_bools(x) for x in data)
