"""The cycle collector is paused while the library's own loops build scalar graphs (`graph.building`), and the
caller's collector state is always given back: on, or off if the caller turned it off, also after an exception.
No timing: the speed this buys is measured by benchmarks/scalar.py.
"""

from __future__ import annotations

import gc

import numpy as np
import pytest

from micrograd_mnist import Value, demos, moons, nn, walkthrough
from micrograd_mnist.graph import building


@pytest.fixture(autouse=True)
def collector_on():
    """Every test starts with the collector on, and leaves it on whatever happens."""
    gc.enable()
    yield
    gc.enable()


def recording(monkeypatch, module, name: str, seen: list[bool], fail_at: int | None = None):
    """Replace module.name by a wrapper that records gc.isenabled() at each call (and raises at call `fail_at`)."""
    original = getattr(module, name)

    def wrapper(*args, **kwargs):
        seen.append(gc.isenabled())
        if fail_at is not None and len(seen) == fail_at:
            raise RuntimeError("a step failed")
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, wrapper)


def test_moons_training_steps_run_with_the_collector_paused_and_it_is_back_on_after(monkeypatch):
    seen: list[bool] = []
    recording(monkeypatch, moons, "step", seen)
    moons.train(steps=3, log=lambda line: None)
    assert seen == [False, False, False]
    assert gc.isenabled()


def test_the_collector_is_back_on_when_an_exception_leaves_training(monkeypatch):
    seen: list[bool] = []
    recording(monkeypatch, moons, "step", seen, fail_at=2)
    with pytest.raises(RuntimeError, match="a step failed"):
        moons.train(steps=5, log=lambda line: None)
    assert seen == [False, False]
    assert gc.isenabled()


def test_a_callers_gc_disable_is_not_turned_back_on(monkeypatch):
    seen: list[bool] = []
    recording(monkeypatch, moons, "step", seen)
    gc.disable()
    moons.train(steps=2, log=lambda line: None)
    root = Value(2.0) * Value(3.0)
    root.backward()
    walkthrough.frames(root)
    assert seen == [False, False]
    assert not gc.isenabled()


def test_building_nests_and_restores_what_it_found():
    with building():
        assert not gc.isenabled()
        with building():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the inner block found it off, so it leaves it off
    assert gc.isenabled()
    with pytest.raises(KeyError):
        with building():
            raise KeyError("x")
    assert gc.isenabled()


def test_backward_pauses_and_restores():
    seen = []
    x = Value(3.0)
    y = x * x
    original = y.op

    def vjp(xp, g, out, a, b):
        seen.append(gc.isenabled())
        return original.vjp[0](xp, g, out, a, b)

    y.op = original._replace(vjp=(vjp, vjp))
    y.backward()
    assert seen == [False, False] and x.grad == 6.0
    assert gc.isenabled()


def test_the_walk_through_runs_paused_but_never_leaves_the_collector_off_between_steps(monkeypatch):
    seen: list[bool] = []
    original = walkthrough.steps

    def steps(root):
        for step in original(root):
            seen.append(gc.isenabled())
            yield step

    monkeypatch.setattr(walkthrough, "steps", steps)
    _, frames = walkthrough.frames(demos.single_neuron())
    assert len(seen) == len(frames) > 0 and not any(seen)
    assert gc.isenabled()
    # the step generator itself changes nothing: a caller iterating it keeps its collector as it was
    from micrograd_mnist.backprop import steps as plain_steps

    assert all(gc.isenabled() for _ in plain_steps(demos.single_neuron()))


def test_the_3b1b_scalar_mirror_is_built_paused(monkeypatch):
    seen: list[bool] = []
    recording(monkeypatch, demos.scalar, "cross_entropy", seen)
    model = nn.MLP([784, 16, 16, 10], "sigmoid", rng=np.random.default_rng(0))
    demo = demos.three_b1b_digit(model, np.zeros(784), 3)
    loss = demo.scalar_loss()
    assert seen == [False] and loss.label == "L"
    assert gc.isenabled()
