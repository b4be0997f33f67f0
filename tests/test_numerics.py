"""Numbers a PyTorch user can trust: each case is compared with a reference computed independently
(Python's `decimal` at 60 digits, or float64 NumPy written out by hand), never with the code under test."""

from __future__ import annotations

import math
from decimal import Decimal, getcontext

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from micrograd_mnist import Tensor, Value

getcontext().prec = 60


def exact_sigmoid(x: float) -> Decimal:
    return 1 / (1 + (-Decimal(x)).exp())


def relative_error(got: float, exact: Decimal) -> float:
    return float(abs(Decimal(float(got)) - exact) / abs(exact))


# --- sigmoid's tails --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("x", [-20.0, -18.0, -10.0, -1e-3, 0.0, 3.0, 15.0])
def test_float32_sigmoid_and_its_gradient_keep_their_digits_on_both_tails(x):
    t = Tensor(np.array([x], np.float32), requires_grad=True)
    s = t.sigmoid()
    s.sum().backward()
    exact = exact_sigmoid(x)
    assert relative_error(s.data[0], exact) < 4 * 2**-24  # a few float32 ulps (was exactly 0 at −20)
    assert relative_error(t.grad[0], exact * exact_sigmoid(-x)) < 8 * 2**-24
    assert s.dtype == t.grad.dtype == np.float32


@given(st.floats(-700.0, 700.0))
def test_sigmoid_is_exact_to_a_few_ulps_in_both_engines(x):
    exact = exact_sigmoid(x)
    if exact < Decimal("1e-300"):  # below float64's normal range the reference itself cannot be held
        return
    leaf = Value(x)
    v = leaf.sigmoid()
    v.backward()
    t = Tensor(np.array(x, np.float64), requires_grad=True)
    s = t.sigmoid()
    s.backward()
    for got in (v.data, float(s.data)):
        assert relative_error(got, exact) < 4 * 2**-53
    slope = exact * exact_sigmoid(-x)  # σ(x)(1 − σ(x)), without 1 − σ losing the reference's digits
    if slope > Decimal("1e-300"):
        for got in (leaf.grad, float(t.grad)):
            assert relative_error(got, slope) < 8 * 2**-53


@given(st.floats(-700.0, 30.0))
def test_minus_log_sigmoid_written_by_hand_is_finite_with_slope_minus_one_minus_sigmoid(z):
    # −log σ(z) = log(1 + e^(−z)); its slope is −(1 − σ(z)) = −σ(−z)
    exact = (1 + (-Decimal(z)).exp()).ln()
    slope = -exact_sigmoid(-z)
    v = Value(z)
    loss = -v.sigmoid().log()
    loss.backward()
    t = Tensor(np.array([z], np.float64), requires_grad=True)
    tl = -t.sigmoid().log().sum()
    tl.backward()
    for got, grad in ((loss.data, v.grad), (float(tl.data), float(t.grad[0]))):
        assert relative_error(got, exact) < 1e-12 or abs(Decimal(got) - exact) < Decimal("1e-15")
        assert abs(Decimal(grad) - slope) <= abs(slope) * Decimal("1e-12") + Decimal("1e-300")


def test_minus_log_sigmoid_at_minus_20_in_float32_is_20_with_slope_minus_1():
    t = Tensor(np.array([-20.0], np.float32), requires_grad=True)
    loss = -t.sigmoid().log().sum()
    loss.backward()
    assert loss.item() == pytest.approx(20.0, rel=1e-6)  # was inf, with a nan gradient
    assert t.grad[0] == pytest.approx(-1.0, rel=1e-6)
    assert Value(-40.0).sigmoid().log().data == pytest.approx(-40.0, rel=1e-15)  # raised a domain error


# --- logsumexp with infinities ----------------------------------------------------------------------------------


def logsumexp_by_hand(row: list[float]) -> float:
    """float64 logsumexp written out case by case, the definition with its limits."""
    if any(math.isnan(x) for x in row):
        return math.nan
    if math.inf in row:
        return math.inf
    finite = [x for x in row if x != -math.inf]
    if not finite:
        return -math.inf
    m = max(finite)
    return m + math.log(sum(math.exp(x - m) for x in finite))


@pytest.mark.parametrize("row, expected", [([math.inf, 1.0], math.inf), ([-math.inf, -math.inf], -math.inf),
                                           ([-math.inf, 2.0], 2.0), ([math.inf, -math.inf], math.inf)])
def test_logsumexp_with_infinities(row, expected):
    assert Tensor(np.array(row)).logsumexp().item() == expected  # [inf, 1] and [-inf, -inf] gave nan


