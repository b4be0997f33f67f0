"""Regression tests for the fixes made after a code review, one focused test per behaviour:
expression aliases and redefinitions, pow's domain, the backprop and train commands, drawing big
graphs, Ctrl-C during validation, silent divergence, blank and huge images, forged checkpoints,
atomic writes, offline data loading, the Tensor API's edges and the optimizers' settings."""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import warnings
from pathlib import Path

import graphviz
import numpy as np
import pytest
from conftest import error_lines
from PIL import Image

import viz
from micrograd_mnist import Tensor, Value, checkpoint, cli, data, nn, optim, training
from micrograd_mnist.checkpoint import CheckpointError
from micrograd_mnist.expr import ExprError, graph
from micrograd_mnist.files import atomic_write
from micrograd_mnist.images import ImageError, load_digit
from micrograd_mnist.moons import loss as moons_loss
from micrograd_mnist.moons import make_model, make_moons
from micrograd_mnist.nn import MLP
from micrograd_mnist.nn import functional as F
from micrograd_mnist.training import Config, Diverged, train

# ---------------------------------------------------------------------------------------------------------------
# Shared helpers and fixtures


def tiny(**overrides) -> Config:
    settings = dict(sizes=[784, 16, 10], activation="relu", epochs=2, batch_size=50, lr=0.05, seed=0)
    return Config(**(settings | overrides))


def run(cfg: Config, mnist: data.MNIST, out: Path, **kwargs) -> dict:
    return train(cfg, mnist, out, log=lambda line: None, progress=False, **kwargs)


def one_error(capsys, argv: list[str], code: int = 2) -> str:
    """Run the CLI expecting exit `code` and exactly one line on stderr; that line."""
    assert cli.main(argv) == code
    lines = error_lines(capsys.readouterr().err, argv[0])
    assert len(lines) == 1, lines
    return lines[0]


def digits_checkpoint(path: Path, sizes: list[int]) -> Path:
    checkpoint.save(path, MLP(sizes, rng=np.random.default_rng(0)), {})
    return path


def dot_parts(source: str) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """A graphviz source's declared nodes (name -> label) and its edges (tail, head), names unquoted."""
    name = r'("[^"]*"|\w+)'
    label = r'(?:"((?:[^"\\]|\\.)*)"|(\w+))'  # quoted, or a bare word such as tanh
    nodes = {m[1].strip('"'): m[2] if m[2] is not None else m[3]
             for m in re.finditer(rf"^\t{name} \[label={label}", source, re.M)}
    edges = [(m[1].strip('"'), m[2].strip('"')) for m in re.finditer(rf"^\t{name} -> {name}", source, re.M)]
    return nodes, edges


# ---------------------------------------------------------------------------------------------------------------
# 1. expr.graph: aliases, redefinitions, character columns


def test_expr_bare_name_assignment_aliases_the_node():
    out, names = graph("a = b; c = a*b", b=3.0)
    assert names["a"] is names["b"]  # one node, two names
    out.backward()
    assert out.data == 9.0
    assert names["b"].grad == 6.0  # d(b*b)/db, both paths reaching the same leaf


@pytest.mark.parametrize("source, values", [
    ("y = w*x; y = y + 1", {"w": 2.0, "x": 3.0}),
    ("b = 2*b", {"b": 1.0}),  # a name given a value with --set is defined too
])
def test_expr_redefining_a_name_is_refused(source, values):
    with pytest.raises(ExprError, match="already defined"):
        graph(source, **values)


def test_expr_syntax_error_column_counts_characters_not_bytes():
    with pytest.raises(ExprError) as info:
        graph("ŷŷŷ + $")
    assert "at column 7:" in str(info.value)
    assert "ŷŷŷ + ⟶$" in str(info.value)


# ---------------------------------------------------------------------------------------------------------------
# 2. ops.pow: the real domain, and x**0 at x = 0


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


# ---------------------------------------------------------------------------------------------------------------
# 3. The backprop command


@pytest.mark.parametrize("expr", ["log(x)", "x**0.5"])
def test_backprop_undefined_at_the_given_values_is_one_line(capsys, expr):
    line = one_error(capsys, ["backprop", "--expr", expr, "--set", "x=0"])
    assert "at these values" in line


