"""The op table: every differentiable primitive, written once.

Each row is an op's forward rule and, per input, its local derivative as a learner reads it and its
vector-Jacobian product (VJP), side by side, as in PyTorch's derivatives.yaml. Both engines are generic
over this table; neither knows a derivative. One formula per input lets an engine skip the gradients
nobody needs (the image batch's, in x @ W).

The vocabulary, the same in every row, in every rule and in every chain-rule line a walk-through prints:

    xp        the array namespace: ``SCALAR`` below for the `Value` engine's floats, ``numpy`` for `Tensor`
    a, b      the inputs, in order (`linear` names its three x, W, b; `cross_entropy` its one logits)
    params    constants after the inputs, never differentiated: p (pow), axis and keepdims (reductions),
              shape, index, labels
    out       what the forward rule returned (tanh's derivative reads it: 1 − out²)
    g         dL/dout, the gradient arriving from the op's output

    forward(xp, *inputs, *params)          -> out
    vjp(xp, g, out, *inputs, *params)      -> dL/dinput, one per input
    rule                                   ∂out/∂input as text, in the names above; the VJP is g · rule.
                                           A rule that mentions g (a matrix, a reduction) is the whole VJP.

A VJP may return a gradient of the broadcast shape; the tensor engine sums it back to the input's shape.
Long rules are named functions, next to the section that uses them.
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
    rule: tuple[str, ...] = ()  # one per input: the local derivative as a learner reads it
    inputs: tuple[str, ...] = ()  # the inputs' names, as the rules and the forward rule call them


def op(name: str, symbol: str, forward: Callable, **derivatives: tuple[str, Callable]) -> Op:
    """One row of the table: the forward rule, then per input `input=(rule, vjp)`, in the inputs' order."""
    return Op(name, symbol, forward, tuple(vjp for _, vjp in derivatives.values()),
              tuple(rule for rule, _ in derivatives.values()), tuple(derivatives))


# The scalar namespace: just the names the shared ops use, backed by `math`.
SCALAR = SimpleNamespace(exp=math.exp, log=math.log, tanh=math.tanh, maximum=max,
                         pow=math.pow,  # math.pow, not **: (-8) ** (1/3) would quietly turn complex
                         where=lambda condition, yes, no: yes if condition else no)


# --- shared by both engines: elementwise, on a float (Value) or an array (Tensor) -----------------------------------

def _pow_vjp(xp, g, out, a, p):
    return g * p * xp.pow(a, p - 1) if p else 0 * g  # x**0 is 1 everywhere: no 0 ** −1 at a = 0


def _sigmoid(xp, a):
    # exp(−|a|) never overflows, and each branch divides without cancelling: 1/(1 + e) for a ≥ 0,
    # e/(1 + e) for a < 0, so both tails keep their last digits (0.5·tanh(a/2) + 0.5 loses the negative one)
    e = xp.exp(-abs(a))
    return xp.where(a >= 0, 1 / (1 + e), e / (1 + e))


def _sigmoid_vjp(xp, g, out, a):
    return g * out * _sigmoid(xp, -a)  # 1 − out, computed as σ(−a): keeps its digits where out rounds to 1


# The ops are named as in the math (sum, max and pow shadow Python's builtins in this module only).
# fmt: off
#   name               symbol   forward
#       input  rule                  vjp: dL/dinput, given g = dL/dout
add     = op("add",     "+",    lambda xp, a, b: a + b,
             a=("1",                 lambda xp, g, out, a, b: g),
             b=("1",                 lambda xp, g, out, a, b: g))
sub     = op("sub",     "-",    lambda xp, a, b: a - b,
             a=("1",                 lambda xp, g, out, a, b: g),
             b=("−1",                lambda xp, g, out, a, b: -g))
mul     = op("mul",     "*",    lambda xp, a, b: a * b,
             a=("b",                 lambda xp, g, out, a, b: g * b),
             b=("a",                 lambda xp, g, out, a, b: g * a))
div     = op("div",     "/",    lambda xp, a, b: a / b,
             a=("1/b",               lambda xp, g, out, a, b: g / b),
             b=("−a/b²",             lambda xp, g, out, a, b: -g * out / b))
neg     = op("neg",     "-",    lambda xp, a: -a,
             a=("−1",                lambda xp, g, out, a: -g))
pow     = op("pow",     "**",   lambda xp, a, p: xp.pow(a, p),
             a=("p·a^(p−1)",         _pow_vjp))
exp     = op("exp",     "exp",  lambda xp, a: xp.exp(a),
             a=("exp(a)",            lambda xp, g, out, a: g * out))
log     = op("log",     "log",  lambda xp, a: xp.log(a),
             a=("1/a",               lambda xp, g, out, a: g / a))
tanh    = op("tanh",    "tanh", lambda xp, a: xp.tanh(a),
             a=("1 − out²",          lambda xp, g, out, a: g * (1 - out * out)))
sigmoid = op("sigmoid", "σ",    _sigmoid,
             a=("out·(1 − out)",     _sigmoid_vjp))
relu    = op("relu",    "ReLU", lambda xp, a: xp.maximum(a, 0.0),
             a=("1 if a > 0 else 0", lambda xp, g, out, a: g * (a > 0)))
