"""`nn.scalar.MLP` starts at random like micrograd's, so micrograd's own training loop learns with it."""

from __future__ import annotations

import micrograd.engine
import numpy as np
import pytest

from micrograd_mnist import Value, moons
from micrograd_mnist.nn import MLP, scalar


def weights_and_biases(model: scalar.MLP) -> tuple[np.ndarray, np.ndarray]:
    state = model.state_dict()
    weights = np.concatenate([a.ravel() for name, a in state.items() if name.endswith("weight")])
    biases = np.concatenate([a.ravel() for name, a in state.items() if name.endswith("bias")])
    return weights, biases


def test_weights_start_uniform_in_minus_one_one_and_biases_at_zero():
    weights, biases = weights_and_biases(scalar.MLP([2, 16, 16, 1], seed=0))
    assert weights.size == 2 * 16 + 16 * 16 + 16 and biases.size == 16 + 16 + 1
    assert np.all(biases == 0)
    assert np.all(np.abs(weights) <= 1)
    assert len(np.unique(weights)) == weights.size  # every weight its own draw
    assert abs(weights.mean()) < 0.1 and weights.std() == pytest.approx(1 / np.sqrt(3), abs=0.05)  # U(-1, 1)
    assert weights.min() < -0.9 and weights.max() > 0.9


def test_the_init_is_random_unless_seeded():
    a, b = scalar.MLP([3, 4, 2], seed=7), scalar.MLP([3, 4, 2], seed=7)
    assert [p.data for p in a.parameters()] == [p.data for p in b.parameters()]
    c = scalar.MLP([3, 4, 2], seed=8)
    assert [p.data for p in a.parameters()] != [p.data for p in c.parameters()]
    unseeded = [weights_and_biases(scalar.MLP([3, 4, 2]))[0] for _ in range(2)]
    assert not np.array_equal(*unseeded)


def test_micrograds_call_form_builds_the_same_network():
    ours, theirs = scalar.MLP([2, 16, 16, 1], "relu", seed=3), scalar.MLP(2, [16, 16, 1], seed=3)
    assert theirs.sizes == [2, 16, 16, 1] and theirs.activation == "relu"
    assert [type(layer).__name__ for layer in theirs.layers] == ["Linear", "Activation", "Linear", "Activation",
                                                                 "Linear"]
    assert [p.data for p in ours.parameters()] == [p.data for p in theirs.parameters()]
    with pytest.raises(TypeError, match=r"MLP\(2, \[16, 16, 1\]\)"):
        scalar.MLP(2, "relu")


def test_load_state_dict_replaces_the_init():
    tensor_model = MLP([3, 5, 2], "tanh", rng=np.random.default_rng(0), dtype=np.float64)
    mirror = scalar.MLP([3, 5, 2], "tanh", seed=1)
    mirror.load_state_dict(tensor_model.state_dict())
    for name, p in tensor_model.named_parameters():
        np.testing.assert_array_equal(mirror.state_dict()[name], p.data)


def test_the_value_class_is_still_a_choice():
    model = scalar.MLP(2, [4, 1], value=micrograd.engine.Value, seed=0)
    assert all(type(p) is micrograd.engine.Value for p in model.parameters())
    assert [p.data for p in model.parameters()] == [p.data for p in scalar.MLP(2, [4, 1], seed=0).parameters()]


def test_zero_grad_resets_every_gradient():
    model = scalar.MLP([2, 3, 1], seed=0)
    (y,) = model([Value(0.5), Value(-1.0)])
    y.backward()
    assert any(p.grad != 0 for p in model.parameters())
    model.zero_grad()
    assert all(p.grad == 0 for p in model.parameters())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_micrograds_moons_loop_learns_from_the_default_init(seed):
    """micrograd's demo.ipynb loop as a learner would copy it, on a smaller net and fewer points to stay fast."""
    X, y = moons.make_moons(40, seed=2)
    model = scalar.MLP(2, [8, 8, 1], seed=seed)  # no load_state_dict: the init is the constructor's own

    def loss():
        inputs = [list(map(Value, xrow)) for xrow in X]
        scores = [model(x)[0] for x in inputs]  # micrograd returns the lone output itself; here it is [0]
        losses = [(1 + -yi * scorei).relu() for yi, scorei in zip(y, scores)]
        data_loss = sum(losses) * (1.0 / len(losses))
        reg_loss = 1e-4 * sum(p * p for p in model.parameters())
        accuracy = [(yi > 0) == (scorei.data > 0) for yi, scorei in zip(y, scores)]
        return data_loss + reg_loss, sum(accuracy) / len(accuracy)

    first, _ = loss()
    for k in range(40):
        total, accuracy = loss()
        model.zero_grad()
        total.backward()
        learning_rate = 1.0 - 0.9 * k / 40
        for p in model.parameters():
            p.data -= learning_rate * p.grad
    total, accuracy = loss()
    assert accuracy >= 0.85, accuracy  # chance is 0.5
    assert total.data < first.data / 2
