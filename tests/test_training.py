"""The MNIST training loop on tiny synthetic data: it learns, it is deterministic, it stops on NaN, it resumes."""

from __future__ import annotations

import json
import math
import os
import signal
import warnings
from pathlib import Path

import numpy as np
import pytest

from micrograd_mnist import checkpoint, optim, training
from micrograd_mnist.data import MNIST
from micrograd_mnist.training import Config, Diverged, train

N_TRAIN, N_TEST = 6000, 500  # the fixed split holds out 5000 for validation: 1000 left to train on
BATCH = 50
STEPS = (N_TRAIN - training.VAL_SIZE) // BATCH  # 20 batches per epoch


def synthetic(n_train: int = N_TRAIN, n_test: int = N_TEST, seed: int = 0, noise: float = 0.8) -> MNIST:
    """Ten classes, each a fixed random 784-pixel prototype plus Gaussian noise, clipped to [0, 1]."""
    rng = np.random.default_rng(seed)
    prototypes = rng.random((10, 784), dtype=np.float32)

    def sample(n: int) -> tuple[np.ndarray, np.ndarray]:
        labels = rng.integers(0, 10, n)
        pixels = prototypes[labels] + noise * rng.standard_normal((n, 784), dtype=np.float32)
        return np.clip(pixels, 0, 1).astype(np.float32), labels.astype(np.int64)

    return MNIST(*sample(n_train), *sample(n_test))


@pytest.fixture(scope="module")
def dataset() -> MNIST:
    return synthetic()


def fresh(data: MNIST) -> MNIST:
    """A private copy, for tests that change pixels."""
    return MNIST(*(a.copy() for a in data))


def tiny(**overrides) -> Config:
    settings = dict(sizes=[784, 16, 10], activation="relu", epochs=3, batch_size=BATCH, lr=0.05, seed=0)
    return Config(**(settings | overrides))


def run(cfg: Config, data: MNIST, out: Path, **kwargs) -> dict:
    lines: list[str] = []
    kwargs.setdefault("log", lines.append)
    return train(cfg, data, out, progress=False, **kwargs)


def weights(path: Path) -> dict[str, np.ndarray]:
    return checkpoint.load(path)[0].state_dict()


