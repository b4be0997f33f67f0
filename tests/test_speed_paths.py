"""The engine's fast paths give exactly the plain path's numbers, and reuse memory only where nobody can see it.

Fast paths: the fused forward and backward of `linear` and `cross_entropy` (tensor.FAST_FORWARD and
FAST_BACKWARD), writing leaf gradients into the arrays zero_grad() kept or lent; the optimizers' out= updates,
per parameter and on all parameters laid end to end (optim._Flat), the long ones through OpenBLAS (blas.py);
`data.Batches` gathering into reused buffers. Each is compared, bit for bit, with the plain path (the op
table's forward rules and VJPs; the optimizers' augmented assignments, or NumPy's ufuncs; `X[idx]`).
No timing here: benchmarks/mnist_epoch.py measures the speed.
"""

from __future__ import annotations

import weakref

import numpy as np
import pytest

from micrograd_mnist import blas, ops, optim, tensor
from micrograd_mnist.data import Batches
from micrograd_mnist.gradcheck import gradcheck
from micrograd_mnist.nn import MLP, Linear
from micrograd_mnist.nn import functional as F
from micrograd_mnist.tensor import Tensor


def per_parameter_updates(m) -> None:
    """Switch off the optimizers' flat path (on a monkeypatch context `m`)."""
    m.setattr(optim._Flat, "of", classmethod(lambda cls, params: None))


def train(dtype, steps: int, make_opt, plain_backward: bool, plain_update: bool, monkeypatch, zero_grad=True):
    """Parameters and gradients after `steps` steps of a small MLP, through the chosen paths."""
    with monkeypatch.context() as m:
        if plain_backward:
            m.setattr(tensor, "FAST_BACKWARD", {})
            m.setattr(tensor, "FAST_FORWARD", {})
        if plain_update:
            m.setattr(optim.Optimizer, "_in_place", lambda self, p, *buffers: False)
            per_parameter_updates(m)
        rng = np.random.default_rng(0)
        model = MLP([6, 5, 4, 3], "relu", rng=np.random.default_rng(1), dtype=dtype)
        opt = make_opt(model.parameters())
        for _ in range(steps):
            x = rng.standard_normal((7, 6)).astype(dtype)
            loss = F.cross_entropy(model(x), rng.integers(0, 3, 7))
            if zero_grad:
                opt.zero_grad()
            loss.backward()
            opt.step()
        return [p.data.copy() for p in model.parameters()], [p.grad.copy() for p in model.parameters()]


OPTIMIZERS = {
    "sgd": lambda ps: optim.SGD(ps, lr=0.1),
    "sgd momentum": lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9),
    "sgd nesterov + decay": lambda ps: optim.SGD(ps, lr=0.1, momentum=0.8, nesterov=True, weight_decay=1e-2),
    "adam": lambda ps: optim.Adam(ps, lr=1e-2),
    "adam + decay": lambda ps: optim.Adam(ps, lr=1e-2, weight_decay=1e-2),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_fast_backward_and_in_place_updates_give_the_plain_paths_numbers_bit_for_bit(name, dtype, monkeypatch):
    plain = train(dtype, 4, OPTIMIZERS[name], True, True, monkeypatch)
    fast = train(dtype, 4, OPTIMIZERS[name], False, False, monkeypatch)
    for a, b in zip(plain[0] + plain[1], fast[0] + fast[1]):
        assert a.dtype == b.dtype == dtype
        assert np.array_equal(a, b)
    assert not np.array_equal(plain[0][0], MLP([6, 5, 4, 3], rng=np.random.default_rng(1), dtype=dtype)[0].weight.data)


