"""The scalar engine: one number per node, every step of backprop visible.

A `Value` records the op that made it and its parents; `backward()` walks the
graph in reverse topological order and asks the op table for each local
vector-Jacobian product. The table (`ops.py`) holds all the mathematics.
"""

from __future__ import annotations

from numbers import Real

from . import ops
from .graph import no_cycle_collection, toposort
from .ops import SCALAR


class Value:
    """A scalar with a gradient: `Value(2.0, label="w")`."""

    __slots__ = ("data", "grad", "op", "parents", "params", "label")

    def __init__(self, data: float, label: str | None = None, _op=None, _parents=(), _params=()):
        if _op is None and data.__class__ is not float:
            data = _as_float(data)
        self.data = data
        self.grad = 0.0
        self.op = _op  # the ops.Op that made this node; None for a leaf
        self.parents = _parents
        self.params = _params  # constants the op needs (a pow's exponent)
        self.label = label

    # --- building the graph ----------------------------------------------
    def _unary(self, op, *params):
        return Value(op.forward(SCALAR, self.data, *params), None, op, (self,), params)

    def _binary(self, op, other):
        if other.__class__ is not Value:
            other = _lift(other)
        return Value(op.forward(SCALAR, self.data, other.data), None, op, (self, other))

    def _rbinary(self, op, other):
        return _lift(other)._binary(op, self)

    def __add__(self, other): return self._binary(ops.add, other)
    def __radd__(self, other): return self._rbinary(ops.add, other)
    def __sub__(self, other): return self._binary(ops.sub, other)
    def __rsub__(self, other): return self._rbinary(ops.sub, other)
    def __mul__(self, other): return self._binary(ops.mul, other)
    def __rmul__(self, other): return self._rbinary(ops.mul, other)
    def __truediv__(self, other): return self._binary(ops.div, other)
    def __rtruediv__(self, other): return self._rbinary(ops.div, other)
    def __neg__(self): return self._unary(ops.neg)

    def __pow__(self, p: float) -> Value:
        if not isinstance(p, Real) or isinstance(p, bool):
            raise TypeError(f"Value ** p needs p to be a plain number (a constant exponent), got {type(p).__name__}")
        return self._unary(ops.pow, p)

    def exp(self) -> Value: return self._unary(ops.exp)
    def log(self) -> Value: return self._unary(ops.log)
    def tanh(self) -> Value: return self._unary(ops.tanh)
    def sigmoid(self) -> Value: return self._unary(ops.sigmoid)
    def relu(self) -> Value: return self._unary(ops.relu)

    # --- backprop ----------------------------------------------------------
    def backward(self) -> None:
        """Fill `.grad` of every node this one depends on with d(self)/d(node).

        Gradients accumulate (`+=`), as they must for a node used twice, and as
        in PyTorch they keep accumulating across calls: zero them between steps.
        """
        with no_cycle_collection():
            order = toposort(self)
            self.grad = 1.0
            for node in reversed(order):
                op = node.op
                if op is None:
                    continue
                parents = node.parents
                if len(parents) == 2:
                    a, b = parents
                    ga, gb = op.vjp(SCALAR, node.grad, node.data, a.data, b.data)
                    a.grad += ga
                    b.grad += gb
                else:
                    (a,) = parents
                    a.grad += op.vjp(SCALAR, node.grad, node.data, a.data, *node.params)[0]

    def zero_grad(self) -> None:
        self.grad = 0.0

    def __repr__(self) -> str:
        label = f", label={self.label!r}" if self.label else ""
        return f"Value(data={self.data:.4g}, grad={self.grad:.4g}{label})"


def _as_float(x) -> float:
    if isinstance(x, Real) and not isinstance(x, bool):
        return float(x)
    raise TypeError(f"Value(data) needs a real number, got {type(x).__name__}: {x!r:.40}")


def _lift(x) -> Value:
    """Wrap a plain number so it can join a graph; anything else is a user error."""
    if isinstance(x, Value):
        return x
    if isinstance(x, Real) and not isinstance(x, bool):
        return Value(x)
    raise TypeError(f"can't combine a Value with {type(x).__name__}: use a number or a Value")
