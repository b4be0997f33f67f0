"""Issue 9, training: a finished run is not replaced without --force, two runs never share an --out (a lock),
SIGTERM saves like Ctrl-C, a killed run leaves a loadable checkpoint and no temp files on the next start,
metrics.json is always valid JSON, a small training set is split sensibly, --resume refuses a changed
--seed or --data-dir and reads its checkpoint once. Signals and locks run the real command in a subprocess."""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from conftest import error_lines

from micrograd_mnist import checkpoint, cli, data, training
from micrograd_mnist.files import FileError

TINY = ["--epochs", "1", "--batch-size", "500", "--quiet"]
LONG = ["--epochs", "100000", "--batch-size", "500", "--quiet"]  # runs until a signal stops it
DEADLINE = 120  # seconds: generous bounds on waits for a subprocess, never a measured time


def one_line(capsys, argv: list[str]) -> str:
    assert cli.main(argv) == 2
    lines = error_lines(capsys.readouterr().err, argv[0])
    assert len(lines) == 1, lines
    return lines[0]


# ---------------------------------------------------------------------------------------------------------------
# A finished run is not replaced without --force


def test_train_refuses_a_folder_holding_a_finished_run_unless_force(capsys, tmp_path, data_dir):
    out = tmp_path / "run"
    argv = ["train", "--data-dir", str(data_dir), "--out", str(out), *TINY]
    assert cli.main(argv) == 0
    capsys.readouterr()
    before = {name: (out / name).read_bytes() for name in training.PRODUCTS}

    line = one_line(capsys, [*argv, "--seed", "1"])
    assert f"{out} already holds a run" in line and "model.npz" in line and "--force" in line
    assert {name: (out / name).read_bytes() for name in training.PRODUCTS} == before  # nothing touched

    assert cli.main([*argv, "--seed", "1", "--force"]) == 0
    assert json.loads((out / "metrics.json").read_text())["config"]["seed"] == 1

    # continuing a run in its own folder is what --resume is for
    assert cli.main([*argv, "--seed", "1", "--resume", str(out / "checkpoint.npz")]) == 0


def test_train_refuses_a_folder_holding_an_interrupted_run_and_says_how_to_continue(capsys, tmp_path, data_dir):
    out = tmp_path / "run"
    assert cli.main(["train", "--data-dir", str(data_dir), "--out", str(out), *TINY]) == 0
    (out / "model.npz").unlink()
    (out / "metrics.json").unlink()
    capsys.readouterr()
    line = one_line(capsys, ["train", "--data-dir", str(data_dir), "--out", str(out), *TINY])
    assert "(checkpoint.npz)" in line and f"--resume {out / 'checkpoint.npz'}" in line


