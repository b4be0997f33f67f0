"""Behaviour of the two engines themselves: `Value` and `Tensor`."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import leaf64

from micrograd_mnist import Tensor, Value, no_grad
from micrograd_mnist.nn import MLP, functional

# --- Value -------------------------------------------------------------------


def test_value_repr_is_readable():
    v = Value(2.0, label="w")
    assert repr(v) == "Value(data=2, grad=0, label='w')"
    w = Value(-0.123456)
    w.grad = 1.5
    assert repr(w) == "Value(data=-0.1235, grad=1.5)"


def test_value_accepts_real_numbers_and_rejects_others():
    assert Value(3).data == 3.0 and isinstance(Value(3).data, float)
    assert Value(np.float32(0.5)).data == 0.5
    for bad in ("3", None, True, [1.0], 1j):
        with pytest.raises(TypeError, match=r"Value\(data\) needs a real number, got "):
            Value(bad)


def test_value_gradients_match_hand_derived_formulas():
    a0, b0, c0 = 0.7, 1.3, -0.4
    a, b, c = Value(a0), Value(b0), Value(c0)
    loss = (a * b + c.exp()).tanh() + a ** 2 / b - a.log() + c.sigmoid() * b.relu() - (-c) * 0.5
    loss.backward()

    u = a0 * b0 + math.exp(c0)
    s = 1 / (1 + math.exp(-c0))
    dtanh = 1 - math.tanh(u) ** 2
    assert loss.data == pytest.approx(math.tanh(u) + a0 ** 2 / b0 - math.log(a0) + s * b0 + c0 * 0.5, rel=1e-12)
    assert a.grad == pytest.approx(dtanh * b0 + 2 * a0 / b0 - 1 / a0, rel=1e-12)
    assert b.grad == pytest.approx(dtanh * a0 - a0 ** 2 / b0 ** 2 + s, rel=1e-12)
    assert c.grad == pytest.approx(dtanh * math.exp(c0) + s * (1 - s) * b0 + 0.5, rel=1e-12)


def test_value_reflected_operators_with_plain_numbers():
    x = Value(4.0)
    for expr, value, grad in [
        (lambda v: 2 + v, 6.0, 1.0),
        (lambda v: 2 - v, -2.0, -1.0),
        (lambda v: 3 * v, 12.0, 3.0),
        (lambda v: 2 / v, 0.5, -2 / 16),
        (lambda v: v - 2.5, 1.5, 1.0),
        (lambda v: v / 8, 0.5, 1 / 8),
    ]:
        x.grad = 0.0
        out = expr(x)
        out.backward()
        assert out.data == pytest.approx(value) and x.grad == pytest.approx(grad)


def test_value_reused_nodes_accumulate():
    a = Value(3.0)
    b = a + a
    c = b + b
    c.backward()
    assert c.data == 12.0 and a.grad == 4.0 and b.grad == 2.0

    x = Value(3.0)
    (x * x).backward()
    assert x.grad == 6.0  # d(x²)/dx = 2x, from both sides of one mul


def test_value_relu_kink_and_negative_side():
    for x0, expected in [(-2.0, 0.0), (0.0, 0.0), (2.0, 1.0)]:
        x = Value(x0)
        y = x.relu()
        y.backward()
        assert y.data == max(x0, 0.0) and x.grad == expected


def test_value_sigmoid_is_stable_for_huge_inputs():
    for x0, expected in [(1000.0, 1.0), (-1000.0, 0.0)]:
        x = Value(x0)
        y = x.sigmoid()
        y.backward()
        assert y.data == expected and x.grad == 0.0


@pytest.mark.parametrize("bad", ["x", None, [1.0], True])
def test_value_rejects_bad_operands(bad):
    v = Value(1.0)
    for combine in (lambda: v + bad, lambda: bad + v, lambda: v * bad, lambda: bad - v, lambda: v / bad):
        with pytest.raises(TypeError, match="can't combine a Value with .*: use a number or a Value"):
            combine()


def test_value_exponent_must_be_a_plain_number():
    with pytest.raises(TypeError, match="constant exponent"):
        Value(2.0) ** Value(3.0)
    with pytest.raises(TypeError, match="constant exponent.*got bool"):
        Value(2.0) ** True
    with pytest.raises(TypeError, match="constant exponent.*got str"):
        Value(2.0) ** "2"
    assert (Value(2.0) ** 3).data == 8.0


def test_value_backward_on_a_million_node_chain():
    """backward() is iterative: no RecursionError on a 1,000,000-node chain."""
    n, c = 1_000_000, 1.0000001
    x = Value(1.5)
    v = x
    for _ in range(n):
        v = v * c
    v.backward()
    # y = x·cⁿ: dy/dx = cⁿ (the chain multiplies n roundings, hence the tolerance)
    assert x.grad == pytest.approx(c ** n, rel=1e-8)
    assert v.data == pytest.approx(1.5 * c ** n, rel=1e-8)
    assert c ** n == pytest.approx(math.exp(0.1), rel=1e-6)


def test_value_gradients_keep_accumulating_on_leaves_across_graphs():
    """As in PyTorch, .grad is += and must be zeroed between steps."""
    w = Value(2.0)
    (w * 3.0).backward()
    (w * 5.0).backward()
    assert w.grad == 8.0
    w.zero_grad()
    assert w.grad == 0.0


def test_backward_twice_on_one_graph_doubles_the_leaf_gradient():
    a = Value(2.0)
    c = (a * 3.0) * 1.0
    c.backward()
    c.backward()
    t = leaf64([2.0])
    y = (t * 3.0).sum()
    y.backward()
    y.backward()
    assert (a.grad, t.grad.tolist()) == (6.0, [6.0])


# --- Tensor ------------------------------------------------------------------


def test_tensor_construction_and_default_dtype():
    assert Tensor([1, 2, 3]).dtype == np.float32  # lists and ints: PyTorch's default float32
    assert Tensor(2.5).shape == () and Tensor(2.5).dtype == np.float32
    assert Tensor(np.ones(2)).dtype == np.float64  # an ndarray keeps its float dtype
    assert Tensor(np.ones(2, dtype=np.float32), dtype=np.float64).dtype == np.float64
    t = Tensor(np.ones((2, 3)), requires_grad=True, label="x")
    copy = Tensor(t)  # a copy, as torch.tensor(t): updating one must not change the other
    assert copy.data is not t.data and np.array_equal(copy.data, t.data) and not copy.requires_grad
    assert "requires_grad=True" in repr(t) and "label='x'" in repr(t) and "float64" in repr(t)
    with pytest.raises(TypeError, match=r"Tensor\(data\) needs numbers .*got 'abc'"):
        Tensor("abc")
    with pytest.raises(TypeError, match="can't combine a Tensor with str"):
        Tensor(np.ones(2)) + "x"
    with pytest.raises(TypeError, match="constant exponent.*got Tensor"):
        Tensor(np.ones(2)) ** Tensor(np.ones(2))


def test_integer_arrays_become_float32_like_lists():
    t = Tensor(np.arange(3))
    assert t.dtype == np.float32
    np.testing.assert_allclose((t * 0.5).data, [0.0, 0.5, 1.0])


def _all_ops():
    """(name, function of two same-dtype tensors (3,4), (4,)) covering every op, with Python-float constants."""
    labels = [0, 3, 1]
    return {
        "add": lambda a, b: a + b,
        "sub": lambda a, b: a - b,
        "neg": lambda a, b: -a,
        "mul": lambda a, b: a * b,
        "div": lambda a, b: a / (b * b + 1.0),
        "pow": lambda a, b: (a * a + 1.0) ** 1.5,
        "pow int": lambda a, b: a ** 2,
        "exp": lambda a, b: a.exp(),
        "log": lambda a, b: (a * a + 0.5).log(),
        "tanh": lambda a, b: a.tanh(),
        "sigmoid": lambda a, b: a.sigmoid(),
        "relu": lambda a, b: a.relu(),
        "constants on the left": lambda a, b: 2.0 - 3.0 * a + 1.0 / (b * b + 1.0),
        "matmul": lambda a, b: a @ b.reshape(4, 1),
        "matmul 1D": lambda a, b: b @ a.T,
        "sum": lambda a, b: a.sum(axis=0) + b.sum(),
        "mean": lambda a, b: a.mean(axis=1, keepdims=True) * b.mean(),
        "max": lambda a, b: a.max(axis=1) + b.max(),
        "logsumexp": lambda a, b: a.logsumexp(axis=1) + b.logsumexp(),
        "reshape": lambda a, b: a.reshape(2, 6),
        "transpose": lambda a, b: a.T,
        "cross_entropy": lambda a, b: functional.cross_entropy(a + b, labels),
        "log_softmax": lambda a, b: functional.log_softmax(a * b),
        "mse": lambda a, b: functional.mse(a, b),
    }


def _dtype_cases(dtype):
    return [pytest.param(name, dtype) for name in _all_ops()]


@pytest.mark.parametrize(("name", "dtype"), _dtype_cases(np.float32) + _dtype_cases(np.float64))
def test_dtype_is_preserved_through_every_op(name, dtype):
    rng = np.random.default_rng(0)
    a = Tensor(rng.normal(size=(3, 4)).astype(dtype), requires_grad=True)
    b = Tensor(rng.normal(size=4).astype(dtype), requires_grad=True)
    out = _all_ops()[name](a, b)
    assert out.dtype == dtype
    out.backward(np.ones(out.shape, dtype=dtype))
    for x in (a, b):
        if x.grad is not None:
            assert x.grad.dtype == dtype
            assert x.grad.shape == x.shape


def test_float32_model_trains_in_float32():
    rng = np.random.default_rng(0)
    model = MLP([5, 4, 3], "sigmoid", rng=rng)
    loss = functional.cross_entropy(model(rng.normal(size=(6, 5))), rng.integers(0, 3, 6))
    loss.backward()
    assert loss.dtype == np.float32
    assert all(p.dtype == np.float32 and p.grad.dtype == np.float32 for p in model.parameters())


@pytest.mark.parametrize(("shape_a", "shape_b"), [
    ((4, 3), (3,)),
    ((3,), (4, 3)),
    ((4, 1), (1, 3)),
    ((4, 3), (4, 1)),
    ((), (4, 3)),
    ((1, 1), (4, 3)),
    ((2, 4, 3), (4, 1)),
])
def test_broadcast_gradients_have_their_inputs_shapes(shape_a, shape_b):
    rng = np.random.default_rng(0)
    a, b = leaf64(rng.normal(size=shape_a)), leaf64(rng.normal(size=shape_b))
    out = a * b + a
    g = rng.normal(size=out.shape)
    out.backward(g)
    assert a.grad.shape == shape_a and b.grad.shape == shape_b
    # the gradient of each input is the upstream gradient summed over the axes it was broadcast along
    ga, gb = np.broadcast_to(g * (b.data + 1.0), out.shape), np.broadcast_to(g * a.data, out.shape)
    np.testing.assert_allclose(a.grad, _sum_to(ga, shape_a))
    np.testing.assert_allclose(b.grad, _sum_to(gb, shape_b))


def _sum_to(g: np.ndarray, shape: tuple) -> np.ndarray:
    """Independent reference: sum over every axis of the padded shape where the input had size 1."""
    padded = (1,) * (g.ndim - len(shape)) + tuple(shape)
    axes = tuple(i for i, n in enumerate(padded) if n == 1 and g.shape[i] != 1)
    return g.sum(axis=axes, keepdims=True).reshape(shape)


def test_python_float_with_tensor_on_either_side():
    x = leaf64([1.0, 2.0, 4.0])
    y = 2.0 / x + 3.0 * x - 1.0 - x / 2.0
    y.backward(np.ones(3))
    np.testing.assert_allclose(y.data, 2 / x.data + 2.5 * x.data - 1.0)
    np.testing.assert_allclose(x.grad, -2 / x.data ** 2 + 2.5)


def test_ndarray_on_the_left_of_a_tensor():
    x = leaf64([[1.0, 2.0], [3.0, 4.0]])
    y = np.ones(2) + x
    assert isinstance(y, Tensor)
    z = np.ones((1, 2)) @ x
    assert isinstance(z, Tensor)
    np.testing.assert_allclose(z.data, [[4.0, 6.0]])


def test_backward_with_an_explicit_upstream_gradient():
    x = leaf64([[1.0, -2.0], [0.5, 3.0]])
    g = np.array([[0.1, 0.2], [-0.3, 0.4]])
    (x * x).backward(g)
    np.testing.assert_allclose(x.grad, 2 * x.data * g)
    with pytest.raises(ValueError, match=r"grad of shape \(3,\)"):
        (x * x).backward(np.ones(3))


def test_backward_on_a_non_scalar_needs_a_gradient():
    x = leaf64([1.0, 2.0])
    with pytest.raises(ValueError, match="backward"):
        (x * 2.0).backward()
    (x * 2.0).sum().backward()  # a single number needs none
    np.testing.assert_allclose(x.grad, [2.0, 2.0])
    z = leaf64([[3.0]])
    (z * z).backward()  # size 1, any shape
    np.testing.assert_allclose(z.grad, [[6.0]])


def test_tensor_reused_node_accumulates():
    a = leaf64([3.0, -1.0])
    b = a + a
    c = b * b
    c.backward(np.ones(2))
    np.testing.assert_allclose(c.data, 4 * a.data ** 2)
    np.testing.assert_allclose(a.grad, 8 * a.data)


def test_gradients_only_flow_to_tensors_that_require_them():
    x, w = Tensor(np.ones((2, 3))), leaf64(np.ones((3, 2)))
    (x @ w).sum().backward()
    assert x.grad is None
    np.testing.assert_allclose(w.grad, np.full((3, 2), 2.0))
    c = Tensor(np.ones(3)) * 2.0
    assert not c.requires_grad and c.parents == () and c.op is None


def test_no_grad_records_nothing_and_restores_recording():
    w = leaf64([1.0, 2.0])
    with no_grad():
        y = w * 3.0 + 1.0
        assert not y.requires_grad and y.parents == () and y.op is None
        np.testing.assert_allclose(y.data, [4.0, 7.0])
    z = w * 3.0
    assert z.requires_grad and z.parents and z.op is not None
    with pytest.raises(RuntimeError, match="inside"), no_grad():
        raise RuntimeError("inside")
    assert (w * 1.0).requires_grad  # recording is back on after an exception


def test_grad_can_be_reset_to_none():
    x = leaf64([1.0, 2.0])
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad, [2.0, 4.0])
    x.grad = None
    (x * 5.0).sum().backward()
    np.testing.assert_allclose(x.grad, [5.0, 5.0])
    x.zero_grad()
    assert x.grad is None


def test_backward_on_a_100k_node_tensor_chain():
    n, c = 100_000, 1.00001
    x = leaf64([1.0, -2.0, 0.5])
    v = x
    for _ in range(n):
        v = v * c
    v.sum().backward()
    np.testing.assert_allclose(x.grad, np.full(3, c ** n), rtol=1e-9)
    np.testing.assert_allclose(v.data, x.data * c ** n, rtol=1e-9)


def test_matmul_shape_error_names_both_shapes():
    with pytest.raises(ValueError) as info:
        Tensor(np.zeros((128, 784))) @ Tensor(np.zeros((128, 10)))
    assert "(128, 784)" in str(info.value) and "(128, 10)" in str(info.value)
    with pytest.raises(ValueError, match=r"the right must be a matrix \(2-D\), not 1-D"):
        Tensor(np.zeros((2, 3))) @ Tensor(np.zeros(3))  # matrix @ vector is not supported


def test_layer_shape_error_names_the_layer():
    model = MLP([784, 16, 10])
    with pytest.raises(ValueError) as info:
        model(Tensor(np.zeros((128, 50), dtype=np.float32)))
    message = str(info.value)
    assert "Linear" in message and "784" in message and "(128, 50)" in message


def test_reshape_error_is_readable():
    with pytest.raises(ValueError, match=r"\(2, 3\).*6 numbers.*\(4, 2\)"):
        Tensor(np.zeros((2, 3))).reshape(4, 2)


# --- pow's real domain, and x**0 at x = 0 -----------------------------------------------------------------------


def test_pow_of_a_negative_base_to_a_fraction_is_not_complex():
    with pytest.raises(ValueError, match="math domain error"):
        Value(-8.0) ** (1 / 3)
    with np.errstate(invalid="ignore"):
        t = Tensor(np.array([-8.0, 8.0])) ** (1 / 3)
    assert t.dtype.kind == "f"  # not complex
    assert np.isnan(t.data[0]) and t.data[1] == pytest.approx(2.0)


def test_zero_to_the_zero_has_a_zero_gradient():
    v = Value(0.0)
    out = v ** 0
    out.backward()
    assert out.data == 1.0 and v.grad == 0.0

    t = Tensor(np.array([0.0, 2.0]), requires_grad=True)
    (t ** 0).sum().backward()
    assert not np.isnan(t.grad).any()
    np.testing.assert_array_equal(t.grad, [0.0, 0.0])


# --- the Tensor API's edges -------------------------------------------------------------------------------------


def test_backward_without_anything_requiring_grad_is_an_error():
    with pytest.raises(RuntimeError, match="requires_grad"):
        (Tensor([1.0, 2.0]) * 2).sum().backward()


def test_asarray_and_iteration():
    t = Tensor(np.arange(6, dtype=np.float32).reshape(3, 2))
    a = np.asarray(t)
    assert isinstance(a, np.ndarray) and a.dtype.kind == "f"
    np.testing.assert_array_equal(a, [[0, 1], [2, 3], [4, 5]])

    rows = list(t)
    assert len(rows) == 3 and all(isinstance(r, Tensor) and r.shape == (2,) for r in rows)
    for i, row in enumerate(rows):
        np.testing.assert_array_equal(row.data, [2 * i, 2 * i + 1])
    with pytest.raises(TypeError, match=r"iteration over a 0-d tensor: it holds one number; use \.item\(\)"):
        iter(Tensor(3.0))


@pytest.mark.parametrize("bad", [None, "3"])
def test_tensor_of_non_numbers_is_a_type_error(bad):
    with pytest.raises(TypeError, match=r"Tensor\(data\) needs numbers"):
        Tensor(bad)


def test_indexing_with_a_tensor_picks_rows():
    t = Tensor(np.arange(6, dtype=np.float32).reshape(3, 2))
    np.testing.assert_array_equal(t[Tensor([0, 2])].data, [[0.0, 1.0], [4.0, 5.0]])
