"""Layers, losses and optimizers: `nn`, `nn.functional`, `nn.scalar`, `optim`."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import leaf64

from micrograd_mnist import Tensor, Value, ops, optim
from micrograd_mnist.nn import MLP, Activation, Linear, ReLU, Sequential, Sigmoid, Tanh, functional, scalar
from micrograd_mnist.optim import SGD, Adam

# --- models --------------------------------------------------------------------


@pytest.mark.parametrize(("sizes", "count"), [
    ([784, 16, 16, 10], 13_002),  # 3Blue1Brown's network
    ([784, 128, 64, 10], 109_386),
    ([4, 3], 15),
])
def test_num_parameters(sizes, count):
    model = MLP(sizes, rng=np.random.default_rng(0))
    assert model.num_parameters() == count
    # independently: Σ (in·out + out) over the layers
    assert count == sum(n_in * n_out + n_out for n_in, n_out in zip(sizes, sizes[1:]))


def test_parameter_names_and_shapes_follow_pytorch():
    model = MLP([784, 16, 16, 10], "sigmoid", rng=np.random.default_rng(0))
    shapes = {name: p.shape for name, p in model.named_parameters()}
    assert shapes == {
        "0.weight": (784, 16), "0.bias": (16,),
        "2.weight": (16, 16), "2.bias": (16,),
        "4.weight": (16, 10), "4.bias": (10,),
    }
    assert list(model.state_dict()) == list(shapes)
    assert [type(layer).__name__ for layer in model] == ["Linear", "Sigmoid", "Linear", "Sigmoid", "Linear"]
    mirror = scalar.MLP([784, 16, 16, 10], "sigmoid")
    assert {name: np.shape(p) for name, p in mirror.named_parameters().items()} == shapes


def test_linear_init_is_pytorchs_uniform_and_seeded():
    a = Linear(25, 40, rng=np.random.default_rng(7))
    b = Linear(25, 40, rng=np.random.default_rng(7))
    bound = 1 / np.sqrt(25)
    assert np.all(np.abs(a.weight.data) <= bound) and np.all(np.abs(a.bias.data) <= bound)
    assert a.weight.data.std() > bound / 3  # spread over the range, not all near zero
    np.testing.assert_array_equal(a.weight.data, b.weight.data)
    assert a.weight.dtype == np.float32 and a.weight.requires_grad


def test_bad_model_arguments():
    with pytest.raises(TypeError, match="in_features to be a positive int, got 0"):
        Linear(0, 3)
    with pytest.raises(TypeError, match="out_features to be a positive int, got 2.5"):
        Linear(3, 2.5)
    with pytest.raises(ValueError, match=r"at least an input and an output size, got \[3\]"):
        MLP([3])
    with pytest.raises(ValueError, match="activation"):
        MLP([3, 2], "gelu")
    with pytest.raises(TypeError, match="Sequential takes Modules, got str at position 1"):
        Sequential(Linear(2, 2), "relu")


# the seed texts' layer: one row of weights per neuron, and its outputs worked by hand
SEED_ROWS = np.array([[0.2, 0.8, -0.5, 1.0], [0.5, -0.91, 0.26, -0.5], [-0.26, -0.27, 0.17, 0.87]])
SEED_BIAS = np.array([2.0, 3.0, 0.5])
SEED_TABLE = [
    ([1.0, 2.0, 3.0, 2.5], [4.800, 1.210, 2.385]),
    ([-0.8, 0.4, 0.1, 1.2], [3.310, 1.662, 1.661]),
    ([0.2, 0.9, -0.5, 0.3], [3.310, 2.001, 0.381]),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_seed_layer_table_in_the_tensor_engine(dtype):
    layer = Linear(4, 3, dtype=dtype)
    layer.load_state_dict({"weight": SEED_ROWS.T, "bias": SEED_BIAS})  # Linear stores (in, out)
    for x, expected in SEED_TABLE:
        np.testing.assert_allclose(layer(Tensor(np.array(x, dtype=dtype))).data, expected, atol=5e-4)
    batch = np.array([x for x, _ in SEED_TABLE], dtype=dtype)
    out = layer(Tensor(batch))
    assert out.shape == (3, 3) and out.dtype == dtype
    np.testing.assert_allclose(np.round(out.data, 3), [e for _, e in SEED_TABLE], atol=5e-4)


def test_seed_layer_table_in_the_scalar_engine():
    model = scalar.MLP([4, 3])
    model.load_state_dict({"0.weight": SEED_ROWS.T, "0.bias": SEED_BIAS})
    layer = scalar.Linear(4, 3)
    for i in range(4):
        for j in range(3):
            layer.weight[i][j].data = SEED_ROWS[j, i]
    for j in range(3):
        layer.bias[j].data = SEED_BIAS[j]
    for x, expected in SEED_TABLE:
        np.testing.assert_allclose([v.data for v in model(x)], expected, atol=5e-4)
        np.testing.assert_allclose([v.data for v in layer([Value(xi) for xi in x])], expected, atol=5e-4)
    with pytest.raises(ValueError, match="expects 4 inputs"):
        layer([1.0, 2.0])


def test_state_dict_round_trip_between_models():
    a = MLP([5, 4, 3], "tanh", rng=np.random.default_rng(1))
    b = MLP([5, 4, 3], "tanh", rng=np.random.default_rng(2))
    x = np.random.default_rng(3).normal(size=(2, 5)).astype(np.float32)
    assert not np.allclose(a(x).data, b(x).data)
    b.load_state_dict(a.state_dict())
    np.testing.assert_array_equal(a(x).data, b(x).data)
    # the load copies: later updates to one model do not leak into the other
    a[0].weight.data += 1.0
    assert not np.allclose(a[0].weight.data, b[0].weight.data)


def test_load_state_dict_casts_to_the_models_dtype():
    model = MLP([2, 2], rng=np.random.default_rng(0))
    model.load_state_dict({"0.weight": np.eye(2), "0.bias": [1, 2]})
    assert model[0].weight.dtype == np.float32 and model[0].bias.dtype == np.float32
    np.testing.assert_array_equal(model[0].bias.data, [1.0, 2.0])


def test_load_state_dict_refuses_wrong_names_and_shapes():
    model = MLP([3, 2], rng=np.random.default_rng(0))
    good = {"0.weight": np.zeros((3, 2)), "0.bias": np.zeros(2)}
    with pytest.raises(ValueError, match="0.weight"):
        model.load_state_dict({**good, "0.weight": np.zeros((2, 3))})  # transposed: (out, in) is wrong here
    with pytest.raises(ValueError, match="missing"):
        model.load_state_dict({"0.weight": good["0.weight"]})
    with pytest.raises(ValueError, match="unexpected"):
        model.load_state_dict({**good, "1.weight": np.zeros((2, 2))})
    with pytest.raises(ValueError, match=r"'0.bias' has shape \(3,\), the model needs \(2,\)"):
        scalar.MLP([3, 2]).load_state_dict({**good, "0.bias": np.zeros(3)})


def test_layers_compose():
    model = Sequential(Linear(3, 4, rng=np.random.default_rng(0)), ReLU(), Linear(4, 2, rng=np.random.default_rng(1)))
    x = np.random.default_rng(2).normal(size=(5, 3)).astype(np.float32)
    w0, b0, w1, b1 = (p.data for p in model.parameters())
    expected = np.maximum(x @ w0 + b0, 0) @ w1 + b1
    np.testing.assert_allclose(model(Tensor(x)).data, expected, rtol=1e-6)
    assert len(model) == 3 and model[1].__class__ is ReLU


def test_one_activation_class_serves_both_engines():
    x = np.array([-1.5, 0.0, 2.0])
    for name, reference in (("relu", lambda v: np.maximum(v, 0)), ("sigmoid", lambda v: 1 / (1 + np.exp(-v))),
                            ("tanh", np.tanh)):
        layer = Activation(name)
        assert layer.op is getattr(ops, name)  # the row of the op table, found by name
        out = layer(Tensor(x, requires_grad=True))
        assert out.op is getattr(ops, name)
        np.testing.assert_allclose(out.data, reference(x), rtol=1e-12)
        values = layer([Value(v) for v in x])
        np.testing.assert_allclose([v.data for v in values], reference(x), rtol=1e-12)
        assert all(v.op is getattr(ops, name) for v in values)
    for named, name in ((ReLU(), "relu"), (Sigmoid(), "sigmoid"), (Tanh(), "tanh")):
        assert isinstance(named, Activation) and named.name == name and named.parameters() == []
    assert repr(Sigmoid()) == "Sigmoid()" and repr(Activation("tanh")) == "Activation('tanh')"
    tensor_model, scalar_model = MLP([2, 3, 1], "tanh"), scalar.MLP([2, 3, 1], "tanh")
    assert [layer.name for layer in tensor_model if isinstance(layer, Activation)] == ["tanh"]
    assert [layer.name for layer in scalar_model.layers if isinstance(layer, Activation)] == ["tanh"]
    with pytest.raises(ValueError, match="unknown activation 'gelu': choose one of relu, sigmoid, tanh"):
        Activation("gelu")
    with pytest.raises(ValueError, match=r"unknown activation \[16\]"):
        scalar.MLP([2, 1], [16])


def test_apply_runs_a_row_of_the_op_table_and_records_it():
    rng = np.random.default_rng(0)
    x, W, b = (leaf64(rng.normal(size=shape)) for shape in ((4, 3), (3, 2), (2,)))
    out = Tensor.apply(ops.linear, x, W, b)
    assert out.op is ops.linear and out.parents == (x, W, b)
    np.testing.assert_allclose(out.data, x.data @ W.data + b.data, rtol=1e-12)
    out.sum().backward()
    np.testing.assert_allclose(W.grad, x.data.T @ np.ones((4, 2)), rtol=1e-12)
    np.testing.assert_allclose(b.grad, [4.0, 4.0])
    total = Tensor.apply(ops.sum, x, params=(0, False))
    np.testing.assert_allclose(total.data, x.data.sum(axis=0), rtol=1e-12)
    with pytest.raises(TypeError, match=r"add takes 2 Tensor\(s\), got Tensor$"):
        Tensor.apply(ops.add, x)
    with pytest.raises(TypeError, match=r"neg takes 1 Tensor\(s\), got ndarray"):
        Tensor.apply(ops.neg, np.ones(2))


# --- losses --------------------------------------------------------------------


def _reference_cross_entropy(z: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    m = z.max(axis=1, keepdims=True)
    log_probs = z - (m + np.log(np.exp(z - m).sum(axis=1, keepdims=True)))
    n = len(labels)
    onehot = np.eye(z.shape[1])[labels]
    return -log_probs[np.arange(n), labels].mean(), (np.exp(log_probs) - onehot) / n


def test_cross_entropy_matches_a_numpy_reference(rng):
    z = rng.normal(size=(6, 4)) * 3
    labels = rng.integers(0, 4, 6)
    logits = leaf64(z)
    loss = functional.cross_entropy(logits, labels)
    loss.backward()
    expected_loss, expected_grad = _reference_cross_entropy(z, labels)
    assert loss.shape == () and loss.item() == pytest.approx(expected_loss, rel=1e-12)
    np.testing.assert_allclose(logits.grad, expected_grad, rtol=1e-10, atol=1e-15)
    # uniform logits: the loss is log(number of classes)
    assert functional.cross_entropy(Tensor(np.zeros((2, 5))), [0, 4]).item() == pytest.approx(np.log(5))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_is_stable_for_huge_logits(dtype):
    logits = Tensor(np.array([[1e4, 0.0, -1e4], [0.0, 1e4, 1e4]], dtype=dtype), requires_grad=True)
    loss = functional.cross_entropy(logits, np.array([0, 2]))
    loss.backward()
    # row 0 is certain and right (loss 0); row 1 splits between two classes (loss log 2)
    assert loss.item() == pytest.approx(np.log(2) / 2, rel=1e-6)
    assert np.all(np.isfinite(logits.grad)) and logits.grad.dtype == dtype
    np.testing.assert_allclose(logits.grad, [[0.0, 0.0, 0.0], [0.0, 0.25, -0.25]], atol=1e-6)


def test_cross_entropy_validates_its_labels():
    logits = Tensor(np.zeros((3, 4)))
    functional.cross_entropy(logits, np.array([0, 3, 1], dtype=np.uint8))  # any integer dtype is fine
    for bad, pattern in [
        ([0, 1], "3 integers"),  # one per row
        ([0.0, 1.0, 2.0], "integers"),
        ([True, False, True], "integers"),
        ([0, 4, 1], r"\[0, 4\)"),
        ([0, -1, 1], r"\[0, 4\)"),
        (np.array([0, -128, 1], np.int8), r"\[0, 4\)"),  # read as unsigned, -128 is 128
        (np.array([0, -1, 1], ">i8"), r"\[0, 4\)"),  # big-endian
    ]:
        with pytest.raises(ValueError, match=pattern):
            functional.cross_entropy(logits, bad)
    with pytest.raises(ValueError, match="batch, classes"):
        functional.cross_entropy(Tensor(np.zeros(4)), [1])
    with pytest.raises(ValueError, match=r"\[0, 300\), got values from -1 to 0"):
        functional.cross_entropy(Tensor(np.zeros((2, 300))), np.array([-1, 0], np.int8))  # -1 read unsigned < 300


def test_mse_matches_a_numpy_reference(rng):
    p, t = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    for target in (t, Tensor(t)):
        pred = leaf64(p)
        loss = functional.mse(pred, target)
        loss.backward()
        assert loss.item() == pytest.approx(np.mean((p - t) ** 2), rel=1e-12)
        np.testing.assert_allclose(pred.grad, 2 * (p - t) / p.size, rtol=1e-12)


def test_log_softmax_matches_a_numpy_reference(rng):
    z = rng.normal(size=(3, 5)) * 10
    out = functional.log_softmax(Tensor(z)).data
    np.testing.assert_allclose(out, z - np.log(np.exp(z).sum(axis=1, keepdims=True)), rtol=1e-12)
    np.testing.assert_allclose(np.exp(out).sum(axis=1), 1.0, rtol=1e-12)


def test_scalar_cross_entropy_matches_the_reference():
    z = np.array([[0.5, -1.0, 2.0, 0.1]])
    logits = [Value(x) for x in z[0]]
    loss = scalar.cross_entropy(logits, 2)
    loss.backward()
    expected_loss, expected_grad = _reference_cross_entropy(z, np.array([2]))
    assert loss.data == pytest.approx(expected_loss, rel=1e-12)
    np.testing.assert_allclose([v.grad for v in logits], expected_grad[0], rtol=1e-10, atol=1e-15)


# --- optimizers -----------------------------------------------------------------

GRADS = [np.array([0.5, -1.0, 2.0]), np.array([-0.3, 0.2, 1.0]), np.array([0.1, 0.4, -0.6])]
START = np.array([1.0, -2.0, 0.5])


def _run_tensor(opt_class, **kwargs) -> tuple[np.ndarray, Tensor, list]:
    p = leaf64(START)
    opt = opt_class([p], **kwargs)
    history = []
    for g in GRADS:
        p.grad = g.copy()
        opt.step()
        history.append(p.data.copy())
    return p.data, p, history


def _run_values(opt_class, **kwargs) -> np.ndarray:
    ps = [Value(x) for x in START]
    opt = opt_class(ps, **kwargs)
    for g in GRADS:
        for p, gi in zip(ps, g):
            p.grad = float(gi)
        opt.step()
    return np.array([p.data for p in ps])


def _reference_sgd(lr, momentum=0.0, weight_decay=0.0, nesterov=False) -> np.ndarray:
    p, buf = START.copy(), None
    for g in GRADS:
        d = g + weight_decay * p
        if momentum:
            buf = d.copy() if buf is None else momentum * buf + d
            d = d + momentum * buf if nesterov else buf
        p = p - lr * d
    return p


def _reference_adam(lr, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.0) -> np.ndarray:
    p, m, v = START.copy(), np.zeros(3), np.zeros(3)
    for t, g in enumerate(GRADS, start=1):
        g = g + weight_decay * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat, v_hat = m / (1 - b1 ** t), v / (1 - b2 ** t)
        p = p - lr * m_hat / (np.sqrt(v_hat) + eps)
    return p


def test_sgd_plain_step_is_p_minus_lr_g():
    _, _, history = _run_tensor(SGD, lr=0.1)
    np.testing.assert_allclose(history[0], START - 0.1 * GRADS[0], rtol=1e-15)
    np.testing.assert_allclose(history[-1], START - 0.1 * sum(GRADS), rtol=1e-12)


@pytest.mark.parametrize("kwargs", [
    {"lr": 0.1},
    {"lr": 0.1, "momentum": 0.9},
    {"lr": 0.05, "momentum": 0.5, "nesterov": True},
    {"lr": 0.1, "weight_decay": 0.01},
    {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.1},
])
def test_sgd_matches_a_reference_over_three_steps(kwargs):
    expected = _reference_sgd(**kwargs)
    assert not np.allclose(expected, START - kwargs["lr"] * sum(GRADS)) or set(kwargs) == {"lr"}
    np.testing.assert_allclose(_run_tensor(SGD, **kwargs)[0], expected, rtol=1e-12)
    np.testing.assert_allclose(_run_values(SGD, **kwargs), expected, rtol=1e-12)


@pytest.mark.parametrize("kwargs", [
    {"lr": 0.01},
    {"lr": 0.1, "betas": (0.8, 0.99)},
    {"lr": 0.01, "weight_decay": 0.1},
])
def test_adam_matches_a_reference_over_three_steps(kwargs):
    ref_kwargs = {k: v for k, v in kwargs.items() if k != "betas"}
    if "betas" in kwargs:
        ref_kwargs["b1"], ref_kwargs["b2"] = kwargs["betas"]
    expected = _reference_adam(**ref_kwargs)
    np.testing.assert_allclose(_run_tensor(Adam, **kwargs)[0], expected, rtol=1e-12)
    np.testing.assert_allclose(_run_values(Adam, **kwargs), expected, rtol=1e-12)


def test_adam_first_step_moves_each_parameter_by_about_lr():
    _, _, history = _run_tensor(Adam, lr=0.01)
    np.testing.assert_allclose(np.abs(history[0] - START), 0.01, rtol=1e-6)


@pytest.mark.parametrize("make", [
    lambda ps: SGD(ps, lr=0.1),
    lambda ps: SGD(ps, lr=0.1, momentum=0.9, weight_decay=0.01),
    lambda ps: Adam(ps, lr=0.1),
])
def test_optimizers_update_tensors_in_place_and_leave_grads_alone(make):
    p = leaf64(START)
    data = p.data
    opt = make([p])
    for g in GRADS:
        p.grad = g.copy()
        opt.step()
        np.testing.assert_array_equal(p.grad, g)  # no aliasing with momentum or moment buffers
    assert p.data is data and id(p.data) == id(data)
    assert not np.allclose(data, START)


def test_optimizers_skip_parameters_without_gradients_and_zero_grad():
    p, q = leaf64(START), leaf64(START)
    for opt in (SGD([p, q], lr=0.1, momentum=0.9), Adam([p, q], lr=0.1)):
        p.grad, q.grad = GRADS[0].copy(), None
        opt.step()
        np.testing.assert_array_equal(q.data, START)
        opt.zero_grad()
        assert p.grad is None and q.grad is None
    v = Value(1.0)
    v.grad = 3.0
    SGD([v], lr=0.1).zero_grad()
    assert v.grad == 0.0


def test_optimizers_reject_bad_arguments():
    with pytest.raises(ValueError, match="empty"):
        SGD([], lr=0.1)
    with pytest.raises(ValueError, match="learning rate"):
        SGD([leaf64([1.0])], lr=0.0)
    with pytest.raises(ValueError, match="learning rate"):
        Adam([leaf64([1.0])], lr=-1e-3)


# --- training -------------------------------------------------------------------


@pytest.mark.parametrize("make_optimizer", [
    lambda ps: SGD(ps, lr=0.5, momentum=0.9),
    lambda ps: Adam(ps, lr=0.05),
])
def test_mlp_learns_xor_quadrants(make_optimizer):
    """Not linearly separable: the hidden layer has to do the work."""
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (200, 2))
    X = X[np.abs(X).min(axis=1) > 0.1]  # a margin around the axes
    labels = (X[:, 0] * X[:, 1] > 0).astype(int)
    model = MLP([2, 8, 2], "tanh", rng=rng)
    opt = make_optimizer(model.parameters())
    inputs = Tensor(X.astype(np.float32))
    losses = []
    for _ in range(300):
        loss = functional.cross_entropy(model(inputs), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    accuracy = np.mean(model(inputs).data.argmax(axis=1) == labels)
    assert accuracy > 0.9
    assert losses[-1] < 0.25 * losses[0]


# --- the fused linear op: x @ W + b forward, and the seed texts' backprop table for its gradients -------------


@pytest.mark.parametrize("shape", [(4, 5), (5,)])
def test_fused_linear_matches_the_backprop_table(shape):
    rng = np.random.default_rng(7)
    layer = Linear(5, 3, rng=rng, dtype=np.float64)
    W, b = layer.weight.data.copy(), layer.bias.data.copy()
    X = rng.standard_normal(shape)
    x = Tensor(X.copy(), requires_grad=True)
    out = layer(x)
    assert out.op is ops.linear  # one fused node, not matmul then add
    assert out.dtype == np.float64 and out.shape == shape[:-1] + (3,)
    np.testing.assert_allclose(out.data, X @ W + b, rtol=1e-12, atol=1e-12)

    R = rng.standard_normal(out.shape)
    (out * R).sum().backward()
    np.testing.assert_allclose(x.grad, R @ W.T, rtol=1e-12, atol=1e-12)  # dL/dX = dL/dY · Wᵀ
    expected_dW = X.T @ R if X.ndim > 1 else np.outer(X, R)  # dL/dW = Xᵀ · dL/dY
    np.testing.assert_allclose(layer.weight.grad, expected_dW, rtol=1e-12, atol=1e-12)
    assert layer.bias.grad.shape == (3,)
    np.testing.assert_allclose(layer.bias.grad, R.sum(axis=0) if X.ndim > 1 else R, rtol=1e-12, atol=1e-12)


def test_linear_without_bias():
    rng = np.random.default_rng(8)
    layer = Linear(5, 3, bias=False, rng=rng, dtype=np.float64)
    assert layer.bias is None
    assert [name for name, _ in layer.named_parameters()] == ["weight"]
    X, R = rng.standard_normal((4, 5)), rng.standard_normal((4, 3))
    x = Tensor(X.copy(), requires_grad=True)
    out = layer(x)
    np.testing.assert_allclose(out.data, X @ layer.weight.data, rtol=1e-12, atol=1e-12)
    (out * R).sum().backward()
    np.testing.assert_allclose(x.grad, R @ layer.weight.data.T, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(layer.weight.grad, X.T @ R, rtol=1e-12, atol=1e-12)
    params = layer.parameters()
    assert len(params) == 1 and params[0] is layer.weight  # nothing else to hold a gradient


def test_linear_takes_float64_data_in_its_own_dtype():
    layer = Linear(4, 3, rng=np.random.default_rng(0))
    y = layer(Tensor(np.ones((2, 4), dtype=np.float64)))
    assert y.dtype == np.float32 and y.shape == (2, 3)


def test_cross_entropy_takes_label_tensors_and_refuses_empty_batches():
    logits = Tensor(np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32))
    labels = np.array([0, 2, 1, 2])
    reference, _ = _reference_cross_entropy(logits.data.astype(np.float64), labels)
    assert functional.cross_entropy(logits, labels).item() == pytest.approx(reference, rel=1e-6)
    assert functional.cross_entropy(logits, Tensor(labels)).item() == pytest.approx(reference, rel=1e-6)
    with pytest.raises(ValueError, match="batch > 0"):
        functional.cross_entropy(Tensor(np.zeros((0, 3), dtype=np.float32)), np.array([], dtype=np.int64))


def test_mse_refuses_silent_broadcasting_only():
    with pytest.raises(ValueError, match="shaped like pred"):
        functional.mse(Tensor(np.zeros((6, 1))), np.zeros(6))
    pred, target = np.arange(12.0).reshape(3, 4), np.array([1.0, 2.0, 3.0, 4.0])
    assert functional.mse(Tensor(pred), target).item() == pytest.approx(((pred - target) ** 2).mean())


@pytest.mark.parametrize("make, complaint", [
    (lambda ps: optim.SGD(ps, lr=0.1, momentum=-0.1), "momentum must lie in"),
    (lambda ps: optim.SGD(ps, lr=0.1, weight_decay=-1), "weight_decay must lie in"),
    (lambda ps: optim.Adam(ps, betas=(1.0, 0.999)), r"betas\[0\] must lie in \[0.0, 1.0\), got 1.0"),
    (lambda ps: optim.Adam(ps, eps=-1), "eps must lie in"),
    (lambda ps: optim.SGD(ps, lr=float("inf")), "learning rate must be a positive number, got inf"),
], ids=["sgd-momentum", "sgd-weight-decay", "adam-beta1", "adam-eps", "sgd-lr-inf"])
def test_optimizers_refuse_bad_settings(make, complaint):
    params = [Tensor(np.zeros(2), requires_grad=True)]
    with pytest.raises(ValueError, match=complaint):
        make(params)
