"""The op table: every differentiable primitive, written once.

Each op is a forward rule and, beside it, one vector-Jacobian product per
input (as in PyTorch's derivatives.yaml), written against an array namespace
``xp``: ``SCALAR`` below for floats, ``numpy`` for arrays. Both engines are
generic over this table; neither knows a derivative.

    forward(xp, *inputs, *params)           -> out
    vjp[i](xp, g, out, *inputs, *params)    -> dL/d(input i), given g = dL/dout

One formula per input lets an engine skip the gradients nobody needs (the
image batch's, in x @ W). A VJP may return a gradient of the broadcast shape;
the tensor engine sums it back to the input's shape. ``params`` are constants
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
    vjp: tuple[Callable, ...]  # one per input


# The scalar namespace: just the names the table uses, backed by `math`.
SCALAR = SimpleNamespace(exp=math.exp, log=math.log, tanh=math.tanh, maximum=max,
                         pow=math.pow)  # math.pow, not **: (-8) ** (1/3) would quietly turn complex


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


def _max_vjp(xp, g, out, a, axis, keepdims):
    hit = a == _expand(xp, out, axis, keepdims)
    ties = hit.sum(axis=axis, keepdims=True).astype(a.dtype)  # float, so float32 stays float32
    return hit * (_expand(xp, g, axis, keepdims) / ties)  # ties share g


def _getitem_vjp(xp, g, out, a, index):
    grad = xp.zeros_like(a)
    xp.add.at(grad, index, g)  # add.at, not =: an index may pick the same entry twice
    return grad


def _cross_entropy(xp, logits, labels):
    # .sum() / n rather than .mean(): same number, a third of the Python overhead per batch
    return -_log_softmax(xp, logits)[xp.arange(len(labels)), labels].sum() / len(labels)


def _cross_entropy_vjp(xp, g, out, logits, labels):
    e = xp.exp(logits - logits.max(axis=-1, keepdims=True))
    grad = e / e.sum(axis=-1, keepdims=True)  # softmax − onehot, averaged over the batch
    grad[xp.arange(len(labels)), labels] -= 1
    grad *= g / len(labels)
    return grad


# The ops are named as in the math (sum, max and pow shadow Python's builtins in this module only).
# fmt: off
#            name       symbol  forward                              vjp for each input
add     = Op("add",     "+",    lambda xp, a, b: a + b,              (lambda xp, g, out, a, b: g,
                                                                      lambda xp, g, out, a, b: g))
sub     = Op("sub",     "-",    lambda xp, a, b: a - b,              (lambda xp, g, out, a, b: g,
                                                                      lambda xp, g, out, a, b: -g))
mul     = Op("mul",     "*",    lambda xp, a, b: a * b,              (lambda xp, g, out, a, b: g * b,
                                                                      lambda xp, g, out, a, b: g * a))
div     = Op("div",     "/",    lambda xp, a, b: a / b,              (lambda xp, g, out, a, b: g / b,
                                                                      lambda xp, g, out, a, b: -g * out / b))
neg     = Op("neg",     "-",    lambda xp, a: -a,                    (lambda xp, g, out, a: -g,))
pow     = Op("pow",     "**",   lambda xp, a, p: xp.pow(a, p),       (lambda xp, g, out, a, p: g * p * xp.pow(a, p - 1) if p else 0 * g,))
exp     = Op("exp",     "exp",  lambda xp, a: xp.exp(a),             (lambda xp, g, out, a: g * out,))
log     = Op("log",     "log",  lambda xp, a: xp.log(a),             (lambda xp, g, out, a: g / a,))
tanh    = Op("tanh",    "tanh", lambda xp, a: xp.tanh(a),            (lambda xp, g, out, a: g * (1 - out * out),))
# sigmoid in its tanh form: no overflow for large |a|, in math or numpy
sigmoid = Op("sigmoid", "σ",    lambda xp, a: 0.5 * xp.tanh(0.5 * a) + 0.5,
                                                                     (lambda xp, g, out, a: g * out * (1 - out),))
relu    = Op("relu",    "ReLU", lambda xp, a: xp.maximum(a, 0.0),    (lambda xp, g, out, a: g * (a > 0),))

# Array-only ops: the scalar engine builds these from the elementwise ones.
matmul  = Op("matmul",  "@",    lambda xp, a, b: a @ b,              (lambda xp, g, out, a, b: g @ b.T,
                                                                      lambda xp, g, out, a, b: a.T @ g if a.ndim > 1 else xp.outer(a, g)))
# A whole layer as one op: its three VJPs are the seed texts' backprop table, line for line.
# (dL/db is g itself; the engine sums it over the batch axis it was broadcast along: Σ dL/dY.)
linear  = Op("linear",  "xW+b", lambda xp, x, W, b: x @ W + b,      (lambda xp, g, out, x, W, b: g @ W.T,   # dL/dX = dL/dY·Wᵀ
                                                                      lambda xp, g, out, x, W, b: x.T @ g if x.ndim > 1 else xp.outer(x, g),  # dL/dW = Xᵀ·dL/dY
                                                                      lambda xp, g, out, x, W, b: g))
sum     = Op("sum",     "Σ",    lambda xp, a, axis, keepdims: a.sum(axis=axis, keepdims=keepdims),
                                (lambda xp, g, out, a, axis, keepdims: xp.broadcast_to(_expand(xp, g, axis, keepdims), a.shape),))
mean    = Op("mean",    "mean", lambda xp, a, axis, keepdims: a.mean(axis=axis, keepdims=keepdims),
                                (lambda xp, g, out, a, axis, keepdims: xp.broadcast_to(_expand(xp, g, axis, keepdims) * (out.size / a.size), a.shape),))
max     = Op("max",     "max",  lambda xp, a, axis, keepdims: a.max(axis=axis, keepdims=keepdims),
                                (_max_vjp,))
logsumexp = Op("logsumexp", "lse", _logsumexp,
                                (lambda xp, g, out, a, axis, keepdims: _expand(xp, g, axis, keepdims) * xp.exp(a - _expand(xp, out, axis, keepdims)),))
reshape = Op("reshape", "reshape", lambda xp, a, shape: a.reshape(shape),
                                (lambda xp, g, out, a, shape: g.reshape(a.shape),))
getitem = Op("getitem", "[ ]", lambda xp, a, index: a[index], (_getitem_vjp,))
transpose = Op("transpose", "ᵀ", lambda xp, a: a.T,                  (lambda xp, g, out, a: g.T,))
# fused log-softmax + mean NLL: stable for any logits, and one node instead of six
cross_entropy = Op("cross_entropy", "CE", _cross_entropy, (_cross_entropy_vjp,))
# fmt: on