@pytest.mark.parametrize("flat", [True, False], ids=["flat", "per parameter"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_updates_through_openblas_give_the_numbers_numpy_gives_bit_for_bit(name, dtype, flat, monkeypatch,
                                                                         blas_calls):
    with monkeypatch.context() as m:
        if not flat:
            per_parameter_updates(m)
        with monkeypatch.context() as off:
            off.setattr(blas, "_AXPY", None)
            plain = train(dtype, 4, OPTIMIZERS[name], False, False, monkeypatch)
        m.setattr(blas, "MIN_SIZE", 1)  # so that this small network's arrays go through OpenBLAS
        through = train(dtype, 4, OPTIMIZERS[name], False, False, monkeypatch)
    for a, b in zip(plain[0] + plain[1], through[0] + through[1]):
        assert np.array_equal(a, b)
    assert set(blas_calls) == ({np.dtype(dtype).name} if blas.available else set())  # they went through OpenBLAS


def test_gradients_that_accumulate_over_steps_agree_too(monkeypatch):
    make = OPTIMIZERS["sgd momentum"]
    plain = train(np.float32, 3, make, True, True, monkeypatch, zero_grad=False)
    fast = train(np.float32, 3, make, False, False, monkeypatch, zero_grad=False)
    assert all(np.array_equal(a, b) for a, b in zip(plain[1], fast[1]))


def test_the_fused_linear_backward_passes_gradcheck_for_all_three_inputs():
    layer = Linear(3, 2, rng=np.random.default_rng(0), dtype=np.float64)
    x = Tensor(np.random.default_rng(1).standard_normal((4, 3)), requires_grad=True)
    called = []
    fused = tensor.FAST_BACKWARD["linear"]

    def spy(*args):
        called.append(True)
        return fused(*args)

    tensor.FAST_BACKWARD["linear"] = spy
    try:
        assert gradcheck(lambda x, W, b: (layer(x) * 2.0).tanh(), [x, layer.weight, layer.bias]) is True
    finally:
        tensor.FAST_BACKWARD["linear"] = fused
    assert called  # the fused rule did the backward that gradcheck checked


def test_the_fused_backward_leaves_a_one_sample_input_to_the_table():
    layer = Linear(3, 2, rng=np.random.default_rng(0), dtype=np.float64)
    x = Tensor(np.arange(3.0), requires_grad=True)
    layer(x).sum().backward()  # 1-D x: xᵀ · g is an outer product, which the table's VJP does
    assert np.array_equal(layer.weight.grad, np.outer(np.arange(3.0), np.ones(2)))
    assert np.array_equal(x.grad, layer.weight.data.sum(axis=1))


def test_the_fused_backward_leaves_a_broadcast_bias_to_the_table():
    from micrograd_mnist import ops

    x = Tensor(np.ones((4, 5)), requires_grad=True)
    W = Tensor(np.ones((5, 3)), requires_grad=True)
    b = Tensor(np.zeros(1), requires_grad=True)  # one bias for all three outputs
    Tensor.apply(ops.linear, x, W, b).sum().backward()  # the fused rule wrote a (3,) sum into b's (1,) grad
    assert np.array_equal(b.grad, [12.0]) and np.array_equal(W.grad, np.full((5, 3), 4.0))


@pytest.mark.parametrize("classes", [3, 40])  # 40: wider than _row_max reads down the columns
def test_the_fused_cross_entropy_gives_the_tables_loss_and_gradient_bit_for_bit(classes, monkeypatch):
    rng = np.random.default_rng(0)
    z = rng.standard_normal((9, classes)).astype(np.float32) * 5
    labels = rng.integers(0, classes, 9)
    results = []
    for fast in (True, False):
        with monkeypatch.context() as m:
            if not fast:
                m.setattr(tensor, "FAST_FORWARD", {})
                m.setattr(tensor, "FAST_BACKWARD", {})
            logits = Tensor(z, requires_grad=True)
            loss = F.cross_entropy(logits * 1.0, labels)
            loss.backward()
            results.append((loss.data.copy(), logits.grad.copy()))
    assert np.array_equal(results[0][0], results[1][0]) and np.array_equal(results[0][1], results[1][1])


def test_the_fused_cross_entropy_forward_matches_the_table_for_any_labels_the_table_takes():
    # Tensor.apply reaches the fused forward without cross_entropy()'s checks: negative labels (NumPy counts them
    # from the end), and fewer labels than rows (the table picks from the first rows), must give the table's bits
    rng = np.random.default_rng(5)
    for _ in range(300):
        rows, classes = (int(n) for n in rng.integers(1, 40, 2))
        n = int(rng.integers(1, rows + 1))
        dtype = rng.choice([np.float32, np.float64])
        z = (rng.standard_normal((rows, classes)) * rng.choice([1.0, 30.0])).astype(dtype)
        labels = rng.integers(-classes, classes, n)
        fast = Tensor.apply(ops.cross_entropy, Tensor(z, requires_grad=True), params=(labels,))
        table = ops.cross_entropy.forward(np, z, labels)
        assert np.asarray(fast.data).tobytes() == np.asarray(table).tobytes(), (rows, classes, n, dtype)


def test_logits_with_nan_or_inf_take_the_tables_forward_to_the_bit():
    z = np.array([[np.nan, -np.nan, 1.0], [2.0, np.inf, 0.0], [-np.nan, 3.0, np.nan], [1.0, 2.0, 3.0]], np.float32)
    labels = np.array([0, 1, 2, 1])
    with np.errstate(invalid="ignore"):  # inf − inf in both
        fast = F.cross_entropy(Tensor(z, requires_grad=True), labels)
        table = ops.cross_entropy.forward(np, z, labels)
    assert np.asarray(fast.data).tobytes() == np.asarray(table).tobytes()
    assert fast._saved is None  # nothing kept: the backward is the table's too


def test_a_second_backward_through_the_fused_cross_entropy_uses_the_table():
    logits = Tensor(np.array([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]]), requires_grad=True)
    loss = F.cross_entropy(logits, np.array([1, 2]))
    loss.backward()
    first = logits.grad.copy()
    loss.backward()  # the kept softmax became the first gradient; the table computes it again
    assert np.array_equal(logits.grad, 2 * first)


def test_no_softmax_is_kept_without_a_graph():
    from micrograd_mnist.tensor import no_grad

    with no_grad():
        loss = F.cross_entropy(Tensor(np.ones((2, 3)), requires_grad=True), np.array([0, 1]))
    assert loss._saved is None and loss.op is None


def test_the_fused_cross_entropy_passes_gradcheck():
    x = Tensor(np.random.default_rng(2).standard_normal((5, 4)), requires_grad=True)
    assert gradcheck(lambda x: F.cross_entropy(x * 1.5, np.array([0, 3, 1, 1, 2])), [x]) is True


def step_grads(model, x, t):
    F.cross_entropy(model(x), t).backward()
    return model[0].weight.grad, model[0].bias.grad


def test_zero_grad_keeps_the_array_and_the_next_backward_writes_into_it():
    model = MLP([4, 3, 2], rng=np.random.default_rng(0))
    x, t = np.ones((5, 4), np.float32), np.array([0, 1, 0, 1, 1])
    step_grads(model, x, t)
    W, b = model[0].weight, model[0].bias
    first_W, first_b = weakref.ref(W.grad), weakref.ref(b.grad)  # weak: the reuse check must not see them
    W.zero_grad()
    b.zero_grad()
    assert W.grad is None and b.grad is None  # what a user sees: no gradient
    step_grads(model, x * 2, t)
    assert W.grad is first_W() and b.grad is first_b()  # the same arrays, written again (freed before)


def test_a_gradient_the_caller_kept_is_never_overwritten():
    model = MLP([4, 3, 2], rng=np.random.default_rng(0))
    x, t = np.ones((5, 4), np.float32), np.array([0, 1, 0, 1, 1])
    kept, kept_b = step_grads(model, x, t)
    before, before_b = kept.copy(), kept_b.copy()
    optim.SGD(model.parameters(), lr=0.1).zero_grad()
    new, new_b = step_grads(model, x * 3, t)
    assert np.array_equal(kept, before) and np.array_equal(kept_b, before_b)  # the kept arrays were not reused
    assert not np.shares_memory(new, kept) and not np.array_equal(new, kept)


def test_a_spare_of_another_shape_or_dtype_is_not_used():
    w = Tensor(np.ones(3), requires_grad=True)
    (w * w).sum().backward()
    w.zero_grad()
    w.data = np.ones(4, np.float32)  # replaced by an array of another shape and dtype
    (w * w).sum().backward()
    assert w.grad.shape == (4,) and w.grad.dtype == np.float32 and np.array_equal(w.grad, np.full(4, 2.0))


@pytest.mark.parametrize("name", ["sgd momentum", "adam"])
def test_an_in_place_step_still_advances_the_version(name):
    w = Tensor(np.ones(2, np.float32), requires_grad=True)
    loss = (w * w).sum()
    loss.backward()
    data = w.data
    opt = OPTIMIZERS[name]([w])
    opt.step()
    assert w.data is data and not np.array_equal(data, np.ones(2))  # updated in place
    with pytest.raises(RuntimeError, match="was changed"):
        loss.backward()


def test_a_hand_set_gradient_of_another_dtype_takes_the_plain_update():
    w = Tensor(np.ones(2, np.float32), requires_grad=True)
    w.grad = np.array([1.0, 2.0])  # float64, set by hand
    optim.SGD([w], lr=0.5).step()
    assert w.data.dtype == np.float32 and np.array_equal(w.data, np.array([0.5, 0.0], np.float32))


def test_scratch_arrays_are_not_optimizer_state():
    w = Tensor(np.ones(3, np.float32), requires_grad=True)
    w.grad = np.ones(3, np.float32)
    opt = optim.Adam([w])
    opt.step()
    assert set(opt.state_dict()) == {"m.0", "v.0", "t"}


def spy_flat(monkeypatch, cls) -> list:
    """What each step's attempt at running on the flat arrays returned (True: it did)."""
    results, run = [], cls._step_flat

    def spy(self, flat, g):
        results.append(run(self, flat, g))
        return results[-1]
    monkeypatch.setattr(cls, "_step_flat", spy)
    return results


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_after_zero_grad_every_step_runs_on_the_flat_arrays(name, monkeypatch):
    ran = spy_flat(monkeypatch, optim.SGD if name.startswith("sgd") else optim.Adam)
    train(np.float32, 4, OPTIMIZERS[name], False, False, monkeypatch)
    assert ran == [True] * 4  # and test_fast_backward_and_in_place_updates... showed they give the same numbers


def small_step(model, opt, seed: int) -> None:
    rng = np.random.default_rng(seed)
    loss = F.cross_entropy(model(rng.standard_normal((7, 6)).astype(np.float32)), rng.integers(0, 3, 7))
    opt.zero_grad()
    loss.backward()
    opt.step()


@pytest.mark.parametrize("keep", [None, lambda g: g, lambda g: g[0], lambda g: g.T, lambda g: g.reshape(-1)],
                         ids=["nothing", "grad", "a row", "its transpose", "a reshape"])
def test_a_flat_gradient_the_caller_kept_is_not_overwritten_and_the_step_stays_right(keep, monkeypatch):
    runs = []
    for kept_something in (False, keep is not None):
        model = MLP([6, 5, 3], rng=np.random.default_rng(1))
        opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        small_step(model, opt, 0)
        # the gradient is a view of the optimizer's flat array, and so is anything made from it
        kept = keep(model[0].weight.grad) if kept_something else None
        copy = None if kept is None else kept.copy()
        small_step(model, opt, 1)
        if kept is not None:
            assert np.array_equal(kept, copy)  # backward wrote the new gradient elsewhere
        small_step(model, opt, 2)
        runs.append([p.data.copy() for p in model.parameters()])
    assert all(np.array_equal(a, b) for a, b in zip(*runs))


@pytest.mark.parametrize("name", ["sgd nesterov + decay", "adam + decay"])
def test_tied_parameters_take_the_per_parameter_path(name, monkeypatch):
    """Two parameters on one array: weight decay must read the second after the first one's update."""
    def run(flat: bool):
        with monkeypatch.context() as m:
            if not flat:
                per_parameter_updates(m)
            W = Tensor(np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32), requires_grad=True)
            tied = Tensor.from_numpy(W.data, requires_grad=True)
            opt = OPTIMIZERS[name]([W, tied])
            for seed in range(3):
                x = np.random.default_rng(seed).standard_normal((5, 4)).astype(np.float32)
                loss = ((Tensor(x) @ W).tanh() * (Tensor(x) @ tied)).sum()
                opt.zero_grad()
                loss.backward()
                opt.step()
            return W.data.copy(), opt
    plain, _ = run(False)
    fast, opt = run(True)
    assert opt._flat is None and np.array_equal(plain, fast)


