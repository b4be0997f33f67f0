"""The op table: every differentiable primitive, written once.

Each op is a forward rule and a vector-Jacobian product side by side, written
against an array namespace ``xp`` (``SCALAR`` below for floats, ``numpy`` for
arrays). Both engines are generic over this table; neither knows a derivative.

Conventions:
    forward(xp, *inputs, *params)          -> out
    vjp(xp, g, out, *inputs, *params)      -> one gradient per input

``g`` is dL/dout. A VJP may return a gradient of the broadcast shape; the
tensor engine reduces it back to the input's shape. ``params`` are constants
(an exponent, an axis, labels) that are not differentiated.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from types import SimpleNamespace
from typing import NamedTuple


class Op(NamedTuple):
    name: str
    symbol: str  # what a drawing or a chain-rule line prints for this op
    forward: Callable
    vjp: Callable


# The scalar namespace: just the names the table uses, backed by `math`.
SCALAR = SimpleNamespace(exp=math.exp, log=math.log, tanh=math.tanh, maximum=max)


def _expand(xp, g, axis, keepdims):
    """Put back the axes a reduction removed, so `g` broadcasts against its input."""
    return g if keepdims or axis is None else xp.expand_dims(g, axis)


def _log_softmax(xp, z):
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - xp.log(xp.exp(shifted).sum(axis=-1, keepdims=True))


def _logsumexp(xp, a, axis, keepdims):
    m = a.max(axis=axis, keepdims=True)
    out = m + xp.log(xp.exp(a - m).sum(axis=axis, keepdims=True))
    return out if keepdims else out.squeeze(axis)


def _matmul_vjp(xp, g, out, a, b):
    if a.ndim == 1:  # (n,) @ (n, m) -> (m,)
        return g @ b.T, xp.outer(a, g)
    return g @ b.T, a.T @ g


def _max_vjp(xp, g, out, a, axis, keepdims):
    hit = a == _expand(xp, out, axis, keepdims)
    # ties share the gradient, so it still sums to g
    return (hit * (_expand(xp, g, axis, keepdims) / hit.sum(axis=axis, keepdims=True)),)


def _cross_entropy_vjp(xp, g, out, logits, labels):
    grad = xp.exp(_log_softmax(xp, logits))
    grad[xp.arange(len(labels)), labels] -= 1
    return (grad * (g / len(labels)),)


# fmt: off
add     = Op("add",     "+",    lambda xp, a, b: a + b,       lambda xp, g, out, a, b: (g, g))
sub     = Op("sub",     "-",    lambda xp, a, b: a - b,       lambda xp, g, out, a, b: (g, -g))
neg     = Op("neg",     "-",    lambda xp, a: -a,             lambda xp, g, out, a: (-g,))
mul     = Op("mul",     "*",    lambda xp, a, b: a * b,       lambda xp, g, out, a, b: (g * b, g * a))
div     = Op("div",     "/",    lambda xp, a, b: a / b,       lambda xp, g, out, a, b: (g / b, -g * out / b))
pow     = Op("pow",     "**",   lambda xp, a, p: a ** p,      lambda xp, g, out, a, p: (g * p * a ** (p - 1),))
exp     = Op("exp",     "exp",  lambda xp, a: xp.exp(a),      lambda xp, g, out, a: (g * out,))
log     = Op("log",     "log",  lambda xp, a: xp.log(a),      lambda xp, g, out, a: (g / a,))
tanh    = Op("tanh",    "tanh", lambda xp, a: xp.tanh(a),     lambda xp, g, out, a: (g * (1 - out * out),))
sigmoid = Op("sigmoid", "σ",    lambda xp, a: 0.5 * xp.tanh(0.5 * a) + 0.5,  # tanh form: no overflow for large |a|
                                                              lambda xp, g, out, a: (g * out * (1 - out),))
relu    = Op("relu",    "ReLU", lambda xp, a: xp.maximum(a, 0.0),
                                                              lambda xp, g, out, a: (g * (a > 0),))

# Array-only ops: the scalar engine builds these from the elementwise ones.
matmul    = Op("matmul",    "@",   lambda xp, a, b: a @ b,    _matmul_vjp)
sum       = Op("sum",       "Σ",   lambda xp, a, axis, keepdims: a.sum(axis=axis, keepdims=keepdims),
                                   lambda xp, g, out, a, axis, keepdims: (xp.broadcast_to(_expand(xp, g, axis, keepdims), a.shape),))
mean      = Op("mean",      "mean", lambda xp, a, axis, keepdims: a.mean(axis=axis, keepdims=keepdims),
                                   lambda xp, g, out, a, axis, keepdims: (xp.broadcast_to(_expand(xp, g, axis, keepdims) * (out.size / a.size), a.shape),))
max       = Op("max",       "max", lambda xp, a, axis, keepdims: a.max(axis=axis, keepdims=keepdims),  _max_vjp)
logsumexp = Op("logsumexp", "lse", _logsumexp,
                                   lambda xp, g, out, a, axis, keepdims: (_expand(xp, g, axis, keepdims) * xp.exp(a - _expand(xp, out, axis, keepdims)),))
reshape   = Op("reshape",   "reshape", lambda xp, a, shape: a.reshape(shape),   lambda xp, g, out, a, shape: (g.reshape(a.shape),))
transpose = Op("transpose", "ᵀ",   lambda xp, a: a.T,         lambda xp, g, out, a: (g.T,))
cross_entropy = Op("cross_entropy", "CE",  # fused log-softmax + mean NLL: stable, and one node instead of six
                   lambda xp, logits, labels: -_log_softmax(xp, logits)[xp.arange(len(labels)), labels].mean(),
                   _cross_entropy_vjp)
# fmt: on

ELEMENTWISE = (add, sub, neg, mul, div, pow, exp, log, tanh, sigmoid, relu)