def assert_same_weights(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def forward_by_hand(state: dict[str, np.ndarray], images: np.ndarray) -> np.ndarray:
    """784-16-10 ReLU network written out in NumPy, independent of the Tensor engine."""
    hidden = np.maximum(images @ state["0.weight"] + state["0.bias"], 0)
    return hidden @ state["2.weight"] + state["2.bias"]


# ---------------------------------------------------------------------------------------------------------------
# Learning and metrics


def test_tiny_network_learns_the_synthetic_classes(dataset, tmp_path):
    lines: list[str] = []
    metrics = train(tiny(), dataset, tmp_path, log=lines.append, progress=False)
    assert metrics["test_accuracy"] > 0.9  # chance is 0.1
    assert metrics["val_accuracy"][-1] > 0.9
    assert metrics["train_loss"][0] > metrics["train_loss"][-1]
    assert metrics["train_loss"][-1] < 0.5 < math.log(10)  # log 10: the loss of a uniform guess
    assert [line.split()[:2] for line in lines] == [["epoch", "1/3"], ["epoch", "2/3"], ["epoch", "3/3"]]


def test_outputs_on_disk(dataset, tmp_path):
    metrics = run(tiny(epochs=2), dataset, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.npz", "metrics.json", "model.npz"]
    on_disk = json.loads((tmp_path / "metrics.json").read_text())
    assert on_disk == metrics
    assert on_disk["epochs"] == 2
    for key in ("train_loss", "val_accuracy", "epoch_seconds"):
        assert len(on_disk[key]) == 2, key
    assert all(s > 0 for s in on_disk["epoch_seconds"])
    assert all(0 <= a <= 1 for a in on_disk["val_accuracy"])
    assert on_disk["parameters"] == 784 * 16 + 16 + 16 * 10 + 10
    assert on_disk["config"]["sizes"] == [784, 16, 10] and on_disk["config"]["batch_size"] == BATCH
    assert len(on_disk["per_class_accuracy"]) == 10

    # the reported test accuracy is that of the saved weights, recomputed here without the package's forward pass
    model, meta, optimizer_state = checkpoint.load(tmp_path / "model.npz")
    assert "resume" not in meta and optimizer_state == {}
    assert meta["sizes"] == [784, 16, 10] and meta["activation"] == "relu"
    predicted = forward_by_hand(model.state_dict(), dataset.test_images).argmax(axis=1)
    assert on_disk["test_accuracy"] == pytest.approx((predicted == dataset.test_labels).mean(), abs=2 / N_TEST)
    for digit in range(10):
        mine = predicted[dataset.test_labels == digit] == digit
        assert on_disk["per_class_accuracy"][digit] == pytest.approx(mine.mean(), abs=2 / mine.size)

    # the last epoch's checkpoint holds the same weights, and says training is complete
    _, ckpt_meta, ckpt_optim = checkpoint.load(tmp_path / "checkpoint.npz")
    assert ckpt_meta["resume"]["epoch"] == 2 and ckpt_meta["resume"]["step"] == 0
    assert ckpt_optim  # SGD with momentum: buffers to resume with
    assert_same_weights(weights(tmp_path / "checkpoint.npz"), model.state_dict())


def test_checkpoint_is_written_after_every_epoch(dataset, tmp_path):
    seen: list[tuple[int, int]] = []

    def log(line: str) -> None:
        state = checkpoint.load(tmp_path / "checkpoint.npz")[1]["resume"]
        seen.append((state["epoch"], len(state["metrics"]["train_loss"])))

    train(tiny(epochs=3), dataset, tmp_path, log=log, progress=False)
    assert seen == [(1, 1), (2, 2), (3, 3)]


# ---------------------------------------------------------------------------------------------------------------
# Determinism


def test_same_seed_gives_bit_identical_runs(dataset, tmp_path):
    a = run(tiny(seed=3), dataset, tmp_path / "a")
    b = run(tiny(seed=3), dataset, tmp_path / "b")
    for key in ("train_loss", "val_accuracy", "test_accuracy", "per_class_accuracy"):
        assert a[key] == b[key], key
    assert_same_weights(weights(tmp_path / "a" / "model.npz"), weights(tmp_path / "b" / "model.npz"))


def test_different_seed_gives_different_weights(dataset, tmp_path):
    a = run(tiny(seed=1, epochs=1), dataset, tmp_path / "a")
    b = run(tiny(seed=2, epochs=1), dataset, tmp_path / "b")
    wa, wb = weights(tmp_path / "a" / "model.npz"), weights(tmp_path / "b" / "model.npz")
    assert all(not np.array_equal(wa[k], wb[k]) for k in wa)
    assert a["train_loss"] != b["train_loss"]


# ---------------------------------------------------------------------------------------------------------------
# NaN / inf stop


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("poison", [np.nan, np.inf])
def test_divergence_keeps_the_last_good_checkpoint(dataset, tmp_path, uninterrupted, poison):
    data = fresh(dataset)
    train_idx, _ = training.split(N_TRAIN)
    before: dict[str, bytes] = {}

    def log(line: str) -> None:
        if line.startswith("epoch  1/"):  # epoch 1 is done and saved: spoil one image that epoch 2 trains on
            before["checkpoint"] = (tmp_path / "checkpoint.npz").read_bytes()
            data.train_images[train_idx[len(train_idx) // 2], 100] = poison

    with pytest.raises(Diverged) as info:
        train(tiny(epochs=3), data, tmp_path, log=log, progress=False)
    message = str(info.value)
    assert "epoch 2" in message and "\n" not in message
    assert "checkpoint" in before, "epoch 1 should have finished"
    assert (tmp_path / "checkpoint.npz").read_bytes() == before["checkpoint"]
    assert not (tmp_path / "model.npz").exists() and not (tmp_path / "metrics.json").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.npz"]  # no temp files either

    # the kept checkpoint is a usable one: with clean data, resuming from it finishes like an unbroken run
    resumed = run(tiny(), dataset, tmp_path, resume=tmp_path / "checkpoint.npz")
    reference, reference_weights = uninterrupted["sgd"]
    assert resumed["train_loss"] == reference["train_loss"]
    assert resumed["test_accuracy"] == reference["test_accuracy"]
    assert_same_weights(weights(tmp_path / "model.npz"), reference_weights)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_divergence_in_the_first_epoch_writes_nothing(dataset, tmp_path):
    data = fresh(dataset)
    data.train_images[:] = np.nan
    with pytest.raises(Diverged, match=r"epoch 1, batch 1\b"):
        run(tiny(), data, tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_huge_learning_rate_diverges(dataset, tmp_path):
    with pytest.raises(Diverged, match="smaller --lr"):
        run(tiny(lr=1e30), dataset, tmp_path)
    assert not (tmp_path / "model.npz").exists()


# ---------------------------------------------------------------------------------------------------------------
# Ctrl-C and resume


def interrupt_at(monkeypatch, *calls: int) -> list[int]:
    """Make the loss computation raise KeyboardInterrupt on these (1-based) calls, as Ctrl-C would mid-batch."""
    real = training.F.cross_entropy
    counter = [0]

    def cross_entropy(logits, labels):
        counter[0] += 1
        if counter[0] in calls:
            raise KeyboardInterrupt
        return real(logits, labels)

    monkeypatch.setattr(training.F, "cross_entropy", cross_entropy)
    return counter


@pytest.fixture(scope="module")
def uninterrupted(dataset, tmp_path_factory) -> dict[str, tuple[dict, dict[str, np.ndarray]]]:
    runs = {}
    for optimizer, lr in (("sgd", 0.05), ("adam", 0.003)):
        out = tmp_path_factory.mktemp(f"uninterrupted-{optimizer}")
        metrics = run(tiny(optimizer=optimizer, lr=lr), dataset, out)
        runs[optimizer] = metrics, weights(out / "model.npz")
    return runs


@pytest.mark.parametrize("optimizer, lr", [("sgd", 0.05), ("adam", 0.003)])
@pytest.mark.parametrize("call", [1, 13, STEPS + 1, 2 * STEPS + 7])
def test_resume_after_ctrl_c_replays_the_uninterrupted_run(dataset, tmp_path, monkeypatch, uninterrupted,
                                                          optimizer, lr, call):
    cfg = tiny(optimizer=optimizer, lr=lr)
    interrupt_at(monkeypatch, call)
    lines: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        train(cfg, dataset, tmp_path, log=lines.append, progress=False)
    ckpt = tmp_path / "checkpoint.npz"
    assert ckpt.exists()
    assert not (tmp_path / "model.npz").exists()
    assert lines[-1].startswith("interrupted: saved") and "--resume" in lines[-1]

    # the checkpoint sits at the batch the interrupt hit: (call - 1) batches done in all
    epoch, step = divmod(call - 1, STEPS)
    state = checkpoint.load(ckpt)[1]["resume"]
    assert (state["epoch"], state["step"]) == (epoch, step)
    assert len(state["metrics"]["train_loss"]) == epoch

    monkeypatch.undo()
    # the checkpoint's own settings win over whatever Config is passed on resume
    lines.clear()
    resumed = train(tiny(seed=99, lr=0.5, epochs=7), dataset, tmp_path, resume=ckpt, log=lines.append, progress=False)
    assert lines[0].startswith(f"resuming at epoch {epoch + 1}, batch {step}")
    reference, reference_weights = uninterrupted[optimizer]
    for key in ("train_loss", "val_accuracy", "test_accuracy", "per_class_accuracy", "epochs"):
        assert resumed[key] == reference[key], key
    assert len(resumed["epoch_seconds"]) == 3
    assert_same_weights(weights(tmp_path / "model.npz"), reference_weights)


def test_interrupted_twice_still_replays_the_uninterrupted_run(dataset, tmp_path, monkeypatch, uninterrupted):
    ckpt = tmp_path / "checkpoint.npz"
    interrupt_at(monkeypatch, 5)
    with pytest.raises(KeyboardInterrupt):
        run(tiny(), dataset, tmp_path)
    interrupt_at(monkeypatch, STEPS + 3)  # counted from the resumed run's first batch
    with pytest.raises(KeyboardInterrupt):
        run(tiny(), dataset, tmp_path, resume=ckpt)
    state = checkpoint.load(ckpt)[1]["resume"]
    assert (state["epoch"], state["step"]) == divmod(4 + STEPS + 2, STEPS)
    monkeypatch.undo()
    resumed = run(tiny(), dataset, tmp_path, resume=ckpt)
    reference, reference_weights = uninterrupted["sgd"]
    assert resumed["train_loss"] == reference["train_loss"]
    assert resumed["val_accuracy"] == reference["val_accuracy"]
    assert_same_weights(weights(tmp_path / "model.npz"), reference_weights)


def test_resume_from_a_finished_checkpoint_trains_no_further(dataset, tmp_path, uninterrupted):
    first = run(tiny(), dataset, tmp_path)
    again = run(tiny(), dataset, tmp_path / "again", resume=tmp_path / "checkpoint.npz")
    assert again["train_loss"] == first["train_loss"] and again["test_accuracy"] == first["test_accuracy"]
    assert_same_weights(weights(tmp_path / "again" / "model.npz"), weights(tmp_path / "model.npz"))


def test_resume_from_final_weights_is_refused(dataset, tmp_path):
    run(tiny(epochs=1), dataset, tmp_path)
    with pytest.raises(checkpoint.CheckpointError, match="checkpoint.npz") as info:
        run(tiny(epochs=1), dataset, tmp_path / "again", resume=tmp_path / "model.npz")
    assert "\n" not in str(info.value)
    assert not (tmp_path / "again" / "model.npz").exists()


def test_resume_from_a_missing_file_is_a_checkpoint_error(dataset, tmp_path):
    with pytest.raises(checkpoint.CheckpointError, match="no checkpoint at .*nope.npz: train one with"):
        run(tiny(), dataset, tmp_path, resume=tmp_path / "nope.npz")


# ---------------------------------------------------------------------------------------------------------------
# Pieces


def test_split_is_fixed_disjoint_and_complete():
    train_idx, val_idx = training.split(N_TRAIN)
    assert len(val_idx) == training.VAL_SIZE == 5000 and len(train_idx) == N_TRAIN - 5000
    assert np.intersect1d(train_idx, val_idx).size == 0
    np.testing.assert_array_equal(np.sort(np.concatenate([train_idx, val_idx])), np.arange(N_TRAIN))
    assert np.all(np.diff(train_idx) > 0) and np.all(np.diff(val_idx) > 0)
    again_train, again_val = training.split(N_TRAIN)
    np.testing.assert_array_equal(again_train, train_idx)
    np.testing.assert_array_equal(again_val, val_idx)
    small_train, small_val = training.split(10, val_size=3)
    assert len(small_val) == 3 and sorted([*small_train, *small_val]) == list(range(10))
    # a random hold-out, not simply the first or last images
    assert not np.array_equal(val_idx, np.arange(5000)) and not np.array_equal(val_idx, np.arange(1000, 6000))


def test_config_resolved_fills_in_the_preset():
    seed = Config().resolved()
    assert (seed.sizes, seed.activation, seed.epochs, seed.batch_size) == ([784, 128, 64, 10], "relu", 10, 128)
    three = Config(preset="3b1b", lr=0.01).resolved()
    assert (three.sizes, three.activation, three.epochs, three.batch_size) == ([784, 16, 16, 10], "sigmoid", 20, 64)
    assert three.lr == 0.01
    assert Config(optimizer="adam").resolved().lr == 1e-3
    custom = tiny().resolved()
    assert custom.sizes == [784, 16, 10] and custom.epochs == 3 and custom.weight_decay == 0.0


# ---------------------------------------------------------------------------------------------------------------
# The learning rate


def test_the_learning_rate_follows_the_cosine_schedule_epoch_by_epoch(dataset, tmp_path, monkeypatch):
    used: list[float] = []  # the lr each real optimizer step ran with
    real_step = optim.SGD.step

    def step(self) -> None:
        used.append(self.lr)
        real_step(self)

    monkeypatch.setattr(optim.SGD, "step", step)
    epochs, peak = 4, 0.05
    run(tiny(epochs=epochs, lr=peak), dataset, tmp_path)
    assert len(used) == epochs * STEPS
    for e in range(epochs):  # constant within an epoch, 0.5·lr·(1 + cos(π·e/E)) from one epoch to the next
        expected = 0.5 * peak * (1 + math.cos(math.pi * e / epochs))
        assert used[e * STEPS:(e + 1) * STEPS] == pytest.approx([expected] * STEPS, rel=1e-12), e
    assert used[0] == peak and used[-1] == pytest.approx(peak * (2 - math.sqrt(2)) / 4)  # 0.0073, not 0


# ---------------------------------------------------------------------------------------------------------------
# A real Ctrl-C (SIGINT) is honoured at the next batch boundary, wherever it lands


def test_sigint_during_the_update_is_deferred_to_the_batch_boundary(dataset, tmp_path, monkeypatch):
    handler_before = signal.getsignal(signal.SIGINT)
    reference = run(tiny(epochs=2), dataset, tmp_path / "whole")
    assert signal.getsignal(signal.SIGINT) is handler_before  # restored after a normal return

    real_step, calls, continued = optim.SGD.step, [0], []

    def step(self):
        real_step(self)
        calls[0] += 1
        if calls[0] == 5:
            os.kill(os.getpid(), signal.SIGINT)  # a real Ctrl-C, delivered while the update is under way
            continued.append(calls[0])  # the handler only noted it: execution carries on

    monkeypatch.setattr(optim.SGD, "step", step)
    out = tmp_path / "broken"
    with pytest.raises(KeyboardInterrupt):
        run(tiny(epochs=2), dataset, out)
    assert signal.getsignal(signal.SIGINT) is handler_before  # restored after raising
    assert continued == [5]
    assert calls[0] == 5  # no batch started after the interrupt
    ckpt = out / "checkpoint.npz"
    assert ckpt.exists() and not (out / "model.npz").exists()
    state = checkpoint.load(ckpt)[1]["resume"]
    assert (state["epoch"], state["step"]) == (0, 5)  # exactly the five completed batches
    assert state["metrics"]["train_loss"] == []

    monkeypatch.undo()
    resumed = run(tiny(epochs=2), dataset, out, resume=ckpt)
    assert signal.getsignal(signal.SIGINT) is handler_before
    for key in ("train_loss", "val_accuracy", "test_accuracy"):
        assert resumed[key] == reference[key], key
    assert_same_weights(weights(out / "model.npz"), weights(tmp_path / "whole" / "model.npz"))


def test_sigint_during_validation_is_not_lost(dataset, tmp_path, monkeypatch):
    handler_before = signal.getsignal(signal.SIGINT)
    reference = run(tiny(epochs=2), dataset, tmp_path / "whole")

    real_accuracy, sent = training.accuracy, []

    def accuracy(*args):
        if not sent:
            sent.append(True)
            os.kill(os.getpid(), signal.SIGINT)  # a real Ctrl-C, while epoch 1 is being validated
        return real_accuracy(*args)

    out = tmp_path / "broken"
    with monkeypatch.context() as patch:
        patch.setattr(training, "accuracy", accuracy)  # the loop calls training's name for it
        with pytest.raises(KeyboardInterrupt):
            run(tiny(epochs=2), dataset, out)
    assert sent == [True]
    assert signal.getsignal(signal.SIGINT) is handler_before
    ckpt = out / "checkpoint.npz"
    assert ckpt.exists() and not (out / "model.npz").exists()
    state = checkpoint.load(ckpt)[1]["resume"]
    assert (state["epoch"], state["step"]) == (1, 0)  # stopped before epoch 2's first batch
    assert len(state["metrics"]["val_accuracy"]) == 1

    resumed = run(tiny(epochs=2), dataset, out, resume=ckpt)
    for key in ("train_loss", "val_accuracy", "test_accuracy", "per_class_accuracy"):
        assert resumed[key] == reference[key], key
    assert_same_weights(weights(out / "model.npz"), weights(tmp_path / "whole" / "model.npz"))


def test_divergence_is_silent_and_says_nothing_was_saved(dataset, tmp_path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(Diverged, match="nothing was saved"):
            run(tiny(lr=1e30), dataset, tmp_path / "out")
    assert not [w for w in caught if issubclass(w.category, RuntimeWarning)], [str(w.message) for w in caught]
    assert not (tmp_path / "out" / "checkpoint.npz").exists()


def test_divergence_after_force_does_not_call_the_earlier_runs_checkpoint_its_own(dataset, tmp_path):
    out = tmp_path / "out"
    run(tiny(epochs=1), dataset, out)
    before = (out / "checkpoint.npz").read_bytes()
    with pytest.raises(Diverged, match=r"nothing of this run was saved \(.*checkpoint.npz is the earlier run's\)"):
        run(tiny(lr=1e30), dataset, out, force=True)
    assert (out / "checkpoint.npz").read_bytes() == before  # untouched, and not called this run's last good state


def test_divergence_after_resuming_into_another_folder_says_nothing_was_saved(dataset, tmp_path, monkeypatch):
    real, calls = training.F.cross_entropy, [0]

    def interrupted(logits, labels):
        calls[0] += 1
        if calls[0] == STEPS + 2:  # epoch 2, batch 2
            raise KeyboardInterrupt
        return real(logits, labels)

    monkeypatch.setattr(training.F, "cross_entropy", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run(tiny(epochs=2), dataset, tmp_path / "a")
    monkeypatch.setattr(training.F, "cross_entropy", lambda logits, labels: real(logits, labels) * float("nan"))
    with pytest.raises(Diverged, match="; stopped, nothing was saved"):  # a/checkpoint.npz is not in b
        run(tiny(epochs=2), dataset, tmp_path / "b", resume=tmp_path / "a" / "checkpoint.npz")
