"""A user's slips on the command line, each one line and exit 2, found by trying the CLI as a user would:
an output named for another kind of file, a data folder that is wrong, --set values that can't be meant,
a --frames folder holding another walk-through, options argparse refuses, a moons run of years."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from conftest import error_lines

from micrograd_mnist import checkpoint, cli, data, explore, files
from micrograd_mnist.nn import MLP


def one_line(capsys, argv: list[str]) -> str:
    assert cli.main(argv) == 2
    lines = error_lines(capsys.readouterr().err, argv[0])
    assert len(lines) == 1, lines
    return lines[0]


def a_model(path: Path) -> Path:
    checkpoint.save(path, MLP([784, 16, 10], "relu", rng=np.random.default_rng(0)), {})
    return path


@pytest.mark.parametrize("victim", ["best.npz", "digit.png", "script.py"])
def test_evaluate_confusion_writes_only_a_csv_name(capsys, tmp_path, data_dir, victim):
    model = a_model(tmp_path / "model.npz")
    kept = tmp_path / victim
    kept.write_bytes(b"precious")
    line = one_line(capsys, ["evaluate", str(model), "--data-dir", str(data_dir), "--confusion", str(kept)])
    assert line.endswith(f"--confusion {kept}: it writes a CSV table; give a .csv file name (or - for standard output)")
    assert kept.read_bytes() == b"precious"


@pytest.mark.parametrize("victim", ["best.npz", "digit.png"])
def test_backprop_html_writes_only_an_html_name(capsys, tmp_path, victim):
    kept = tmp_path / victim
    kept.write_bytes(b"precious")
    line = one_line(capsys, ["backprop", "single-neuron", "--html", str(kept)])
    assert line.endswith(f"--html {kept}: it writes a web page; give a .html file name (or - for standard output)")
    assert kept.read_bytes() == b"precious"


def test_a_frames_folder_holding_a_longer_walk_through_is_refused(capsys, tmp_path):
    frames = tmp_path / "frames"
    assert cli.main(["backprop", "two-layer-collapse", "--frames", str(frames)]) == 0
    before = {p.name: p.read_bytes() for p in frames.iterdir()}
    capsys.readouterr()
    line = one_line(capsys, ["backprop", "single-neuron", "--frames", str(frames)])
    assert f"--frames {frames} already holds step-" in line and "give an empty folder or delete them" in line
    assert {p.name: p.read_bytes() for p in frames.iterdir()} == before  # nothing replaced: no mixed set
    assert cli.main(["backprop", "two-layer-collapse", "--frames", str(frames)]) == 0  # the same one again is fine


@pytest.mark.parametrize("given", ["--data-dir", "MICROGRAD_MNIST_DATA"])
def test_demo_refuses_a_wrong_data_folder_it_was_given(capsys, tmp_path, monkeypatch, given):
    wrong = tmp_path / "no-such-folder"
    argv = ["demo", "single-neuron", "--out", str(tmp_path / "pictures")]
    if given == "--data-dir":
        argv += ["--data-dir", str(wrong)]
    else:
        monkeypatch.setenv(data.ENV_VAR, str(wrong))
    line = one_line(capsys, argv)
    assert f"{wrong}: no train-images-idx3-ubyte" in line
    assert not (tmp_path / "pictures").exists()


def test_explore_refuses_a_wrong_data_folder_it_was_given(capsys, tmp_path):
    model = a_model(tmp_path / "model.npz")
    assert explore.main([str(model), "--no-browser", "--port", "0", "--data-dir", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{tmp_path / 'nowhere'}: no train-images-idx3-ubyte" in err[0]


@pytest.mark.parametrize("values, complaint", [
    (["a=nan", "b=1"], "--set a=nan: give a finite number"),
    (["a=inf", "b=1"], "--set a=inf: give a finite number"),
    (["a=1e400", "b=1"], "--set a=1e400: give a finite number"),
    (["a=1", "a=2", "b=1"], "--set gives a more than once; give each name one value"),
    (["a=1", "b=2", "c=3"], "--set c: the result does not depend on it; the names it depends on are a, b"),
])
def test_backprop_set_refuses_values_that_cannot_be_meant(capsys, values, complaint):
    assert complaint in one_line(capsys, ["backprop", "--expr", "a*b", "--set", *values, "--all"])


def test_moons_refuses_a_run_of_years(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["moons", "--steps", "99999999999999999999"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"must be at most {cli.MAX_MOONS_STEPS:,}" in err


@pytest.mark.parametrize("argv", [["moons", "--out", ""], ["demo", "single-neuron", "--out", ""],
                                  ["evaluate", "", "--data-dir", "x"]])
def test_an_empty_path_is_refused_not_taken_for_the_current_folder(capsys, tmp_path, monkeypatch, argv):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "an empty path; give a file or folder name" in err
    assert os.listdir(tmp_path) == []


def test_a_folder_we_may_not_write_names_the_file_and_says_what_to_do(capsys, tmp_path, monkeypatch):
    def refuse(prefix, suffix, dir):  # what mkstemp raises in a folder we may not write: its temp file's name
        raise PermissionError(13, "Permission denied", os.path.join(os.path.abspath(dir), f"{prefix}x{suffix}"))

    monkeypatch.setattr(files.tempfile, "mkstemp", refuse)
    monkeypatch.chdir(tmp_path)
    line = one_line(capsys, ["backprop", "single-neuron", "--html", "page.html"])
    assert line == "micrograd-mnist backprop: page.html: Permission denied; choose a folder you may write to"



@pytest.mark.parametrize("argv, complaint", [
    (["backprop", "single-neuron", "--all", "--quiz"], "--all prints every step, --quiz asks for each gradient"),
    (["backprop", "single-neuron", "--format", "png"], "--format png is the format of --frames' pictures"),
    (["backprop", "single-neuron", "--checkpoint", "net.npz"], "choose the network and digit of 3b1b-digit"),
    (["backprop", "--expr", "a*2", "--set", "a=1", "--digit", "3"], "choose the network and digit of 3b1b-digit"),
    (["backprop", "seed-layer", "--data-dir", "idx"], "choose the network and digit of 3b1b-digit"),
    (["plot", "architecture", "--metrics", "m.json"], "--metrics is for plot curves"),
])
def test_an_option_that_would_be_ignored_is_refused(capsys, tmp_path, monkeypatch, argv, complaint):
    monkeypatch.chdir(tmp_path)
    assert complaint in one_line(capsys, argv)
    assert set(os.listdir(tmp_path)) <= {"xdg"}  # nothing written (xdg: the test's cache folder, matplotlib's too)


def test_moons_checks_its_picture_before_training(capsys, tmp_path, monkeypatch):
    from micrograd_mnist import moons

    (tmp_path / "moons.png").mkdir()  # a folder where the picture goes
    monkeypatch.setattr(moons, "train", lambda *a, **k: pytest.fail("trained before finding out it can't write"))
    line = one_line(capsys, ["moons", "--out", str(tmp_path)])
    assert f"{tmp_path / 'moons.png'}: is a folder; give a file name" in line


def test_set_takes_a_name_the_result_depends_on_through_an_assignment(capsys):
    assert cli.main(["backprop", "--expr", "h = x*2; h*y", "--set", "x=1", "y=3", "--all"]) == 0
    assert "forward pass:" in capsys.readouterr().out


def test_outputs_are_checked_without_a_home_folder(capsys, tmp_path, monkeypatch):
    # no $HOME and no entry in the password file (a container's bare user): there is no cache to protect
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setattr(Path, "home", classmethod(lambda cls: (_ for _ in ()).throw(RuntimeError("no home"))))
    assert data.folders(tmp_path) == [tmp_path]
    assert cli.main(["backprop", "--expr", "x*2", "--set", "x=1", "--html", str(tmp_path / "p.html")]) == 0
    assert (tmp_path / "p.html").is_file()


TERMINATED_MID_WRITE = """
import os, signal, sys
from micrograd_mnist import cli, files
real = files.atomic_write

def write_then_terminated(path, write, inputs=()):
    def half(f):
        f.write(b"<html>half a page")
        os.kill(os.getpid(), signal.SIGTERM)  # `kill` from another terminal, mid-write
        f.write(b" and the rest")
    return real(path, half, inputs)

files.atomic_write = write_then_terminated
import viz.stepper_page
viz.stepper_page.atomic_write = write_then_terminated
sys.exit(cli.main(["backprop", "single-neuron", "--html", sys.argv[1]]))
"""


def test_sigterm_mid_write_leaves_no_temp_file(tmp_path):
    import subprocess
    import sys

    page = tmp_path / "page.html"
    done = subprocess.run([sys.executable, "-c", TERMINATED_MID_WRITE, str(page)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 143, done.stderr  # 128 + SIGTERM, as a shell reports it
    assert "Traceback" not in done.stderr
    assert os.listdir(tmp_path) == []  # neither the page nor atomic_write's .part file
