"""Issue 9, outputs: no writer replaces what is not ours (a FIFO, a symlink, a socket, a device, one of the
command's own inputs), '-' is standard output where a stream makes sense, and plot/evaluate refuse a checkpoint
of another shape or a malformed metrics.json with one line."""

from __future__ import annotations

import errno
import json
import os
import socket
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from conftest import error_lines

from micrograd_mnist import checkpoint, cli, data, training
from micrograd_mnist.nn import MLP


def one_line(capsys, argv: list[str]) -> str:
    """Run the CLI expecting exit 2 and a single error line; the line."""
    assert cli.main(argv) == 2
    lines = error_lines(capsys.readouterr().err, argv[0])
    assert len(lines) == 1, lines
    return lines[0]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, data_dir) -> Path:
    """A small finished run: model.npz, checkpoint.npz, metrics.json."""
    out = tmp_path_factory.mktemp("run")
    from micrograd_mnist import data

    mnist = data.load("mnist", data_dir, log=lambda line: None)
    cfg = training.Config(sizes=[784, 16, 10], activation="relu", epochs=1, batch_size=500, lr=0.05)
    training.train(cfg, mnist, out, log=lambda line: None, progress=False)
    return out


def save_net(path: Path, sizes: list[int]) -> Path:
    checkpoint.save(path, MLP(sizes, "relu", rng=np.random.default_rng(0)), {})
    return path


# ---------------------------------------------------------------------------------------------------------------
# Things that are not regular files, made in tmp_path (never the real /dev/null)


def make_fifo(path: Path, tmp: Path) -> None:
    os.mkfifo(path)


def make_symlink(path: Path, tmp: Path) -> None:
    target = tmp / "precious.txt"
    target.write_text("keep me\n")
    path.symlink_to(target)


def make_socket(path: Path, tmp: Path) -> None:
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(path))  # the socket file stays after the socket object goes
    s.close()


def make_device(path: Path, tmp: Path) -> None:
    """A character device like /dev/null (1, 3), made as a new node in tmp_path; only root may."""
    try:
        os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("making a device node needs root")


KINDS = {"fifo": (make_fifo, stat.S_ISFIFO), "symlink": (make_symlink, stat.S_ISLNK),
         "socket": (make_socket, stat.S_ISSOCK), "device": (make_device, stat.S_ISCHR)}


def writers(tmp: Path, data_dir: Path, run_dir: Path) -> dict[str, tuple[list[str], Path]]:
    """Every kind of writer: its command line, with the path it writes (a file name ending as it needs)."""
    d, ckpt = str(data_dir), str(run_dir / "model.npz")
    return {
        "backprop --html": (["backprop", "single-neuron", "--html", "{p}"], tmp / "p.html"),
        "backprop --frames": (["backprop", "single-neuron", "--frames", str(tmp / "frames"), "--format", "dot"],
                              tmp / "frames" / "step-001.dot"),
        "evaluate --confusion": (["evaluate", ckpt, "--data-dir", d, "--confusion", "{p}"], tmp / "c.csv"),
        "plot --out": (["plot", "architecture", "--out", "{p}"], tmp / "p.svg"),
        "demo --out": (["demo", "single-neuron", "--out", str(tmp / "pics"), "--format", "dot"],
                       tmp / "pics" / "single-neuron.dot"),
        "train checkpoints": (["train", "--data-dir", d, "--out", str(tmp / "run"), "--epochs", "1",
                               "--batch-size", "500", "--quiet"], tmp / "run" / "checkpoint.npz"),
        "train model": (["train", "--data-dir", d, "--out", str(tmp / "run"), "--epochs", "1",
                         "--batch-size", "500", "--quiet"], tmp / "run" / "model.npz"),
    }


