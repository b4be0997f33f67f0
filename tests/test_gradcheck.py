"""Every op's derivative against central finite differences, in both engines.

`gradcheck` dots a non-scalar output with fixed random weights, so each VJP is
exercised with a non-trivial upstream gradient. The last tests check that
`gradcheck` itself has teeth: a wrong derivative must raise GradcheckError.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import leaf64

from micrograd_mnist import GradcheckError, Tensor, Value, gradcheck
from micrograd_mnist.nn import functional, scalar
from micrograd_mnist.ops import Op

RNG = np.random.default_rng(1234)


def normal(*shape):
    return RNG.normal(size=shape)


def positive(*shape):
    return RNG.uniform(0.5, 2.0, size=shape)


def off_kink(*shape):
    """Values at least 0.2 away from relu's kink at 0."""
    return RNG.uniform(0.2, 1.5, size=shape) * RNG.choice([-1.0, 1.0], size=shape)


def distinct(*shape):
    """Well-separated entries, so a finite-difference nudge never changes which one is the max."""
    n = int(np.prod(shape))
    return (RNG.permutation(n) * 0.5 + RNG.uniform(0, 0.1, n)).reshape(shape) - n / 4


# --- the Tensor engine ----------------------------------------------------------

ELEMENTWISE_CASES = {
    "neg": (lambda a: -a, [normal(3, 4)]),
    "exp": (lambda a: a.exp(), [normal(3, 4)]),
    "log": (lambda a: a.log(), [positive(3, 4)]),
    "tanh": (lambda a: a.tanh(), [normal(3, 4)]),
    "sigmoid": (lambda a: a.sigmoid(), [normal(3, 4) * 3]),
    "relu": (lambda a: a.relu(), [off_kink(3, 4)]),
    "pow 2": (lambda a: a ** 2, [normal(3, 4)]),
    "pow 3": (lambda a: a ** 3, [normal(3, 4)]),
    "pow 0.5": (lambda a: a ** 0.5, [positive(3, 4)]),
    "pow -1.5": (lambda a: a ** -1.5, [positive(3, 4)]),
    "add": (lambda a, b: a + b, [normal(3, 4), normal(3, 4)]),
    "sub": (lambda a, b: a - b, [normal(3, 4), normal(3, 4)]),
    "mul": (lambda a, b: a * b, [normal(3, 4), normal(3, 4)]),
    "div": (lambda a, b: a / b, [normal(3, 4), positive(3, 4)]),
    "constant on the left": (lambda a: 2.5 - 1.5 / a + 3.0 * a, [positive(3, 4)]),
    "constant on the right": (lambda a: (a + 1.0) * 2.0 - a / 4.0, [normal(3, 4)]),
}

BROADCAST_CASES = {
    "bias add (n,m)+(m,)": (lambda x, b: x + b, [normal(4, 3), normal(3)]),
    "(m,)-(n,m)": (lambda b, x: b - x, [normal(3), normal(4, 3)]),
    "(n,m)*(m,)": (lambda x, b: x * b, [normal(4, 3), normal(3)]),
    "(n,1)*(1,m)": (lambda a, b: a * b, [normal(4, 1), normal(1, 3)]),
    "(n,1)-(1,m)": (lambda a, b: a - b, [normal(4, 1), normal(1, 3)]),
    "(n,1)/(1,m)": (lambda a, b: a / b, [normal(4, 1), positive(1, 3)]),
    "(n,m)/(n,1)": (lambda a, b: a / b, [normal(4, 3), positive(4, 1)]),
    "0-d scalar * array": (lambda s, x: s * x, [normal(), normal(4, 3)]),
    "array + 0-d scalar": (lambda x, s: x + s, [normal(4, 3), normal()]),
    "(1,1) * (n,m)": (lambda s, x: s * x, [normal(1, 1), normal(4, 3)]),
    "rank-3 with (m,)": (lambda x, b: (x * b).tanh(), [normal(2, 4, 3), normal(3)]),
}

MATRIX_CASES = {
    "matmul 2D": (lambda a, b: a @ b, [normal(4, 3), normal(3, 5)]),
    "matmul 1D@2D": (lambda a, b: a @ b, [normal(3), normal(3, 5)]),
    "matmul with bias": (lambda x, w, b: x @ w + b, [normal(4, 3), normal(3, 2), normal(2)]),
    "reshape": (lambda a, w: a.reshape(3, 4) * w, [normal(2, 6), normal(3, 4)]),
    "reshape tuple": (lambda a: a.reshape((12,)).exp(), [normal(3, 4)]),
    "reshape -1": (lambda a: a.reshape(-1, 2), [normal(3, 4)]),
    "transpose": (lambda a: a.T, [normal(3, 4)]),
    "transpose then matmul": (lambda a, b: a.T @ b, [normal(3, 4), normal(3, 2)]),
    "1D transpose": (lambda a: a.T * a, [normal(5)]),
}


