"""Regression tests, one per fixed bug: Ctrl-C during an update, one-line load errors, non-wrapping centring,
transparent PNGs, damaged resume states, the CLI's wording, and the fused linear op's gradients."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest
from conftest import error_lines
from PIL import Image, ImageDraw

from micrograd_mnist import checkpoint, cli, data, ops, optim
from micrograd_mnist.checkpoint import CheckpointError
from micrograd_mnist.images import load_digit
from micrograd_mnist.nn import Linear
from micrograd_mnist.tensor import Tensor
from micrograd_mnist.training import Config, train

BATCH = 50  # 20 batches per epoch


def tiny(**overrides) -> Config:
    settings = dict(sizes=[784, 16, 10], activation="relu", epochs=2, batch_size=BATCH, lr=0.05, seed=0)
    return Config(**(settings | overrides))


@pytest.fixture(scope="module")
def one_epoch(tmp_path_factory, mnist) -> Path:
    """A real OUT/checkpoint.npz after one epoch of training."""
    out = tmp_path_factory.mktemp("one-epoch")
    train(tiny(epochs=1), mnist, out, log=lambda line: None, progress=False)
    return out / "checkpoint.npz"


def run(cfg: Config, mnist: data.MNIST, out: Path, **kwargs) -> dict:
    return train(cfg, mnist, out, log=lambda line: None, progress=False, **kwargs)


def weights(path: Path) -> dict[str, np.ndarray]:
    return checkpoint.load(path)[0].state_dict()


def arrays_of(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


def digit_png(path: Path) -> Path:
    image = Image.new("L", (100, 100), 255)
    ImageDraw.Draw(image).ellipse((25, 15, 75, 85), outline=0, width=8)
    image.save(path)
    return path


# ---------------------------------------------------------------------------------------------------------------
# 1. A real SIGINT during opt.step() is honoured at the next batch boundary: the checkpoint is never torn


def test_sigint_during_the_update_is_deferred_to_the_batch_boundary(mnist, tmp_path, monkeypatch):
    handler_before = signal.getsignal(signal.SIGINT)
    reference = run(tiny(), mnist, tmp_path / "whole")
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
        run(tiny(), mnist, out)
    assert signal.getsignal(signal.SIGINT) is handler_before  # restored after raising
    assert continued == [5]
    assert calls[0] == 5  # no batch started after the interrupt
    ckpt = out / "checkpoint.npz"
    assert ckpt.exists() and not (out / "model.npz").exists()
    state = checkpoint.load(ckpt)[1]["resume"]
    assert (state["epoch"], state["step"]) == (0, 5)  # exactly the five completed batches
    assert state["metrics"]["train_loss"] == []

    monkeypatch.undo()
    resumed = run(tiny(), mnist, out, resume=ckpt)
    assert signal.getsignal(signal.SIGINT) is handler_before
    for key in ("train_loss", "val_accuracy", "test_accuracy"):
        assert resumed[key] == reference[key], key
    whole, again = weights(tmp_path / "whole" / "model.npz"), weights(out / "model.npz")
    assert whole.keys() == again.keys()
    for name in whole:
        np.testing.assert_array_equal(again[name], whole[name], err_msg=name)


# ---------------------------------------------------------------------------------------------------------------
# 2. Parameter names that don't match the architecture: a one-line CheckpointError naming the missing one


def test_missing_parameter_is_a_one_line_error_naming_it(one_epoch, tmp_path, capsys):
    arrays = arrays_of(one_epoch)
    del arrays["param/0.bias"]
    broken = tmp_path / "no-bias.npz"
    np.savez(broken, **arrays)

    with pytest.raises(CheckpointError) as info:
        checkpoint.load(broken)
    message = str(info.value)
    assert "\n" not in message and "0.bias" in message and "no-bias.npz" in message

    assert cli.main(["predict", str(broken), str(digit_png(tmp_path / "zero.png"))]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1 and "Traceback" not in err, lines
    assert lines[0].startswith("micrograd-mnist predict: ") and "0.bias" in lines[0]


# ---------------------------------------------------------------------------------------------------------------
# 3. Centring by mass shifts the picture without wrapping ink round the edges


def ink_band(profile: np.ndarray) -> np.ndarray:
    where = np.nonzero(profile > 0.1)[0]
    assert where.size, "no ink at all"
    assert np.array_equal(where, np.arange(where.min(), where.max() + 1)), f"ink split into pieces: {where}"
    return where


def test_centring_does_not_wrap_ink_round_the_edges(tmp_path):
    image = Image.new("L", (140, 140), 255)
    draw = ImageDraw.Draw(image)
    draw.rectangle([20, 20, 119, 39], fill=0)  # a thick bar along the top ...
    draw.rectangle([20, 20, 22, 119], fill=0)  # ... and a thin stem down the left: the mass sits top-left
    image.save(tmp_path / "gamma.png")
    pixels = load_digit(tmp_path / "gamma.png").reshape(28, 28)
    rows, cols = ink_band(pixels.max(axis=1)), ink_band(pixels.max(axis=0))
    assert 15 <= rows.size <= 20 and 15 <= cols.size <= 20, (rows, cols)
    # the shift moves the digit down and right, towards the centre; the edges it left behind stay black
    assert rows.min() > 0 and cols.min() > 0
    assert pixels[0].max() < 0.01 and pixels[:, 0].max() < 0.01


# ---------------------------------------------------------------------------------------------------------------
# 4. Black ink on a transparent canvas is a digit, not a blank (transparent pixels are black underneath)


def test_black_ink_on_a_transparent_background(tmp_path):
    clear = Image.new("RGBA", (100, 100), (0, 0, 0, 0))
    ImageDraw.Draw(clear).ellipse((25, 15, 75, 85), outline=(0, 0, 0, 255), width=8)
    clear.save(tmp_path / "clear.png")
    with Image.open(tmp_path / "clear.png") as check:
        assert check.mode == "RGBA"

    pixels = load_digit(tmp_path / "clear.png").reshape(28, 28)
    assert pixels.max() > 0.5
    assert max(pixels[0, 0], pixels[0, -1], pixels[-1, 0], pixels[-1, -1]) < 0.01
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    assert border.max() < 0.01

    opaque = load_digit(digit_png(tmp_path / "white.png")).reshape(28, 28)
    assert np.corrcoef(pixels.ravel(), opaque.ravel())[0, 1] > 0.9


# ---------------------------------------------------------------------------------------------------------------
# 5. A damaged training state on --resume is a CheckpointError (not ValueError/TypeError), and exit 2 in the CLI


def wrong_buffer_shape(arrays: dict[str, np.ndarray]) -> None:
    assert "optim/buffers.0" in arrays  # SGD with momentum keeps one buffer per parameter
    arrays["optim/buffers.0"] = np.zeros((3, 3), dtype=np.float32)


def unknown_config_key(arrays: dict[str, np.ndarray]) -> None:
    meta = json.loads(str(arrays["meta"]))
    assert "resume" in meta and "config" in meta
    meta["config"]["warp_speed"] = 9
    arrays["meta"] = np.array(json.dumps(meta))


@pytest.mark.parametrize("damage", [wrong_buffer_shape, unknown_config_key])
def test_damaged_training_state_is_a_checkpoint_error(one_epoch, mnist, data_dir, tmp_path, capsys, damage):
    arrays = arrays_of(one_epoch)
    damage(arrays)
    broken = tmp_path / "ck.npz"
    np.savez(broken, **arrays)
    with pytest.raises(CheckpointError, match=r"buffers\.0|warp_speed"):  # the loader's schema says which
        checkpoint.load(broken)

    with pytest.raises(CheckpointError) as info:
        run(tiny(), mnist, tmp_path / "lib", resume=broken)
    assert type(info.value) is CheckpointError and "\n" not in str(info.value)
    assert not (tmp_path / "lib" / "model.npz").exists()

    out = tmp_path / "cli"
    assert cli.main(["train", "--resume", str(broken), "--data-dir", str(data_dir), "--out", str(out)]) == 2
    stdout, err = capsys.readouterr()
    lines = error_lines(err, "train")
    assert len(lines) == 1, lines
    assert "ck.npz" in lines[0]
    assert not (out / "model.npz").exists()


# ---------------------------------------------------------------------------------------------------------------
# 6. The CLI's wording: "1 epoch", "2 epochs"; type errors say what was expected


@pytest.mark.parametrize("epochs, words", [(1, "1 epoch,"), (2, "2 epochs,")])
def test_train_summary_counts_epochs_in_good_english(capsys, data_dir, tmp_path, epochs, words):
    argv = ["train", "--data-dir", str(data_dir), "--out", str(tmp_path), "--preset", "3b1b",
            "--batch-size", "100", "--epochs", str(epochs), "--quiet"]
    assert cli.main(argv) == 0
    summary = capsys.readouterr().out.splitlines()[-1]
    assert summary.startswith("test accuracy"), summary
    assert words in summary, summary
    assert "1 epochs" not in summary


# ---------------------------------------------------------------------------------------------------------------
# 7. The fused linear op: x @ W + b forward, and the seed texts' backprop table for its gradients


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