@given(st.lists(st.one_of(st.floats(-50, 50), st.sampled_from([math.inf, -math.inf])), min_size=1, max_size=6))
def test_logsumexp_matches_its_definition_with_infinities(row):
    got = Tensor(np.array(row)).logsumexp().item()
    expected = logsumexp_by_hand(row)
    if math.isinf(expected):
        assert got == expected
    else:
        assert got == pytest.approx(expected, rel=1e-12, abs=1e-12)


# --- a leaf owns its gradient -----------------------------------------------------------------------------------


def test_two_leaves_never_share_a_gradient_buffer():
    a = Tensor(np.ones((3, 2)), requires_grad=True)
    b = Tensor(np.ones((3, 2)), requires_grad=True)
    weights = np.arange(6.0).reshape(2, 3)
    ((a.T + b.T) * weights).sum().backward()
    a.grad *= 0.5  # halved b.grad too when both were views of one array
    assert np.array_equal(b.grad, weights.T) and np.array_equal(a.grad, weights.T / 2)
    assert not np.shares_memory(a.grad, b.grad)


def test_a_leaf_gradient_is_not_a_view_of_the_callers_array():
    x = Tensor(np.zeros((2, 3)), requires_grad=True)
    upstream = np.arange(6.0).reshape(3, 2)
    x.T.backward(upstream)
    x.grad[0, 0] = 99.0  # wrote into the caller's array when x.grad was upstream.T
    assert upstream[0, 0] == 0.0 and not np.shares_memory(x.grad, upstream)
    leaf = Tensor(np.zeros(2), requires_grad=True)
    given_grad = np.ones(2)
    leaf.backward(given_grad)
    assert not np.shares_memory(leaf.grad, given_grad)


def test_a_gradient_has_its_leafs_dtype_and_is_an_array():
    w = Tensor(np.ones(3, np.float32), requires_grad=True)
    (w * np.arange(3.0)).sum().backward()  # a float64 constant in a float32 leaf's graph
    assert w.grad.dtype == np.float32  # was float64
    s = Tensor(np.array(2.0), requires_grad=True)
    (s * s).backward()
    assert isinstance(s.grad, np.ndarray) and s.grad.shape == () and s.grad == 4.0  # was a NumPy scalar


# --- Tensor(ndarray) copies; from_numpy shares -------------------------------------------------------------------


def test_tensor_copies_the_callers_array_and_from_numpy_shares_it():
    mine = np.ones(3)
    t = Tensor(mine, requires_grad=True)
    t.data -= 0.5  # what an optimizer step does
    assert np.array_equal(mine, np.ones(3))  # rewrote the user's data before
    shared = Tensor.from_numpy(mine)
    mine[0] = 7.0
    assert shared.data[0] == 7.0


def test_complex_data_is_refused():
    with pytest.raises(TypeError, match="real numbers"):
        Tensor(np.array([1 + 2j, 3.0]))
    with pytest.raises(TypeError, match="real numbers"):
        Tensor(np.array([1 + 2j]), dtype=np.float64)


# --- backward after an in-place change ---------------------------------------------------------------------------


def test_backward_after_changing_a_used_tensor_is_refused():
    W = Tensor(np.array([0.3, -0.2]), requires_grad=True, label="W")
    y = (W * W).tanh().sum()
    W.data -= 0.5
    with pytest.raises(RuntimeError, match=r"tensor 'W' of shape \(2,\) was changed .* run the forward pass again"):
        y.backward()
    fresh = (W * W).tanh().sum()  # a new forward pass is fine
    fresh.backward()
    expected = 2 * W.data * (1 - np.tanh(W.data * W.data) ** 2)
    assert np.allclose(W.grad, expected)


def test_an_optimizer_step_between_forward_and_backward_is_refused():
    from micrograd_mnist import optim

    w = Tensor(np.ones(2), requires_grad=True)
    loss = (w * w).sum()
    loss.backward()
    opt = optim.SGD([w], lr=0.1)
    opt.step()
    with pytest.raises(RuntimeError, match="was changed"):
        loss.backward()


# --- Tensors as indices -------------------------------------------------------------------------------------------


def test_a_boolean_tensor_masks():
    x = Tensor(np.array([10.0, 20.0, 30.0]), requires_grad=True)
    picked = x[Tensor([True, False, True])]
    assert np.array_equal(picked.data, [10.0, 30.0])  # was [20, 10, 20]
    picked.sum().backward()
    assert np.array_equal(x.grad, [1.0, 0.0, 1.0])
    assert np.array_equal(x[Tensor(np.array([False, True, False]))].data, [20.0])


