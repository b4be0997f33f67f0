"""The scalar engine: one number per node, every step of backprop visible.

A `Value` records the op that made it and its parents; `backward()` walks the
graph in reverse topological order and asks the op table for each local
vector-Jacobian product. The table (`ops.py`) holds all the mathematics.
"""

from __future__ import annotations

from numbers import Real

from . import ops
from .graph import building, display_svg
from .ops import SCALAR

# Method makers: one function per operator, no per-node closures. Each calls the
# table's forward rule and fills a new node's slots in _node, not through __init__
# (whose checks only a user's leaf needs): a cheaper frame than type(...) + __init__.
_new = object.__new__


def _node(data: float, op, a, b, params: tuple = ()) -> Value:
    out = _new(Value)
    out.data = data
    out.grad = 0.0
    out.op = op
    out._a = a
    out._b = b
    out.params = params
    out.label = None
    out._visited = None
    return out


def _unary(op):
    forward = op.forward

    def method(self):
        return _node(forward(SCALAR, self.data), op, self, None)
    return method


def _binary(op):
    forward = op.forward

    def method(self, other):  # _node written out: the hottest path, one frame fewer
        if other.__class__ is not Value:
            other = _lift(other)
        out = _new(Value)
        out.data = forward(SCALAR, self.data, other.data)
        out.grad = 0.0
        out.op = op
        out._a = self
        out._b = other
        out.params = ()
        out.label = None
        out._visited = None
        return out
    return method


def _reflected(op):  # number (op) Value
    forward = op.forward

    def method(self, other):
        other = _lift(other)
        return _node(forward(SCALAR, other.data, self.data), op, other, self)
    return method


class Value:
    """A scalar with a gradient: `Value(2.0, label="w")`."""

    # A node's parents live in two slots, `_a` and `_b` (None where absent), not in a tuple: one object per
    # node instead of two halves the work of Python's cycle collector, which walks every tracked object
    # alive (each graph a training step builds, until it is freed) and cannot know that graphs are acyclic.
    # `parents` gives them as the tuple the drawer and the walk-throughs read.
    __slots__ = ("data", "grad", "op", "_a", "_b", "params", "label", "_visited")

    def __init__(self, data: float, label: str | None = None, _op=None, _parents=(), _params=()):
        if _op is None and data.__class__ is not float:
            data = _as_float(data)
        if len(_parents) > 2:
            raise ValueError(f"a Value has at most two parents, got {len(_parents)}")
        self.data = data
        self.grad = 0.0
        self.op = _op  # the ops.Op that made this node; None for a leaf
        self._a, self._b = (*_parents, None, None)[:2]
        self.params = _params  # constants the op needs (a pow's exponent)
        self.label = label
        self._visited = None  # toposort's mark

    @property
    def parents(self) -> tuple:
        a, b = self._a, self._b
        return () if a is None else (a,) if b is None else (a, b)

    # --- building the graph: each operator is the op table's forward rule ---
    __add__, __radd__ = _binary(ops.add), _reflected(ops.add)
    __sub__, __rsub__ = _binary(ops.sub), _reflected(ops.sub)
    __mul__, __rmul__ = _binary(ops.mul), _reflected(ops.mul)
    __truediv__, __rtruediv__ = _binary(ops.div), _reflected(ops.div)
    __neg__ = _unary(ops.neg)
    exp, log, tanh = _unary(ops.exp), _unary(ops.log), _unary(ops.tanh)
    sigmoid, relu = _unary(ops.sigmoid), _unary(ops.relu)

    def __pow__(self, p: float) -> Value:
        if not isinstance(p, Real) or isinstance(p, bool):
            raise TypeError(f"Value ** p needs p to be a plain number (a constant exponent), got {type(p).__name__}")
        return _node(ops.pow.forward(SCALAR, self.data, p), ops.pow, self, None, (p,))

    # --- backprop ----------------------------------------------------------
    def backward(self) -> None:
        """Fill `.grad` of every node this one depends on with d(self)/d(node).

        Gradients accumulate (`+=`), as they must for a node used twice. As in
        PyTorch, a leaf's grad keeps accumulating across calls (zero them
        between steps); intermediate nodes start from zero on every call.
        """
        with building():  # graphs are acyclic: the cycle collector's passes over them are pure overhead
            order = _toposort(self)
            for node in order:
                if node.op is not None:
                    node.grad = 0.0  # intermediate grads are this pass's alone; only leaves accumulate
            self.grad += 1.0  # a leaf's grad accumulates, as the Tensor engine's and PyTorch's do
            for node in reversed(order):
                op = node.op
                if op is None:
                    continue
                a, b = node._a, node._b
                try:
                    if b is not None:
                        da, db = op.vjp
                        a.grad += da(SCALAR, node.grad, node.data, a.data, b.data)
                        b.grad += db(SCALAR, node.grad, node.data, a.data, b.data)
                    else:
                        a.grad += op.vjp[0](SCALAR, node.grad, node.data, a.data, *node.params)
                except (ArithmeticError, ValueError) as e:  # e.g. the slope of a ** 0.5 at a = 0
                    raise ValueError(_undefined_message(node, e)) from None

    def zero_grad(self) -> None:
        self.grad = 0.0

    def __repr__(self) -> str:
        label = f", label={self.label!r}" if self.label else ""
        return f"Value(data={self.data:.4g}, grad={self.grad:.4g}{label})"

    def _repr_svg_(self) -> str | None:  # Jupyter shows the graph (drawn by viz, found as a plugin)
        return display_svg(self)


def _toposort(root: Value) -> list[Value]:
    """graph.toposort for Values, reading the two parent slots directly (no tuple per visit)."""
    token = object()  # fresh each call, so old marks never need clearing
    root._visited = token
    order, stack = [], [root]
    push, pop, emit = stack.append, stack.pop, order.append
    while stack:
        node = stack[-1]
        a = node._a
        if a is not None and a._visited is not token:
            a._visited = token
            push(a)
            continue
        b = node._b
        if b is not None and b._visited is not token:
            b._visited = token
            push(b)
            continue
        emit(pop())
    return order


def _undefined_message(node: Value, error: Exception) -> str:
    inputs = ", ".join(f"{p.label or 'input'} = {p.data:g}" for p in node.parents)
    name = f" ({node.label})" if node.label else ""
    return (f"backward(): the derivative of {node.op.name}{name} is undefined at {inputs} "
            f"({error}); e.g. a ** 0.5 has no slope at a = 0")


def _as_float(x) -> float:
    if isinstance(x, Real) and not isinstance(x, bool):
        return float(x)
    raise TypeError(f"Value(data) needs a real number, got {type(x).__name__}: {x!r:.40}")


def _lift(x) -> Value:
    """Wrap a plain number so it can join a graph; anything else is a user error."""
    if x.__class__ is float:  # the usual constant (v * 2.0, 1 - v): a leaf made directly, without Value()'s checks
        return _node(x, None, None, None)
    if isinstance(x, Value):
        return x
    if isinstance(x, Real) and not isinstance(x, bool):
        return _node(float(x), None, None, None)
    raise TypeError(f"can't combine a Value with {type(x).__name__}: use a number or a Value")