def _reduction_cases():
    cases = {}
    for name in ("sum", "mean", "max", "logsumexp"):
        for axis in (None, 0, 1, -1):
            for keepdims in (False, True):
                data = distinct(3, 4) if name == "max" else normal(3, 4)
                cases[f"{name} axis={axis} keepdims={keepdims}"] = (
                    lambda a, name=name, axis=axis, keepdims=keepdims: getattr(a, name)(axis=axis, keepdims=keepdims),
                    [data],
                )
    cases["max of a 1D vector"] = (lambda a: a.max(), [distinct(6)])
    cases["sum then broadcast back"] = (lambda a: a - a.mean(axis=1, keepdims=True), [normal(3, 4)])
    return cases


LOSS_CASES = {
    "cross_entropy": (lambda z: functional.cross_entropy(z, [0, 2, 1, 2]), [normal(4, 3)]),
    "cross_entropy, large logits": (lambda z: functional.cross_entropy(z * 30.0, [1, 0]), [normal(2, 5)]),
    "log_softmax": (lambda z: functional.log_softmax(z), [normal(4, 3)]),
    "mse": (lambda p, t: functional.mse(p, t), [normal(4, 3), normal(4, 3)]),
    "mlp layer + cross_entropy": (
        lambda x, w, b: functional.cross_entropy((x @ w + b).relu() * 2.0 - 1.0, [0, 1, 1, 0, 1]),
        [normal(5, 3), normal(3, 2), normal(2) + 3.0],  # shifted bias: no pre-activation near relu's kink
    ),
    "reused nodes: b = a + a; c = b * b": (lambda a: (lambda b: b * b)(a + a), [normal(3, 4)]),
    "a node used by three ops": (lambda a: a * a.tanh() + a.exp() / (a * a + 1.0), [normal(3, 4)]),
}

TENSOR_CASES = {**ELEMENTWISE_CASES, **BROADCAST_CASES, **MATRIX_CASES, **_reduction_cases(), **LOSS_CASES}


@pytest.mark.parametrize("name", list(TENSOR_CASES))
def test_tensor_op_gradients(name):
    f, arrays = TENSOR_CASES[name]
    inputs = [leaf64(a, label=f"x{i}") for i, a in enumerate(arrays)]
    assert gradcheck(f, inputs) is True
    for x, a in zip(inputs, arrays):
        assert x.grad.shape == np.shape(a)  # broadcast gradients are summed back to the input's shape
        np.testing.assert_allclose(x.data, a, rtol=1e-15)  # the finite-difference nudges were undone


def test_broadcast_gradients_equal_their_sums():
    """Beyond finite differences: the gradient of a broadcast input is the upstream gradient summed
    over the axes it was stretched along."""
    x, b = leaf64(normal(4, 3)), leaf64(normal(3))
    g = normal(4, 3)
    (x + b).backward(g)
    np.testing.assert_allclose(x.grad, g)
    np.testing.assert_allclose(b.grad, g.sum(axis=0))
    col, row = leaf64(normal(4, 1)), leaf64(normal(1, 3))
    (col * row).backward(g)
    np.testing.assert_allclose(col.grad, (g * row.data).sum(axis=1, keepdims=True))
    np.testing.assert_allclose(row.grad, (g * col.data).sum(axis=0, keepdims=True))


def test_max_splits_the_gradient_between_ties():
    a = leaf64([[1.0, 3.0, 3.0], [2.0, 0.0, -1.0]])
    a.max(axis=1).backward(np.array([1.0, 1.0]))
    np.testing.assert_allclose(a.grad, [[0.0, 0.5, 0.5], [1.0, 0.0, 0.0]])


# --- the Value engine ------------------------------------------------------------

VALUE_CASES = {
    "add": (lambda a, b: a + b, [0.7, -1.3]),
    "sub": (lambda a, b: a - b, [0.7, -1.3]),
    "neg": (lambda a: -a, [0.7]),
    "mul": (lambda a, b: a * b, [0.7, -1.3]),
    "div": (lambda a, b: a / b, [0.7, -1.3]),
    "pow 2": (lambda a: a ** 2, [-0.7]),
    "pow 3": (lambda a: a ** 3, [-0.7]),
    "pow 0.5": (lambda a: a ** 0.5, [1.7]),
    "pow -2": (lambda a: a ** -2, [-0.9]),
    "exp": (lambda a: a.exp(), [0.7]),
    "log": (lambda a: a.log(), [0.7]),
    "tanh": (lambda a: a.tanh(), [0.7]),
    "sigmoid": (lambda a: a.sigmoid(), [-1.3]),
    "relu, positive": (lambda a: a.relu(), [0.7]),
    "relu, negative": (lambda a: a.relu() + a * 0.5, [-0.7]),
    "constants on the left": (lambda a: 2.0 + a, [0.7]),
    "constants on the left, all ops": (lambda a: (3.0 - a) * (2.0 * a) + 1.5 / a, [0.7]),
    "constants on the right": (lambda a: (a + 1.0) * 2.0 - a / 4.0 - 0.5, [0.7]),
    "reused nodes: b = a + a; c = b * b": (lambda a: (lambda b: b * b)(a + a), [0.7]),
    "a node used by three ops": (lambda a: a * a.tanh() + a.exp() / (a * a + 1.0), [-0.4]),
    "a small neuron": (lambda x, w, b: (x * w + b).tanh(), [0.5, -1.2, 0.3]),
    "scalar cross-entropy": (lambda z0, z1, z2: scalar.cross_entropy([z0, z1, z2], 1), [0.2, -1.0, 2.0]),
}