WRITERS = ["backprop --html", "backprop --frames", "evaluate --confusion", "plot --out", "demo --out",
           "train checkpoints", "train model"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("writer", WRITERS)
def test_no_writer_replaces_a_fifo_symlink_socket_or_device(capsys, tmp_path, data_dir, run_dir, writer, kind):
    argv, path = writers(tmp_path, data_dir, run_dir)[writer]
    path.parent.mkdir(exist_ok=True)
    make, still = KINDS[kind]
    make(path, tmp_path)
    line = one_line(capsys, [a.replace("{p}", str(path)) for a in argv])
    assert f"refusing to replace {path}" in line and "not a regular file" in line
    assert still(os.lstat(path).st_mode)  # still what it was
    if kind == "symlink":
        assert (tmp_path / "precious.txt").read_text() == "keep me\n"
    if writer.startswith("train"):  # refused before any training, so nothing else was written either
        assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


@pytest.mark.parametrize("argv, option", [
    (["backprop", "single-neuron", "--frames", "{p}"], "--frames"),
    (["demo", "single-neuron", "--out", "{p}", "--format", "dot"], "--out"),
    (["moons", "--steps", "1", "--out", "{p}"], "--out"),
    (["train", "--out", "{p}", "--epochs", "1"], "--out"),
])
@pytest.mark.parametrize("kind", ["symlink to a folder", "fifo", "file"])
def test_an_output_folder_must_be_a_folder_itself(capsys, tmp_path, argv, option, kind):
    path = tmp_path / "dest"
    (tmp_path / "real").mkdir()
    if kind == "symlink to a folder":
        path.symlink_to(tmp_path / "real")
    elif kind == "fifo":
        os.mkfifo(path)
    else:
        path.write_text("x")
    line = one_line(capsys, [a.replace("{p}", str(path)) for a in argv])
    assert line.startswith(f"micrograd-mnist {argv[0]}: {option} {path} is ")
    assert ("symbolic link" in line) == (kind == "symlink to a folder") and "folder" in line
    assert list((tmp_path / "real").iterdir()) == []  # nothing written through the link


def test_the_lock_file_itself_must_be_ours(capsys, tmp_path, data_dir):
    out = tmp_path / "run"
    out.mkdir()
    os.mkfifo(out / ".lock")
    line = one_line(capsys, ["train", "--data-dir", str(data_dir), "--out", str(out), "--epochs", "1", "--quiet"])
    assert f"refusing {out / '.lock'}" in line and "not a regular file" in line
    assert stat.S_ISFIFO(os.lstat(out / ".lock").st_mode) and not (out / "checkpoint.npz").exists()


# ---------------------------------------------------------------------------------------------------------------
# '-' is standard output, and then standard output is the file alone


def test_evaluate_confusion_dash_writes_only_the_csv_to_stdout(capsys, tmp_path, data_dir, run_dir, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["evaluate", str(run_dir / "model.npz"), "--data-dir", str(data_dir), "--confusion", "-"]) == 0
    out, err = capsys.readouterr()
    rows = out.splitlines()
    assert rows[0] == "true\\predicted," + ",".join(map(str, range(10))) and len(rows) == 11
    assert sum(int(c) for row in rows[1:] for c in row.split(",")[1:]) == 500  # every test image counted once
    assert "test accuracy" in err and "class 0:" in err  # the report moved to stderr
    assert list(tmp_path.iterdir()) == []  # no file called '-'


def test_backprop_html_dash_writes_only_the_page_to_stdout(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["backprop", "single-neuron", "--html", "-"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("<!doctype html>") and out.rstrip().endswith("</html>")
    assert "wrote" not in out and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_backprop_html_dash_with_all_is_refused(capsys):
    assert "--html -" in one_line(capsys, ["backprop", "single-neuron", "--html", "-", "--all"])


# ---------------------------------------------------------------------------------------------------------------
# No command overwrites one of its own inputs


def test_evaluate_does_not_overwrite_its_checkpoint_with_the_csv(capsys, tmp_path, data_dir, run_dir):
    ckpt = tmp_path / "model.npz"
    ckpt.write_bytes((run_dir / "model.npz").read_bytes())
    before = ckpt.read_bytes()
    line = one_line(capsys, ["evaluate", str(ckpt), "--data-dir", str(data_dir), "--confusion", str(ckpt)])
    assert f"refusing to write {ckpt}" in line and "input" in line
    assert ckpt.read_bytes() == before


@pytest.mark.parametrize("found_by", ["--data-dir", "MICROGRAD_MNIST_DATA", "the cache"])
def test_evaluate_does_not_overwrite_the_data(capsys, tmp_path, data_dir, run_dir, monkeypatch, found_by):
    folder = data.cache_dir() if found_by == "the cache" else tmp_path / "data"
    folder.mkdir(parents=True)
    for f in data_dir.iterdir():
        (folder / f.name).write_bytes(f.read_bytes())
    labels = folder / "t10k-labels-idx1-ubyte"
    before = labels.read_bytes()
    given = ["--data-dir", str(folder)] if found_by == "--data-dir" else []
    if found_by == "MICROGRAD_MNIST_DATA":
        monkeypatch.setenv(data.ENV_VAR, str(folder))
    line = one_line(capsys, ["evaluate", str(run_dir / "model.npz"), *given, "--confusion", str(labels)])
    assert f"refusing to write {labels}: it is also this command's input" in line and labels.read_bytes() == before


def test_a_full_disk_is_one_line_naming_the_file(capsys, tmp_path, data_dir, run_dir, monkeypatch):
    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")  # as the kernel reports it: no file name

    monkeypatch.setattr(os, "fsync", full)
    out = tmp_path / "c.csv"
    line = one_line(capsys, ["evaluate", str(run_dir / "model.npz"), "--data-dir", str(data_dir),
                             "--confusion", str(out)])
    assert line == f"micrograd-mnist evaluate: {out}: No space left on device; free some space or choose another disk"
    assert os.listdir(tmp_path) == []


def test_a_file_name_the_terminal_cannot_show_prints_escaped_after_the_work(tmp_path):
    folder = os.fsencode(tmp_path) + b"/moons-\xff"  # not UTF-8
    run = subprocess.run([sys.executable, "-m", "micrograd_mnist.cli", "moons", "--steps", "1", "--out", folder],
                         capture_output=True, env=os.environ | {"PYTHONIOENCODING": "utf-8:strict"})
    assert run.returncode == 0 and run.stderr == b""
    assert f"wrote {tmp_path}/moons-\\udcff/moons.png".encode() in run.stdout
    assert os.path.isfile(folder + b"/moons.png")


@pytest.mark.parametrize("argv", [["evaluate", "{model}", "--data-dir", "{data}", "--confusion", "{out}"],
                                  ["backprop", "3b1b-digit", "--checkpoint", "{net}", "--html", "{out}"]])
@pytest.mark.parametrize("product", ["checkpoint.npz", "model.npz", "metrics.json"])
def test_no_command_but_train_replaces_a_runs_own_file(capsys, tmp_path, data_dir, run_dir, argv, product):
    other = tmp_path / "other-run"
    other.mkdir()
    for name in training.PRODUCTS:
        (other / name).write_bytes((run_dir / name).read_bytes())
    before = (other / product).read_bytes()
    net = save_net(tmp_path / "net.npz", [784, 16, 16, 10])
    names = {"model": run_dir / "model.npz", "data": data_dir, "net": net, "out": other / product}
    line = one_line(capsys, [a.format(**names) for a in argv])
    assert f"refusing to replace {other / product}: it is a training run's {product}" in line
    assert (other / product).read_bytes() == before


@pytest.mark.parametrize("how", ["same path", "hard link"])
def test_plot_does_not_overwrite_its_checkpoint(capsys, tmp_path, run_dir, how):
    ckpt = tmp_path / "model.npz"
    ckpt.write_bytes((run_dir / "model.npz").read_bytes())
    before = ckpt.read_bytes()
    out = ckpt if how == "same path" else tmp_path / "w.png"
    if how == "hard link":
        os.link(ckpt, out)  # a picture name, so the suffix check cannot be what stops it
    line = one_line(capsys, ["plot", "weights", str(ckpt), "--out", str(out)])
    assert f"refusing to write {out}" in line and "input" in line
    assert ckpt.read_bytes() == before


def test_plot_curves_does_not_overwrite_its_metrics(capsys, tmp_path, run_dir, monkeypatch):
    metrics = tmp_path / "curves.png"  # the default --out of plot curves
    metrics.write_bytes((run_dir / "metrics.json").read_bytes())
    before = metrics.read_bytes()
    assert "input" in one_line(capsys, ["plot", "curves", "--metrics", str(metrics), "--out", str(metrics)])
    monkeypatch.chdir(tmp_path)
    assert "input" in one_line(capsys, ["plot", "curves", "--metrics", "curves.png"])  # the default --out, too
    assert metrics.read_bytes() == before


def test_backprop_does_not_overwrite_its_checkpoint(capsys, tmp_path):
    ckpt = save_net(tmp_path / "net.npz", [784, 16, 16, 10])
    before = ckpt.read_bytes()
    line = one_line(capsys, ["backprop", "3b1b-digit", "--checkpoint", str(ckpt), "--html", str(ckpt)])
    assert "input" in line and ckpt.read_bytes() == before


# ---------------------------------------------------------------------------------------------------------------
# plot and evaluate: a checkpoint of another shape is one line


@pytest.mark.parametrize("sizes", [[10, 5, 3], [20, 10], [784, 16, 5]])
@pytest.mark.parametrize("kind", ["weights", "confusion", "mistakes"])
def test_plot_refuses_a_network_of_another_shape(capsys, tmp_path, data_dir, sizes, kind):
    if kind == "weights" and sizes[0] == 784:
        sizes = [30, 16, 10]  # weights reads only the first layer: any width of outputs will do
    ckpt = save_net(tmp_path / "net.npz", sizes)
    line = one_line(capsys, ["plot", kind, str(ckpt), "--data-dir", str(data_dir), "--out", str(tmp_path / "p.png")])
    assert "-".join(map(str, sizes)) in line and "784 inputs" in line
    assert not (tmp_path / "p.png").exists()


@pytest.mark.parametrize("sizes", [[10, 5, 3], [20, 10], [784, 16, 5]])
def test_evaluate_refuses_a_network_of_another_shape(capsys, tmp_path, data_dir, sizes):
    ckpt = save_net(tmp_path / "net.npz", sizes)
    line = one_line(capsys, ["evaluate", str(ckpt), "--data-dir", str(data_dir)])
    assert "-".join(map(str, sizes)) in line and "784 inputs" in line


# ---------------------------------------------------------------------------------------------------------------
# plot curves: a malformed metrics.json is one line


def good_metrics() -> dict:
    return {"train_loss": [1.0, 0.5], "val_accuracy": [0.8, 0.9], "test_accuracy": 0.9,
            "config": {"sizes": [784, 16, 10], "activation": "relu", "preset": "seed"}}


BAD_METRICS = {  # name: (the file's bytes, what the one line says)
    "not JSON": (b"{oops",
                "is not a readable metrics.json (Expecting property name"),
    "not UTF-8": (b'{"train_loss": "\xff\xfe"}',
                 "is not a readable metrics.json ('utf-8' codec can't decode"),
    "a list": (b"[1, 2, 3]",
              "is not a metrics.json written by `micrograd-mnist train`"),
    "missing keys": (b"{}",
                    "has no 'train_loss' list"),
    "loss a string": (json.dumps(good_metrics() | {"train_loss": "low"}).encode(),
                     "has no 'train_loss' list"),
    "a list of strings": (json.dumps(good_metrics() | {"val_accuracy": ["0.8", "0.9"]}).encode(),
                         "'val_accuracy' must be a list of numbers"),
    "booleans": (json.dumps(good_metrics() | {"train_loss": [True, False]}).encode(),
                "'train_loss' must be a list of numbers"),
    "nested lists": (json.dumps(good_metrics() | {"train_loss": [[1.0], [0.5]]}).encode(),
                    "'train_loss' must be a list of numbers"),
    "NaN literal": (json.dumps(good_metrics() | {"train_loss": [float("nan"), 1.0]}).encode(),
                   "'train_loss' must be a list of numbers"),
    "test accuracy text": (json.dumps(good_metrics() | {"test_accuracy": "90%"}).encode(),
                          "'test_accuracy' must be a number"),
    "config a list": (json.dumps(good_metrics() | {"config": [1]}).encode(),
                     "'config' is not a training configuration"),
    "sizes of text": (json.dumps(good_metrics() | {"config": {"sizes": ["784", "x"]}}).encode(),
                     "'config' is not a training configuration"),
    "activation a number": (json.dumps(good_metrics() | {"config": {"activation": 3}}).encode(),
                           "'config' is not a training configuration"),
    "a 5000-digit number": (b'{"train_loss": [' + b"9" * 5000 + b'], "val_accuracy": [0.5]}',
                           "is not a readable metrics.json (Exceeds the limit (4300 digits)"),
    "nested 100,000 deep": (b"[" * 100_000 + b"]" * 100_000,
                           "is not a readable metrics.json (nested too deeply)"),
    "too many epochs": (json.dumps(good_metrics() | {"train_loss": [0.5] * 100_001}).encode(),
                       "'train_loss' has 100,001 entries, more than 100,000 epochs"),
}


@pytest.mark.parametrize("name", BAD_METRICS)
def test_plot_curves_refuses_malformed_metrics_in_one_line(capsys, tmp_path, name):
    path = tmp_path / "metrics.json"
    body, reason = BAD_METRICS[name]
    path.write_bytes(body)
    line = one_line(capsys, ["plot", "curves", "--metrics", str(path), "--out", str(tmp_path / "c.png")])
    assert str(path) in line and reason in line
    assert not (tmp_path / "c.png").exists()


@pytest.mark.parametrize("kind", ["fifo", "folder", "2 GB"])
def test_plot_curves_refuses_a_metrics_path_that_is_not_a_small_file(capsys, tmp_path, kind):
    path = tmp_path / "metrics.json"
    if kind == "fifo":
        os.mkfifo(path)  # used to hang forever, waiting for a writer
    elif kind == "folder":
        path.mkdir()
    else:
        with open(path, "wb") as f:
            f.truncate(2**31)  # sparse: 2 GB that take no disk
    line = one_line(capsys, ["plot", "curves", "--metrics", str(path), "--out", str(tmp_path / "c.png")])
    assert str(path) in line and {"fifo": "FIFO", "folder": "folder", "2 GB": "2,147,483,648 bytes"}[kind] in line


def test_plot_curves_of_a_2_gb_metrics_file_needs_little_memory(tmp_path):
    path = tmp_path / "metrics.json"
    with open(path, "wb") as f:
        f.truncate(2**31)
    script = textwrap.dedent(f"""
        import resource, sys
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
        from micrograd_mnist import cli
        sys.exit(cli.main(["plot", "curves", "--metrics", {str(path)!r}, "--out", {str(tmp_path / "c.png")!r}]))
    """)
    env = os.environ | {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 2, done.stderr
    lines = error_lines(done.stderr, "plot")
    assert len(lines) == 1 and "bytes" in lines[0] and "MemoryError" not in done.stderr


def test_plot_curves_draws_metrics_with_nulls(capsys, tmp_path):
    """metrics.json writes a value training could not give as null; curves still draws the rest."""
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps(good_metrics() | {"train_loss": [1.0, None, 0.4], "val_accuracy": [0.5, 0.6, 0.7],
                                                 "notes": ["train_loss[1] is null: it was inf"]}))
    assert cli.main(["plot", "curves", "--metrics", str(path), "--out", str(tmp_path / "c.svg")]) == 0
    assert (tmp_path / "c.svg").read_text().lstrip().startswith("<?xml")