def test_a_float_tensor_index_must_be_whole():
    x = Tensor(np.array([10.0, 20.0, 30.0]))
    assert np.array_equal(x[Tensor([2.0, 0.0])].data, [30.0, 10.0])
    with pytest.raises(IndexError, match="whole numbers"):
        x[Tensor([1.7])]  # was silently 1


# --- matmul refusals name the real reason ---------------------------------------------------------------------------


def test_matmul_refusals_say_which_side_has_the_wrong_rank():
    with pytest.raises(ValueError, match=r"\(3, 4\) @ \(4,\); the right must be a matrix \(2-D\), not 1-D"):
        Tensor(np.ones((3, 4))) @ Tensor(np.ones(4))
    with pytest.raises(ValueError, match=r"\(2, 3, 4\) @ \(4, 5\); the left must be a vector or a matrix"):
        Tensor(np.ones((2, 3, 4))) @ Tensor(np.ones((4, 5)))
    with pytest.raises(ValueError, match="left's last dimension must equal the right's first"):
        Tensor(np.ones((3, 4))) @ Tensor(np.ones((5, 2)))


# --- Adam counts each parameter's own steps ------------------------------------------------------------------------


def adam_by_hand(grads: list[float], lr=0.1, b1=0.9, b2=0.999, eps=1e-8) -> float:
    """Kingma & Ba's update, float64, written out: the total move of one parameter given its own gradients."""
    m = v = moved = 0.0
    for t, g in enumerate(grads, start=1):
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        moved -= lr * (m / (1 - b1**t)) / (math.sqrt(v / (1 - b2**t)) + eps)
    return moved


@pytest.mark.parametrize("late", [5, 1000])
def test_adam_bias_correction_counts_each_parameters_own_steps(late):
    from micrograd_mnist import optim

    early = Tensor(np.zeros(1), requires_grad=True)
    frozen = Tensor(np.zeros(1), requires_grad=True)
    opt = optim.Adam([early, frozen], lr=0.1)
    for _ in range(late):
        early.grad, frozen.grad = np.ones(1), None  # the frozen layer gets no gradient: skipped, its state unmoved
        opt.step()
    assert frozen.data[0] == 0.0 and opt.t == [late, 0]
    early.grad, frozen.grad = np.ones(1), np.ones(1)
    opt.step()
    assert frozen.data[0] == pytest.approx(adam_by_hand([1.0]), rel=1e-12)  # −0.1, not −0.052 or −0.25
    assert early.data[0] == pytest.approx(adam_by_hand([1.0] * (late + 1)), rel=1e-9)


def test_nesterov_without_momentum_is_refused():
    from micrograd_mnist import optim

    with pytest.raises(ValueError, match="nesterov=True. needs momentum > 0"):
        optim.SGD([Tensor(np.zeros(1), requires_grad=True)], lr=0.1, nesterov=True)


# --- the scalar engine: one accumulation rule, named domain errors, labels in range ---------------------------------


def test_backward_on_a_leaf_twice_accumulates_in_both_engines():
    v = Value(3.0)
    v.backward()
    v.backward()
    t = Tensor(np.array(3.0), requires_grad=True)
    t.backward()
    t.backward()
    assert v.grad == 2.0 == float(t.grad)  # Value said 1.0
    y = Value(2.0)
    out = y * y
    out.backward()
    out.backward()
    assert y.grad == 8.0 and out.grad == 1.0  # an intermediate starts afresh each pass, the leaf accumulates


def test_an_undefined_derivative_names_the_op_and_the_node():
    a = Value(0.0, label="a")
    root = a ** 0.5
    with pytest.raises(ValueError, match=r"derivative of pow is undefined at a = 0 .*a \*\* 0.5 has no slope"):
        root.backward()


@pytest.mark.parametrize("label", [-1, 3, True, 1.0, "1"])
def test_scalar_cross_entropy_takes_only_class_indices(label):
    from micrograd_mnist.nn import scalar

    with pytest.raises(ValueError, match=r"label must be a class index, an integer in \[0, 3\)"):
        scalar.cross_entropy([Value(0.0), Value(1.0), Value(2.0)], label)


def test_scalar_cross_entropy_with_an_infinite_logit_is_not_nan():
    from micrograd_mnist.nn import scalar

    logits = [Value(math.inf), Value(1.0), Value(0.0)]
    assert scalar.cross_entropy(logits, 1).data == math.inf  # −log of a probability 0 (was nan)