@pytest.mark.parametrize("name", list(VALUE_CASES))
def test_value_op_gradients(name):
    f, numbers = VALUE_CASES[name]
    inputs = [Value(x, label=f"x{i}") for i, x in enumerate(numbers)]
    assert gradcheck(f, inputs) is True
    np.testing.assert_allclose([x.data for x in inputs], numbers, rtol=1e-15)


def test_gradcheck_leaves_its_inputs_exactly_as_they_were():
    x = Value(-1.0)
    t = leaf64([0.1, 0.3, 1e-17])
    gradcheck(lambda a: a * a, [x])
    gradcheck(lambda a: (a * a).sum(), [t])
    assert x.data == -1.0
    assert t.data.tolist() == [0.1, 0.3, 1e-17]


# --- gradcheck has teeth -----------------------------------------------------------

# x² with the factor 2 forgotten in its derivative, and x² done right (the control)
wrong_square = Op("square", "²", lambda xp, a: a * a, (lambda xp, g, out, a: g * a,))
right_square = Op("square", "²", lambda xp, a: a * a, (lambda xp, g, out, a: 2 * g * a,))
# a - b whose VJP forgets the minus sign on b
wrong_sub = Op("sub", "-", lambda xp, a, b: a - b, (lambda xp, g, out, a, b: g, lambda xp, g, out, a, b: g))


def test_gradcheck_catches_a_wrong_tensor_derivative():
    x = leaf64(normal(3, 2), label="x")
    assert gradcheck(lambda a: Tensor.apply(right_square, a), [x])
    with pytest.raises(GradcheckError, match=r"gradient of x\[\d, \d\]: autograd .*finite differences"):
        gradcheck(lambda a: Tensor.apply(wrong_square, a), [x])


def test_gradcheck_catches_a_wrong_derivative_of_a_second_input():
    a, b = leaf64(normal(3), label="a"), leaf64(normal(3), label="b")
    with pytest.raises(GradcheckError, match="gradient of b"):
        gradcheck(lambda a, b: Tensor.apply(wrong_sub, a, b), [a, b])


def test_gradcheck_catches_a_wrong_value_derivative():
    x = Value(1.5, label="x")
    assert gradcheck(lambda a: Value(a.data * a.data, None, right_square, (a,)), [x])
    with pytest.raises(GradcheckError, match="gradient of x: autograd 1.5, finite differences 3"):
        gradcheck(lambda a: Value(a.data * a.data, None, wrong_square, (a,)), [x])


def test_gradcheck_catches_a_missing_gradient():
    """A graph that drops its parents computes the right numbers but no gradient."""
    x = leaf64(normal(3))
    with pytest.raises(GradcheckError, match=r"gradient of Tensor\[0\]: autograd .*finite differences"):
        gradcheck(lambda a: (a * a).detach() + a, [x])


def test_gradcheck_rejects_inputs_it_cannot_check():
    with pytest.raises(ValueError, match="float64"):
        gradcheck(lambda a: a.sum(), [Tensor(np.ones(3, dtype=np.float32), requires_grad=True)])
    takes = "gradcheck takes a list of Values, or of float64 Tensors with requires_grad=True"
    with pytest.raises(TypeError, match=takes):
        gradcheck(lambda a: a.sum(), [Tensor(np.ones(3))])  # does not require grad
    with pytest.raises(TypeError, match=takes):
        gradcheck(lambda a, b: a, [Value(1.0), leaf64([1.0])])  # mixed engines


def test_gradcheck_indexing_slices_and_repeated_indices():
    """Indexing's VJP scatters g back; a row picked twice must collect both contributions."""
    x = leaf64(normal(4, 3), label="x")
    assert gradcheck(lambda x: x[1:3, ::2] * x[np.array([0, 2]), 1:2], [x])
    assert gradcheck(lambda x: x[np.array([1, 1, 3])].sum(axis=0), [x])
    x.zero_grad()
    x[np.array([1, 1, 3])].sum().backward()
    np.testing.assert_array_equal(x.grad.sum(axis=1), [0.0, 6.0, 0.0, 3.0])


def test_indexing_out_of_range_names_the_shape():
    with pytest.raises(IndexError, match=r"shape \(6,\)"):
        Tensor(np.arange(6.0))[10]