def test_backprop_repeated_set_options_all_count(capsys):
    assert cli.main(["backprop", "--expr", "x*y", "--set", "x=1", "--set", "y=2", "--all"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert "x = 1.0000" in out and "y = 2.0000" in out
    assert "dL/dx += " in out and "dL/dy += " in out


def test_backprop_needs_a_demo_or_an_expression(capsys):
    assert "give exactly one of" in one_error(capsys, ["backprop"])


def test_backprop_skips_gradient_lines_into_plain_constants(capsys):
    assert cli.main(["backprop", "single-neuron", "--all"]) == 0
    out = capsys.readouterr().out
    for leaf in ("w", "x", "b", "y"):  # labelled leaves keep their lines
        assert f"dL/d{leaf} += " in out, leaf

    assert cli.main(["backprop", "layer-backprop", "--all"]) == 0  # loss (ŷ − 1.0)**2: 1.0 is a plain constant
    lines = [line.strip() for line in capsys.readouterr().out.splitlines()]
    assert "1 = 1.0000" in lines  # the constant is in the graph ...
    assert not [line for line in lines if line.startswith(("dL/d(1)", "dL/d1 +="))]  # ... but gets no line
    for leaf in ("x0", "x1", "W0[0,0]", "b4[0]"):  # indexed names read plainly: dL/dW0[0,0]
        assert any(line.startswith(f"dL/d{leaf} += ") for line in lines), leaf


# ---------------------------------------------------------------------------------------------------------------
# 4. viz.draw on big graphs, and viz.pipe's errors


def test_folded_drawing_declares_every_node_it_draws_an_edge_to():
    a, b, c = Value(1.0, "a"), Value(2.0, "b"), Value(3.0, "c")
    x = (a + b) + c
    for _ in range(60):
        x = x.tanh()
    nodes, edges = dot_parts(viz.draw(x, max_nodes=20).source)
    assert edges
    undeclared = {end for edge in edges for end in edge} - set(nodes)
    assert not undeclared
    raw_ids = [label for label in nodes.values() if re.fullmatch(r"\d+(op|more)?", label)]
    assert not raw_ids
    assert "{ c | data 3.0000 | grad 0.0000 }" in nodes.values()


def test_moons_loss_graph_has_one_caption_line_about_sums_and_renders():
    X, y = make_moons()
    total, _ = moons_loss(make_model(), X, y)
    dot = viz.draw(total)
    about_sums = [line for line in dot.source.splitlines() if "drawn as one Σ node" in line]
    assert len(about_sums) == 1, about_sums
    assert "sums are drawn as one Σ node each" in about_sums[0]
    svg = viz.pipe(dot, "svg")
    assert svg.lstrip().startswith(b"<?xml") and b"</svg>" in svg


def test_a_huge_unfoldable_graph_gives_the_stub():
    x = Value(0.5, "x")
    for _ in range(2000):
        x = x.tanh()
    source = viz.draw(x).source
    assert "too many to read" in source and "2,001 values" in source
    nodes, edges = dot_parts(source)
    assert list(nodes) == ["too-big"] and edges == []


def test_pipe_turns_graphviz_failures_into_draw_errors(monkeypatch):
    dot = viz.draw(Value(1.0, "a") * Value(2.0, "b"))

    def broken_pipe(*args, **kwargs):
        raise graphviz.CalledProcessError(1, ["dot"], stderr=b"Error: boom")

    monkeypatch.setattr(dot, "pipe", broken_pipe)
    with pytest.raises(viz.DrawError) as info:
        viz.pipe(dot, "svg")
    assert "Error: boom" in str(info.value) and "\n" not in str(info.value)


# ---------------------------------------------------------------------------------------------------------------
# 5. The train command: arguments and --resume


TINY_RUN = ["--epochs", "1", "--batch-size", "500"]


def train_once(capsys, data_dir: Path, out: Path) -> Path:
    assert cli.main(["train", "--data-dir", str(data_dir), "--out", str(out), *TINY_RUN, "--quiet"]) == 0
    capsys.readouterr()
    return out / "checkpoint.npz"


def test_train_resume_writes_beside_its_checkpoint(capsys, data_dir, tmp_path, monkeypatch):
    ckpt = train_once(capsys, data_dir, tmp_path / "run")
    (tmp_path / "run" / "model.npz").unlink()
    monkeypatch.chdir(tmp_path)
    assert cli.main(["train", "--data-dir", str(data_dir), "--resume", str(ckpt), "--quiet"]) == 0
    out, err = capsys.readouterr()
    assert error_lines(err, "train") == []
    assert (tmp_path / "run" / "model.npz").exists()
    assert str(tmp_path / "run" / "model.npz") in out
    assert not (tmp_path / "runs").exists()


def test_train_resume_refuses_a_changed_setting_but_accepts_the_same_ones(capsys, data_dir, tmp_path):
    ckpt = train_once(capsys, data_dir, tmp_path / "run")
    line = one_error(capsys, ["train", "--data-dir", str(data_dir), "--resume", str(ckpt), "--epochs", "7"])
    assert "drop --epochs 7" in line and "(it was 1)" in line

    argv = ["train", "--data-dir", str(data_dir), "--resume", str(ckpt), *TINY_RUN, "--quiet"]
    assert cli.main(argv) == 0
    assert error_lines(capsys.readouterr().err, "train") == []
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["config"]["batch_size"] == 500


# ---------------------------------------------------------------------------------------------------------------
# 6. A real Ctrl-C during validation is honoured at the next batch boundary


def test_sigint_during_validation_is_not_lost(mnist, tmp_path, monkeypatch):
    handler_before = signal.getsignal(signal.SIGINT)
    reference = run(tiny(), mnist, tmp_path / "whole")

    real_accuracy, sent = training.accuracy, []

    def accuracy(*args):
        if not sent:
            sent.append(True)
            os.kill(os.getpid(), signal.SIGINT)  # a real Ctrl-C, while epoch 1 is being validated
        return real_accuracy(*args)

    out = tmp_path / "broken"
    with monkeypatch.context() as patch:
        patch.setattr(training, "accuracy", accuracy)
        with pytest.raises(KeyboardInterrupt):
            run(tiny(), mnist, out)
    assert sent == [True]
    assert signal.getsignal(signal.SIGINT) is handler_before
    ckpt = out / "checkpoint.npz"
    assert ckpt.exists() and not (out / "model.npz").exists()
    state = checkpoint.load(ckpt)[1]["resume"]
    assert (state["epoch"], state["step"]) == (1, 0)  # stopped before epoch 2's first batch
    assert len(state["metrics"]["val_accuracy"]) == 1

    resumed = run(tiny(), mnist, out, resume=ckpt)
    for key in ("train_loss", "val_accuracy", "test_accuracy", "per_class_accuracy"):
        assert resumed[key] == reference[key], key
    whole, again = checkpoint.load(tmp_path / "whole" / "model.npz")[0], checkpoint.load(out / "model.npz")[0]
    for name, array in whole.state_dict().items():
        np.testing.assert_array_equal(again.state_dict()[name], array, err_msg=name)


# ---------------------------------------------------------------------------------------------------------------
# 7. Divergence: no RuntimeWarnings, and an honest message


def test_divergence_is_silent_and_says_nothing_was_saved(mnist, tmp_path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(Diverged) as info:
            run(tiny(lr=1e30), mnist, tmp_path / "out")
    assert not [w for w in caught if issubclass(w.category, RuntimeWarning)], [str(w.message) for w in caught]
    assert "nothing was saved" in str(info.value)
    assert not (tmp_path / "out" / "checkpoint.npz").exists()


# ---------------------------------------------------------------------------------------------------------------
# 8. predict and images: blank pictures, decompression bombs


@pytest.mark.parametrize("mode, colour", [("L", 255), ("RGBA", (0, 0, 0, 0))], ids=["white", "transparent"])
def test_predict_on_a_blank_image_is_one_line(capsys, tmp_path, mode, colour):
    ckpt = digits_checkpoint(tmp_path / "model.npz", [784, 10])
    image = tmp_path / "blank.png"
    Image.new(mode, (28, 28), colour).save(image)
    line = one_error(capsys, ["predict", str(ckpt), str(image)])
    assert "no ink" in line


def test_load_digit_refuses_a_blank_image(tmp_path):
    image = tmp_path / "white.png"
    Image.new("L", (40, 30), 255).save(image)
    with pytest.raises(ImageError, match="no ink"):
        load_digit(image)


def test_decompression_bomb_is_an_image_error(tmp_path, monkeypatch):
    image = tmp_path / "big.png"
    Image.new("L", (64, 64), 0).save(image)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 64x64 is past twice the limit: an error, not a warning
    with pytest.raises(ImageError) as info:
        load_digit(image)
    assert "can't read" in str(info.value) and "big.png" in str(info.value)


# ---------------------------------------------------------------------------------------------------------------
# 9. Checkpoints: forged headers, networks that don't take digits


def test_forged_header_is_refused_before_building_the_model(tmp_path, monkeypatch):
    real = digits_checkpoint(tmp_path / "real.npz", [784, 16, 10])
    with np.load(real, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    meta = json.loads(str(arrays["meta"]))
    meta["sizes"] = [784, 1000000, 10]
    arrays["meta"] = np.array(json.dumps(meta))
    forged = tmp_path / "forged.npz"
    np.savez(forged, **arrays)

    def no_model(*args, **kwargs):
        pytest.fail("checkpoint.load built the model from a forged header")

    monkeypatch.setattr(checkpoint, "MLP", no_model)
    with pytest.raises(CheckpointError) as info:
        checkpoint.load(forged)
    message = str(info.value)
    assert "[784, 1000000, 10]" in message and "do not match" in message
    assert "(1000000,)" in message or "(784, 1000000)" in message  # names the mismatched shape
    assert "\n" not in message


@pytest.mark.parametrize("command", ["evaluate", "predict"])
def test_evaluate_and_predict_need_a_digits_network(capsys, tmp_path, command):
    ckpt = digits_checkpoint(tmp_path / "small.npz", [4, 3])
    image = tmp_path / "digit.png"
    Image.new("L", (28, 28), 0).save(image)
    argv = [command, str(ckpt)] + ([str(image)] if command == "predict" else [])
    line = one_error(capsys, argv)
    assert "784 inputs" in line and "4-3" in line


# ---------------------------------------------------------------------------------------------------------------
# 10. atomic_write


def test_atomic_write_onto_a_folder_names_it_and_does_no_work(tmp_path):
    folder = tmp_path / "folder"
    folder.mkdir()
    calls = []
    with pytest.raises(IsADirectoryError) as info:
        atomic_write(folder, lambda f: calls.append(f))
    assert info.value.filename == str(folder)
    assert calls == []
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]


def test_atomic_write_makes_a_readable_file(tmp_path):
    path = tmp_path / "out.bin"
    atomic_write(path, lambda f: f.write(b"hello"))
    assert path.read_bytes() == b"hello"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


# ---------------------------------------------------------------------------------------------------------------
# 11. data.load(download=False) and the demo stay on this machine


def no_network_calls(monkeypatch):
    def fail(*args, **kwargs):
        pytest.fail("tried to fetch data")

    for name in ("_fetch", "_pip_download", "_fetch_into_cache"):
        monkeypatch.setattr(data, name, fail)


def test_load_without_download_refuses_an_empty_cache(monkeypatch):
    no_network_calls(monkeypatch)
    with pytest.raises(data.DataError, match="not on this machine"):
        data.load("mnist", download=False, log=lambda line: None)


def test_load_without_download_reads_a_full_cache(monkeypatch):
    no_network_calls(monkeypatch)
    cache = data.cache_dir("mnist")
    rng = np.random.default_rng(1)
    arrays = (rng.integers(0, 256, (7, 28, 28), dtype=np.uint8), rng.integers(0, 10, 7, dtype=np.uint8),
              rng.integers(0, 256, (3, 28, 28), dtype=np.uint8), rng.integers(0, 10, 3, dtype=np.uint8))
    for name, array in zip(data.FILES, arrays):
        data.write_idx(cache / name, array)
    notes = []
    mnist = data.load("mnist", download=False, log=notes.append)
    assert mnist.train_images.shape == (7, 784) and mnist.test_images.shape == (3, 784)
    np.testing.assert_array_equal(mnist.train_labels, arrays[1])
    assert notes and "cache" in notes[0]


def test_demo_single_neuron_never_fetches(capsys, tmp_path, monkeypatch):
    no_network_calls(monkeypatch)
    assert cli.main(["demo", "single-neuron", "--out", str(tmp_path / "pictures"), "--format", "dot"]) == 0
    out = capsys.readouterr().out
    assert "MNIST is not on this machine" in out
    assert (tmp_path / "pictures" / "single-neuron-784.dot").exists()


# ---------------------------------------------------------------------------------------------------------------
# 12. The Tensor API's edges


def test_backward_without_anything_requiring_grad_is_an_error():
    with pytest.raises(RuntimeError, match="requires_grad"):
        (Tensor([1.0, 2.0]) * 2).sum().backward()


def test_asarray_and_iteration():
    t = Tensor(np.arange(6, dtype=np.float32).reshape(3, 2))
    a = np.asarray(t)
    assert isinstance(a, np.ndarray) and a.dtype.kind == "f"
    np.testing.assert_array_equal(a, t.data)

    rows = list(t)
    assert len(rows) == 3 and all(isinstance(r, Tensor) and r.shape == (2,) for r in rows)
    for row, expected in zip(rows, t.data):
        np.testing.assert_array_equal(row.data, expected)
    with pytest.raises(TypeError):
        iter(Tensor(3.0))


@pytest.mark.parametrize("bad", [None, "3"])
def test_tensor_of_non_numbers_is_a_type_error(bad):
    with pytest.raises(TypeError):
        Tensor(bad)


def test_linear_takes_float64_data_in_its_own_dtype():
    layer = nn.Linear(4, 3, rng=np.random.default_rng(0))
    y = layer(Tensor(np.ones((2, 4), dtype=np.float64)))
    assert y.dtype == np.float32 and y.shape == (2, 3)


def test_cross_entropy_takes_label_tensors_and_refuses_empty_batches():
    logits = Tensor(np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32))
    labels = np.array([0, 2, 1, 2])
    as_ints = F.cross_entropy(logits, labels)
    as_tensor = F.cross_entropy(logits, Tensor(labels))
    assert as_tensor.item() == as_ints.item()
    with pytest.raises(ValueError, match="batch > 0"):
        F.cross_entropy(Tensor(np.zeros((0, 3), dtype=np.float32)), np.array([], dtype=np.int64))


def test_mse_refuses_silent_broadcasting_only():
    with pytest.raises(ValueError, match="shaped like pred"):
        F.mse(Tensor(np.zeros((6, 1))), np.zeros(6))
    pred, target = np.arange(12.0).reshape(3, 4), np.array([1.0, 2.0, 3.0, 4.0])
    assert F.mse(Tensor(pred), target).item() == pytest.approx(((pred - target) ** 2).mean())


def test_indexing_with_a_tensor_picks_rows():
    t = Tensor(np.arange(6, dtype=np.float32).reshape(3, 2))
    np.testing.assert_array_equal(t[Tensor([0, 2])].data, [[0.0, 1.0], [4.0, 5.0]])


# ---------------------------------------------------------------------------------------------------------------
# 13. Optimizers check their settings


@pytest.mark.parametrize("make", [
    lambda ps: optim.SGD(ps, lr=0.1, momentum=-0.1),
    lambda ps: optim.SGD(ps, lr=0.1, weight_decay=-1),
    lambda ps: optim.Adam(ps, betas=(1.0, 0.999)),
    lambda ps: optim.Adam(ps, eps=-1),
    lambda ps: optim.SGD(ps, lr=float("inf")),
], ids=["sgd-momentum", "sgd-weight-decay", "adam-beta1", "adam-eps", "sgd-lr-inf"])
def test_optimizers_refuse_bad_settings(make):
    params = [Tensor(np.zeros(2), requires_grad=True)]
    with pytest.raises(ValueError):
        make(params)