# fmt: on


# --- array only: the Tensor engine's (the scalar engine builds these from the elementwise ops) ----------------------

def _expand(xp, g, axis, keepdims):
    """Put back the axes a reduction removed, so `g` broadcasts against its input."""
    return g if keepdims or axis is None else xp.expand_dims(g, axis)


def _sum_vjp(xp, g, out, a, axis, keepdims):
    return xp.broadcast_to(_expand(xp, g, axis, keepdims), a.shape)


def _mean_vjp(xp, g, out, a, axis, keepdims):
    return xp.broadcast_to(_expand(xp, g, axis, keepdims) * (out.size / a.size), a.shape)


def _max_vjp(xp, g, out, a, axis, keepdims):
    hit = a == _expand(xp, out, axis, keepdims)
    ties = hit.sum(axis=axis, keepdims=True).astype(a.dtype)  # float, so float32 stays float32
    return hit * (_expand(xp, g, axis, keepdims) / ties)  # ties share g


def _logsumexp(xp, a, axis, keepdims):
    m = a.max(axis=axis, keepdims=True)
    m = xp.where(xp.isfinite(m), m, 0)  # shifting by ±inf would give inf − inf = nan; unshifted, exp gives inf or 0
    with xp.errstate(divide="ignore"):  # log(0) = −inf: a row of −infs has logsumexp −inf
        out = m + xp.log(xp.exp(a - m).sum(axis=axis, keepdims=True))
    return out if keepdims else out.squeeze(axis)


def _logsumexp_vjp(xp, g, out, a, axis, keepdims):
    return _expand(xp, g, axis, keepdims) * xp.exp(a - _expand(xp, out, axis, keepdims))


def _getitem_vjp(xp, g, out, a, index):
    grad = xp.zeros_like(a)
    xp.add.at(grad, index, g)  # add.at, not =: an index may pick the same entry twice
    return grad


def _log_softmax(xp, z):
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - xp.log(xp.exp(shifted).sum(axis=-1, keepdims=True))


def _cross_entropy(xp, logits, labels):
    # .sum() / n rather than .mean(): same number, a third of the Python overhead per batch
    return -_log_softmax(xp, logits)[xp.arange(len(labels)), labels].sum() / len(labels)


def _cross_entropy_vjp(xp, g, out, logits, labels):
    e = xp.exp(logits - logits.max(axis=-1, keepdims=True))
    grad = e / e.sum(axis=-1, keepdims=True)  # softmax − onehot, averaged over the batch
    grad[xp.arange(len(labels)), labels] -= 1
    grad *= g / len(labels)
    return grad


# fmt: off
#   name                   symbol     forward
#       input  rule                            vjp: dL/dinput, given g = dL/dout
matmul    = op("matmul",    "@",       lambda xp, a, b: a @ b,
               a=("g · bᵀ",                    lambda xp, g, out, a, b: g @ b.T),
               b=("aᵀ · g",                    lambda xp, g, out, a, b: a.T @ g if a.ndim > 1 else xp.outer(a, g)))
# A whole layer as one op: its three VJPs are the seed texts' backprop table, line for line.
# (dL/db is g itself; the engine sums it over the batch axis it was broadcast along: Σ dL/dY.)
linear    = op("linear",    "xW+b",    lambda xp, x, W, b: x @ W + b,
               x=("g · Wᵀ",                    lambda xp, g, out, x, W, b: g @ W.T),
               W=("xᵀ · g",                    lambda xp, g, out, x, W, b: x.T @ g if x.ndim > 1 else xp.outer(x, g)),
               b=("Σ g over the batch",        lambda xp, g, out, x, W, b: g))
sum       = op("sum",       "Σ",       lambda xp, a, axis, keepdims: a.sum(axis=axis, keepdims=keepdims),
               a=("g, copied to every entry summed", _sum_vjp))
mean      = op("mean",      "mean",    lambda xp, a, axis, keepdims: a.mean(axis=axis, keepdims=keepdims),
               a=("g / n, copied to each of the n entries averaged", _mean_vjp))
max       = op("max",       "max",     lambda xp, a, axis, keepdims: a.max(axis=axis, keepdims=keepdims),
               a=("g where an entry is the max (ties share it), 0 elsewhere", _max_vjp))
logsumexp = op("logsumexp", "lse",     _logsumexp,
               a=("g · softmax(a)",            _logsumexp_vjp))
reshape   = op("reshape",   "reshape", lambda xp, a, shape: a.reshape(shape),
               a=("g, reshaped back",          lambda xp, g, out, a, shape: g.reshape(a.shape)))
getitem   = op("getitem",   "[ ]",     lambda xp, a, index: a[index],
               a=("g, added back where each entry was picked (0 elsewhere)", _getitem_vjp))
transpose = op("transpose", "ᵀ",       lambda xp, a: a.T,
               a=("gᵀ",                        lambda xp, g, out, a: g.T))
# fused log-softmax + mean NLL: stable for any logits, and one node instead of six
cross_entropy = op("cross_entropy", "CE", _cross_entropy,
               logits=("(softmax(logits) − onehot(labels)) · g / n", _cross_entropy_vjp))
# fmt: on