def test_train_help_documents_force_and_the_lock(capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--force start afresh in an --out that holds another run's files" in text and "locked" in text


# ---------------------------------------------------------------------------------------------------------------
# The real command in a subprocess


class Run:
    """`micrograd-mnist ARGV` in a subprocess, unbuffered; a thread collects its stdout lines as they come."""

    def __init__(self, argv: list[str], cwd: Path) -> None:
        env = os.environ | {"PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen([sys.executable, "-m", "micrograd_mnist.cli", *argv], cwd=cwd, env=env,
                                     text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.pid, self.lines, self.stdout = self.proc.pid, queue.Queue(), []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def wait_for_line(self, prefix: str) -> str:
        """Block until a stdout line starts with `prefix` (within DEADLINE); that line."""
        deadline = time.monotonic() + DEADLINE
        while True:
            line = self.lines.get(timeout=max(deadline - time.monotonic(), 0.01))
            assert line is not None, f"the run ended before printing {prefix!r}: {self.stdout}"
            self.stdout.append(line)
            if line.startswith(prefix):
                return line

    def finish(self) -> tuple[int, str, str]:
        """Wait for the run to end (within DEADLINE): its exit code, the rest of its stdout, its stderr."""
        code = self.proc.wait(timeout=DEADLINE)
        self.reader.join(timeout=DEADLINE)
        rest = []
        while not self.lines.empty():
            rest.append(self.lines.get_nowait() or "")
        return code, "".join(rest), self.proc.stderr.read()


@contextmanager
def running(argv: list[str], cwd: Path) -> Iterator[Run]:
    run = Run(argv, cwd)
    try:
        yield run
    finally:
        if run.proc.poll() is None:
            run.proc.kill()
            run.proc.wait(timeout=DEADLINE)


def temps(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob(".*.part"))


def test_a_second_train_on_the_same_out_is_refused_while_the_first_runs(tmp_path, data_dir):
    out = tmp_path / "run"
    argv = ["train", "--data-dir", str(data_dir), "--out", str(out), *LONG]
    with running(argv, tmp_path) as first:
        lock, deadline = out / ".lock", time.monotonic() + DEADLINE
        while not (lock.exists() and lock.read_text().strip() == str(first.pid)):  # the first run holds it
            assert first.proc.poll() is None and time.monotonic() < deadline, "the first run never took the lock"
            time.sleep(0.05)
        with running([*argv, "--force"], tmp_path) as second:  # --force does not get past a lock
            code, _, err = second.finish()
        assert code == 2
        lines = error_lines(err, "train")
        assert lines == [f"micrograd-mnist train: {out} is in use by another `micrograd-mnist train` "
                         f"(pid {first.pid}); wait for it to finish, or give another --out"]
        assert first.proc.poll() is None  # the first run goes on, undisturbed
        first.proc.send_signal(signal.SIGTERM)
        code, _, _ = first.finish()
    assert code == 143
    assert not (out / "model.npz").exists() and not lock.exists()  # the lock goes with its run
    checkpoint.load(out / "checkpoint.npz")


def test_sigterm_saves_a_checkpoint_at_a_batch_boundary_and_exits_143(tmp_path, data_dir):
    out = tmp_path / "run"
    with running(["train", "--data-dir", str(data_dir), "--out", str(out), *LONG], tmp_path) as run:
        run.wait_for_line("epoch")
        run.proc.send_signal(signal.SIGTERM)
        code, stdout, stderr = run.finish()
    assert code == 143, stderr
    assert "Traceback" not in stderr
    assert "interrupted: saved" in stdout and f"--resume {out / 'checkpoint.npz'}" in stdout
    _, meta, _ = checkpoint.load(out / "checkpoint.npz")
    assert meta["resume"]["epoch"] >= 1 and len(meta["resume"]["metrics"]["train_loss"]) == meta["resume"]["epoch"]
    assert temps(out) == [] and sorted(p.name for p in out.iterdir()) == ["checkpoint.npz"]


def test_a_killed_run_can_resume_and_the_next_start_removes_its_temp_files(tmp_path, data_dir):
    out = tmp_path / "run"
    argv = ["train", "--data-dir", str(data_dir), "--out", str(out), *LONG]
    with running(argv, tmp_path) as run:
        run.wait_for_line("epoch")
        run.proc.kill()  # SIGKILL: no handler runs, the lock stays behind as a file
        run.finish()
    killed_at = checkpoint.load(out / "checkpoint.npz")[1]["resume"]["epoch"]  # the rename kept it whole
    assert killed_at >= 1
    # what a SIGKILL during atomic_write leaves: a temp beside each file (and one that is not ours)
    for name in (".checkpoint.npz.k1ll3d.part", ".model.npz.abcdefgh.part", ".metrics.json.x.part"):
        (out / name).write_bytes(b"half a file")
    (out / ".notes.txt.mine.part").write_text("not a temp of ours")

    with running([*argv, "--resume", str(out / "checkpoint.npz")], tmp_path) as run:
        assert run.wait_for_line("resuming at").startswith(f"resuming at epoch {killed_at + 1}")
        assert temps(out) == [".notes.txt.mine.part"]  # ours removed once the lock was taken
        run.wait_for_line("epoch")
        run.proc.send_signal(signal.SIGTERM)
        code, _, stderr = run.finish()
    assert code == 143, stderr
    assert checkpoint.load(out / "checkpoint.npz")[1]["resume"]["epoch"] > killed_at
    assert temps(out) == [".notes.txt.mine.part"]


def test_a_second_sigterm_during_an_update_keeps_the_last_good_checkpoint():
    """The handler: the first SIGTERM is a request; a second raises Terminated (exit 143) at once."""
    reached = []

    def outer(signum, frame):  # what the test runner sees if the handler is not ours (and not death by SIGTERM)
        reached.append(signum)

    before = signal.signal(signal.SIGTERM, outer)
    try:
        with training.ctrl_c_at_batch_boundaries() as stop:
            os.kill(os.getpid(), signal.SIGTERM)
            assert stop.requested and isinstance(stop.interruption(), training.Terminated)
            with pytest.raises(training.Terminated):
                os.kill(os.getpid(), signal.SIGTERM)
        assert reached == [] and signal.getsignal(signal.SIGTERM) is outer  # put back as it was
    finally:
        signal.signal(signal.SIGTERM, before)


def test_cli_exits_143_for_terminated_and_130_for_ctrl_c(capsys, tmp_path, data_dir, monkeypatch):
    for error, code in ((training.Terminated, 143), (KeyboardInterrupt, 130)):
        def train(*args, error=error, **kwargs):
            raise error

        monkeypatch.setattr(training, "train", train)
        assert cli.main(["train", "--data-dir", str(data_dir), "--out", str(tmp_path / "r"), *TINY]) == code


# ---------------------------------------------------------------------------------------------------------------
# metrics.json is always valid JSON


def strict_json(text: str):
    def refuse(constant):
        raise AssertionError(f"{constant} in metrics.json")

    return json.loads(text, parse_constant=refuse)


def test_metrics_json_writes_null_and_a_note_for_a_class_with_no_test_images(mnist, tmp_path):
    keep = mnist.test_labels != 3
    no_threes = mnist._replace(test_images=mnist.test_images[keep], test_labels=mnist.test_labels[keep])
    cfg = training.Config(sizes=[784, 16, 10], activation="relu", epochs=1, batch_size=500, lr=0.05)
    training.train(cfg, no_threes, tmp_path, log=lambda line: None, progress=False)
    metrics = strict_json((tmp_path / "metrics.json").read_text())
    per_class = metrics["per_class_accuracy"]
    assert per_class[3] is None and all(isinstance(p, float) for i, p in enumerate(per_class) if i != 3)
    assert metrics["notes"] == ["per_class_accuracy[3] is null: the test set has no images of class 3"]


def test_write_json_turns_every_non_finite_number_into_null_with_a_note(tmp_path):
    path = tmp_path / "metrics.json"
    training.write_json(path, {"train_loss": [0.5, float("inf")], "test_accuracy": float("nan"), "epochs": 2,
                               "config": {"lr": float("-inf")}})
    metrics = strict_json(path.read_text())
    assert metrics["train_loss"] == [0.5, None] and metrics["test_accuracy"] is None and metrics["epochs"] == 2
    assert metrics["config"]["lr"] is None
    assert metrics["notes"] == ["train_loss[1] is null: it was inf", "test_accuracy is null: it was nan",
                                "config.lr is null: it was -inf"]


# ---------------------------------------------------------------------------------------------------------------
# A training set too small for the usual validation split


def small_set(folder: Path, n_train: int, n_test: int = 50) -> Path:
    rng = np.random.default_rng(1)
    folder.mkdir()
    arrays = (rng.integers(0, 256, (n_train, 28, 28)), np.arange(n_train) % 10,
              rng.integers(0, 256, (n_test, 28, 28)), np.arange(n_test) % 10)
    for name, array in zip(data.FILES, arrays):
        data.write_idx(folder / name, array.astype(np.uint8))
    return folder


@pytest.mark.parametrize("n, held_out", [(60_000, 5000), (6000, 5000), (5000, 4000), (1200, 200), (600, 100),
                                         (60, 10), (6, 1)])
def test_the_validation_split_leaves_images_to_train_on(n, held_out):
    assert training.validation_size(n) == held_out
    train_idx, val_idx = training.split(n)
    assert len(val_idx) == held_out and len(train_idx) == n - held_out


@pytest.mark.parametrize("n", [5000, 600, 60])
def test_train_on_a_small_set_holds_out_fewer_images(capsys, tmp_path, n):
    folder = small_set(tmp_path / "small", n)
    out = tmp_path / "run"
    assert cli.main(["train", "--data-dir", str(folder), "--out", str(out), *TINY]) == 0  # was ZeroDivisionError
    assert error_lines(capsys.readouterr().err, "train") == []
    metrics = strict_json((out / "metrics.json").read_text())
    assert len(metrics["val_accuracy"]) == 1 and 0 <= metrics["val_accuracy"][0] <= 1


def test_train_on_a_set_too_small_to_split_is_one_line(capsys, tmp_path):
    folder = small_set(tmp_path / "tiny", 5)
    line = one_line(capsys, ["train", "--data-dir", str(folder), "--out", str(tmp_path / "run"), *TINY])
    assert "5 training" in line and "at least 6" in line
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------------------------------------------------------
# --resume refuses a changed --seed or --data-dir


def test_resume_refuses_a_changed_seed_even_the_default_one(capsys, tmp_path, data_dir):
    out = tmp_path / "run"
    assert cli.main(["train", "--data-dir", str(data_dir), "--out", str(out), "--seed", "3", *TINY]) == 0
    capsys.readouterr()
    resume = ["train", "--data-dir", str(data_dir), "--resume", str(out / "checkpoint.npz"), *TINY]
    line = one_line(capsys, [*resume, "--seed", "0"])  # 0 was the default, once indistinguishable from no --seed
    assert "drop --seed 0 (it was 3)" in line
    assert cli.main([*resume, "--seed", "3"]) == 0


def test_resume_refuses_another_data_dir_and_reads_the_saved_one(capsys, tmp_path, data_dir, monkeypatch):
    out = tmp_path / "run"
    assert cli.main(["train", "--data-dir", str(data_dir), "--out", str(out), *TINY]) == 0
    saved = checkpoint.load(out / "checkpoint.npz")[1]["config"]["data_dir"]
    assert saved == str(data_dir.resolve())
    capsys.readouterr()

    other = tmp_path / "other"
    shutil.copytree(data_dir, other)
    line = one_line(capsys, ["train", "--data-dir", str(other), "--resume", str(out / "checkpoint.npz"), *TINY])
    assert f"drop --data-dir {other.resolve()} (it was {saved})" in line

    # the same folder by another spelling is the same setting; no --data-dir at all reads the saved folder
    # (offline, with no cache: nothing else could be found)
    monkeypatch.chdir(tmp_path)
    relative = os.path.relpath(data_dir, tmp_path)
    assert cli.main(["train", "--data-dir", relative, "--resume", str(out / "checkpoint.npz"), *TINY]) == 0
    assert cli.main(["train", "--resume", str(out / "checkpoint.npz"), *TINY]) == 0
    assert error_lines(capsys.readouterr().err, "train") == []


# ---------------------------------------------------------------------------------------------------------------
# The command line refuses what a run could not record or use


def test_train_and_evaluate_refuse_a_test_set_missing_a_class_in_one_line(capsys, tmp_path, data_dir):
    folder = tmp_path / "no-sevens"
    folder.mkdir()
    for name in data.FILES:
        shutil.copy(data_dir / name, folder / name)
    images, labels = data.read_idx(data_dir / data.FILES[2]), data.read_idx(data_dir / data.FILES[3])
    keep = labels != 7
    data.write_idx(folder / data.FILES[2], images[keep])
    data.write_idx(folder / data.FILES[3], labels[keep])
    line = one_line(capsys, ["train", "--data-dir", str(folder), "--out", str(tmp_path / "run"), *TINY])
    assert "the test set has no image of class" in line and "7" in line
    assert cli.main(["train", "--data-dir", str(data_dir), "--out", str(tmp_path / "ok"), *TINY]) == 0
    capsys.readouterr()
    line = one_line(capsys, ["evaluate", str(tmp_path / "ok" / "model.npz"), "--data-dir", str(folder)])
    assert "no image of class" in line  # was "class 7: nan%"


@pytest.mark.parametrize("flag, value", [("--epochs", "100001"), ("--batch-size", str(2**31 + 1))])
def test_train_refuses_settings_a_checkpoint_could_not_record(capsys, flag, value):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["train", flag, value])
    assert exit_.value.code == 2 and "must be at most" in capsys.readouterr().err


def test_resume_refuses_a_batch_counter_past_the_end_of_the_epoch(capsys, tmp_path, data_dir):
    out = tmp_path / "run"
    assert cli.main(["train", "--data-dir", str(data_dir), "--out", str(out), "--epochs", "2", *TINY[2:]]) == 0
    model, meta, state = checkpoint.load(out / "checkpoint.npz")
    meta["resume"]["epoch"], meta["resume"]["step"] = 1, 50  # 1000 images in batches of 500: 2 batches an epoch
    meta["resume"]["metrics"] = {k: v[:1] for k, v in meta["resume"]["metrics"].items()}
    forged = tmp_path / "forged.npz"
    checkpoint.save(forged, model, {k: meta[k] for k in ("config", "resume")}, state)
    line = one_line(capsys, ["train", "--resume", str(forged), "--data-dir", str(data_dir), "--out",
                             str(tmp_path / "again")])
    assert "batch 50 of an epoch of 2 batches" in line


def test_an_unknown_optimizer_is_never_silently_another():
    cfg = training.Config(optimizer="evil").resolved()
    with pytest.raises(ValueError, match="unknown optimizer 'evil'"):
        training.make_optimizer(cfg, training.MLP([784, 10], "relu"))


def test_explore_refuses_a_network_that_does_not_take_digits_in_one_line(capsys, tmp_path):
    from micrograd_mnist.nn import MLP

    path = tmp_path / "small.npz"
    checkpoint.save(path, MLP([10, 5, 3], "relu"), {})
    line = one_line(capsys, ["explore", str(path), "--no-browser"])
    assert "10-5-3" in line


# ---------------------------------------------------------------------------------------------------------------
# One place knows a config: the checkpoint is read once, the CLI's help is the presets' own numbers


def test_resume_reads_the_checkpoint_once(capsys, tmp_path, data_dir, monkeypatch):
    out = tmp_path / "run"
    assert cli.main(["train", "--data-dir", str(data_dir), "--out", str(out), *TINY]) == 0
    (out / "model.npz").unlink()  # an unfinished run
    reads, load = [], checkpoint.load
    monkeypatch.setattr(checkpoint, "load", lambda path, *a, **k: reads.append(Path(path)) or load(path, *a, **k))
    assert cli.main(["train", "--data-dir", str(data_dir), "--resume", str(out / "checkpoint.npz"), *TINY]) == 0
    assert reads == [out / "checkpoint.npz"]
    # the checkpoint holds all of TINY's epochs: only the finish (the test set, model.npz) was left
    finished = f"{out / 'checkpoint.npz'} holds every epoch of the run (1): nothing left to train"
    assert finished in capsys.readouterr().out


def test_a_checkpoint_replaced_after_it_was_read_is_not_resumed(capsys, tmp_path, data_dir):
    """Read before OUT's lock is held: if another run finished in OUT meanwhile, resuming the older state
    would throw its epochs away."""
    out = tmp_path / "run"
    argv = ["train", "--data-dir", str(data_dir), "--out", str(out), *TINY]
    assert cli.main(argv) == 0
    (out / "model.npz").unlink()
    ckpt = out / "checkpoint.npz"
    cfg, resumed = training.start({"epochs": None}, ckpt)
    assert resumed is not None and cfg.epochs == 1 and resumed.state["epoch"] == 1
    os.utime(ckpt, ns=(0, 0))  # e.g. rewritten by the run that held the lock meanwhile
    mnist = data.load("mnist", data_dir)
    with pytest.raises(FileError, match="was replaced while this run got ready"):
        training.train(cfg, mnist, out, resume=resumed, progress=False, log=lambda line: None)
    assert not (out / "model.npz").exists()


def test_resume_refuses_a_changed_setting_in_training_itself(tmp_path, data_dir):
    out = tmp_path / "run"
    assert cli.main(["train", "--data-dir", str(data_dir), "--out", str(out), *TINY]) == 0
    with pytest.raises(training.SettingsError, match=r"drop --lr 0\.5 \(it was 0\.1\)"):
        training.start({"lr": 0.5, "epochs": None}, out / "checkpoint.npz")
    with pytest.raises(checkpoint.CheckpointError, match="holds final weights"):
        training.start({}, out / "model.npz")


def test_train_help_takes_its_defaults_from_the_presets(monkeypatch, capsys):
    monkeypatch.setitem(training.PRESETS, "seed", {**training.PRESETS["seed"], "epochs": 11, "batch_size": 96})
    monkeypatch.setattr(training.Config, "seed", 5)
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "default: the preset's (seed 11, 3b1b 20)" in help_text
    assert "default: the preset's (seed 96, 3b1b 64)" in help_text
    assert "--seed SEED default 5" in help_text