def test_a_parameter_given_a_new_array_is_updated_there(monkeypatch):
    model = MLP([6, 5, 3], rng=np.random.default_rng(1))
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    small_step(model, opt, 0)
    W = model[0].weight
    old = W.data
    W.data = old.copy()  # after the layout was made; backward still fits the lent gradient
    rng = np.random.default_rng(1)
    loss = F.cross_entropy(model(rng.standard_normal((7, 6)).astype(np.float32)), rng.integers(0, 3, 7))
    loss.backward()
    kept_old = old.copy()
    opt.step()
    assert np.array_equal(old, kept_old) and not np.array_equal(W.data, kept_old)


@pytest.mark.parametrize("name", ["sgd momentum", "adam"])
def test_a_loaded_state_moves_into_the_flat_arrays_with_the_same_numbers(name, monkeypatch):
    def run(flat: bool):
        with monkeypatch.context() as m:
            if not flat:
                per_parameter_updates(m)
            model = MLP([6, 5, 3], rng=np.random.default_rng(1))
            opt = OPTIMIZERS[name](model.parameters())
            small_step(model, opt, 0)
            state = {k: v.copy() for k, v in opt.state_dict().items()}
            opt.load_state_dict(state)  # separate arrays again
            for seed in (1, 2):
                small_step(model, opt, seed)
            return [p.data.copy() for p in model.parameters()], opt
    plain, _ = run(False)
    ran = spy_flat(monkeypatch, optim.SGD if name.startswith("sgd") else optim.Adam)
    fast, opt = run(True)
    assert all(np.array_equal(a, b) for a, b in zip(plain, fast))
    assert ran == [True] * 3  # the two steps after the load ran on the flat arrays too
    buffers = opt.buffers if name.startswith("sgd") else opt.m
    assert all(b.base is not None and b.base is buffers[0].base for b in buffers)  # one flat array again


def test_adam_with_step_counts_that_differ_updates_per_parameter(monkeypatch):
    def run(flat: bool):
        with monkeypatch.context() as m:
            if not flat:
                per_parameter_updates(m)
            model = MLP([6, 5, 3], rng=np.random.default_rng(1))
            opt = optim.Adam(model.parameters(), lr=1e-2)
            small_step(model, opt, 0)
            opt.t[0] = 5  # as after a layer was frozen for a few steps
            small_step(model, opt, 1)
            return [p.data.copy() for p in model.parameters()], opt.t
    plain, t_plain = run(False)
    ran = spy_flat(monkeypatch, optim.Adam)
    fast, t_fast = run(True)
    assert ran == [True, False] and t_fast == t_plain == [6, 2, 2, 2]
    assert all(np.array_equal(a, b) for a, b in zip(plain, fast))


# --- Batches --------------------------------------------------------------------------------------------------------


def test_batches_gather_what_indexing_gives_into_reused_buffers():
    rng = np.random.default_rng(0)
    X, y = rng.random((50, 6), dtype=np.float32), rng.integers(0, 10, 50)
    order = rng.permutation(50)
    batches = Batches(X, y, 16)
    seen = []
    for k, (x, t) in enumerate(batches.epoch(order)):
        idx = order[k * 16:(k + 1) * 16]
        assert np.array_equal(x, X[idx]) and np.array_equal(t, y[idx]) and x.dtype == X.dtype
        seen.append((x.__array_interface__["data"][0], len(x)))
    assert [n for _, n in seen] == [16, 16, 16, 2]  # a short last batch
    assert len({address for address, _ in seen}) == 1  # every batch in the same memory
    resumed = list(batches.epoch(order, start=3))
    assert len(resumed) == 1 and np.array_equal(resumed[0][0], X[order[48:]])


def test_batches_refuse_bad_indices_and_sizes():
    X, y = np.zeros((10, 2), np.float32), np.zeros(10, np.int64)
    batches = Batches(X, y, 4)
    with pytest.raises(IndexError, match=r"must lie in \[0, 10\), got 3 to 10"):
        batches(np.array([3, 10]))
    with pytest.raises(IndexError, match="got -1 to 2"):
        batches(np.array([-1, 2]))
    with pytest.raises(TypeError, match="must be integers, got an array of float64"):
        batches(np.array([1.0, 2.0]))
    with pytest.raises(IndexError, match="got -3 to 9"):
        batches(np.array([9, -3], np.int8))
    assert np.array_equal(batches(np.array([9, 0], np.uint16))[0], X[[9, 0]])
    with pytest.raises(IndexError, match="got -1 to 2"):
        batches(np.array([-1, 2], ">i4"))  # big-endian: not read as unsigned
    with pytest.raises(ValueError, match="does not fit buffers of 4"):
        batches(np.arange(5))
    with pytest.raises(ValueError, match="as many labels as images"):
        Batches(X, y[:9], 4)
    with pytest.raises(ValueError, match="positive int"):
        Batches(X, y, 0)
