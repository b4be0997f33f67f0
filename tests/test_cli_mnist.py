"""The command line for MNIST: train, evaluate, predict, and their errors, on tiny synthetic IDX files, offline."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from micrograd_mnist import checkpoint, cli, data, training
from micrograd_mnist.images import load_digit
from micrograd_mnist.nn import MLP

N_TRAIN, N_TEST = 6000, 500  # 5000 of the training images are held out for validation


def synthetic(seed: int = 0, noise: float = 0.5) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Ten classes of 28x28 uint8 images: a random prototype per class plus noise."""
    rng = np.random.default_rng(seed)
    prototypes = rng.random((10, 28, 28))

    def sample(n: int) -> tuple[np.ndarray, np.ndarray]:
        labels = rng.integers(0, 10, n)
        pixels = np.clip(prototypes[labels] + noise * rng.standard_normal((n, 28, 28)), 0, 1)
        return np.round(pixels * 255).astype(np.uint8), labels.astype(np.uint8)

    return (*sample(N_TRAIN), *sample(N_TEST))


@pytest.fixture(scope="module")
def arrays():
    return synthetic()


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory, arrays) -> Path:
    folder = tmp_path_factory.mktemp("idx")
    for name, array in zip(data.FILES, arrays):
        data.write_idx(folder / name, array)
    return folder


@pytest.fixture(scope="module")
def trained(tmp_path_factory, data_dir) -> Path:
    """A small model trained through the library (not the CLI), for evaluate and predict."""
    out = tmp_path_factory.mktemp("trained")
    mnist = data.load("mnist", data_dir, log=lambda line: None)
    cfg = training.Config(sizes=[784, 16, 10], activation="relu", epochs=2, batch_size=50, lr=0.05)
    training.train(cfg, mnist, out, log=lambda line: None, progress=False)
    return out


def errors_of(err: str, command: str) -> list[str]:
    """stderr's lines other than the loader's progress notes; checks there is no traceback."""
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line and not line.startswith("reading ")]
    assert all(line.startswith(f"micrograd-mnist {command}: ") for line in lines), lines
    return lines


def fails(capsys, argv: list[str], code: int = 2) -> str:
    """Run the CLI expecting a one-line error; that line."""
    assert cli.main(argv) == code
    out, err = capsys.readouterr()
    lines = errors_of(err, argv[0])
    assert len(lines) == 1, lines
    return lines[0]


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max())
    return e / e.sum()


# ---------------------------------------------------------------------------------------------------------------
# train


def test_train_writes_model_metrics_and_a_summary(capsys, data_dir, tmp_path):
    out = tmp_path / "run"
    argv = ["train", "--data-dir", str(data_dir), "--out", str(out), "--epochs", "3", "--quiet"]
    assert cli.main(argv) == 0
    stdout, stderr = capsys.readouterr()
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.npz", "metrics.json", "model.npz"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs"] == 3 and len(metrics["train_loss"]) == 3 and len(metrics["val_accuracy"]) == 3
    assert metrics["config"]["sizes"] == [784, 128, 64, 10] and metrics["config"]["preset"] == "seed"
    assert metrics["test_accuracy"] > 0.9  # the classes are easy; chance is 0.1

    lines = stdout.splitlines()
    assert [line.split()[:2] for line in lines[:-1]] == [["epoch", "1/3"], ["epoch", "2/3"], ["epoch", "3/3"]]
    summary = lines[-1]
    match = re.match(r"test accuracy (\d+\.\d\d)% on 500 mnist test images", summary)
    assert match, summary
    assert float(match[1]) == pytest.approx(100 * metrics["test_accuracy"], abs=0.006)
    assert "784-128-64-10" in summary and str(out / "model.npz") in summary
    assert "\r" not in stderr and "img/s" not in stderr  # --quiet: no progress bar
    assert errors_of(stderr, "train") == []

    model, meta, _ = checkpoint.load(out / "model.npz")
    assert model.sizes == [784, 128, 64, 10] and meta["config"]["epochs"] == 3


def test_train_options_reach_the_config(capsys, data_dir, tmp_path):
    argv = ["train", "--data-dir", str(data_dir), "--out", str(tmp_path), "--preset", "3b1b", "--epochs", "1",
            "--batch-size", "100", "--optimizer", "adam", "--seed", "5", "--quiet"]
    assert cli.main(argv) == 0
    config = json.loads((tmp_path / "metrics.json").read_text())["config"]
    assert config["sizes"] == [784, 16, 16, 10] and config["activation"] == "sigmoid"
    assert (config["epochs"], config["batch_size"], config["optimizer"], config["seed"]) == (1, 100, "adam", 5)
    assert config["lr"] == 1e-3  # Adam's usual rate when --lr is not given
    assert "784-16-16-10 sigmoid" in capsys.readouterr().out


def test_train_interrupted_then_resumed_matches_an_uninterrupted_run(capsys, data_dir, tmp_path, monkeypatch):
    common = ["--data-dir", str(data_dir), "--preset", "3b1b", "--epochs", "2", "--batch-size", "100", "--quiet"]
    assert cli.main(["train", "--out", str(tmp_path / "whole"), *common]) == 0

    real, calls = training.F.cross_entropy, [0]

    def cross_entropy(logits, labels):
        calls[0] += 1
        if calls[0] == 14:  # epoch 2, batch 4 of 10
            raise KeyboardInterrupt
        return real(logits, labels)

    monkeypatch.setattr(training.F, "cross_entropy", cross_entropy)
    out = tmp_path / "broken"
    assert cli.main(["train", "--out", str(out), *common]) == 130
    assert (out / "checkpoint.npz").exists() and not (out / "model.npz").exists()
    assert "--resume" in capsys.readouterr().out
    monkeypatch.undo()

    assert cli.main(["train", "--out", str(out), "--resume", str(out / "checkpoint.npz"), *common]) == 0
    whole = json.loads((tmp_path / "whole" / "metrics.json").read_text())
    resumed = json.loads((out / "metrics.json").read_text())
    for key in ("train_loss", "val_accuracy", "test_accuracy", "per_class_accuracy"):
        assert resumed[key] == whole[key], key
    a, b = checkpoint.load(out / "model.npz")[0].state_dict(), checkpoint.load(tmp_path / "whole" / "model.npz")[0]
    for name, array in b.state_dict().items():
        np.testing.assert_array_equal(a[name], array)


def test_train_divergence_exits_1(capsys, data_dir, tmp_path, recwarn):
    code = cli.main(["train", "--data-dir", str(data_dir), "--out", str(tmp_path), "--epochs", "1",
                     "--lr", "1e30", "--quiet"])
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]  # the one-line error says it all
    assert code == 1
    line = errors_of(capsys.readouterr().err, "train")
    assert len(line) == 1 and "diverged" in line[0] and "--lr" in line[0]
    assert not (tmp_path / "model.npz").exists()


@pytest.mark.parametrize("args, complaint", [
    (["--epochs", "0"], "must be positive"),
    (["--epochs", "-3"], "must be positive"),
    (["--epochs", "two"], "got 'two'"),
    (["--lr", "-1"], "must be positive"),
    (["--lr", "0"], "must be positive"),
    (["--batch-size", "0"], "must be positive"),
    (["--optimizer", "rmsprop"], "invalid choice"),
    (["--preset", "huge"], "invalid choice"),
    (["--bogus"], "unrecognized arguments"),
    (["--epochs", "two"], "expected an integer"),
    (["--lr", "x"], "expected a number"),
    (["--seed", "-1"], "zero or more"),
    (["--lr", "inf"], "must be a finite number, got inf"),
    (["--lr", "nan"], "must be a finite number, got nan"),
    (["--out", ""], "an empty path; give a file or folder name"),
])
def test_train_bad_arguments_are_usage_errors(capsys, tmp_path, args, complaint):
    with pytest.raises(SystemExit) as info:
        cli.main(["train", "--out", str(tmp_path / "out"), *args])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert complaint in err and "Traceback" not in err
    # one line, as every mistake: argparse's usage block is what --help is for
    prog = "micrograd-mnist" if args == ["--bogus"] else "micrograd-mnist train"  # the top parser finds extra words
    assert err.count("\n") == 1 and err.startswith(f"{prog}: error: ") and err.endswith(f" (see {prog} --help)\n")
    assert not (tmp_path / "out").exists()


def test_train_without_the_data_files(capsys, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    line = fails(capsys, ["train", "--data-dir", str(empty), "--out", str(tmp_path / "out"), "--epochs", "1"])
    assert "train-images-idx3-ubyte" in line and str(empty) in line
    assert not (tmp_path / "out" / "model.npz").exists()


def test_train_with_some_data_files_missing(capsys, data_dir, tmp_path):
    partial = tmp_path / "partial"
    partial.mkdir()
    for name in data.FILES[:3]:
        (partial / name).write_bytes((data_dir / name).read_bytes())
    assert "t10k-labels-idx1-ubyte" in fails(capsys, ["train", "--data-dir", str(partial), "--out", str(tmp_path)])


def test_train_out_is_a_file(capsys, data_dir, tmp_path):
    (tmp_path / "file").write_text("x")
    line = fails(capsys, ["train", "--data-dir", str(data_dir), "--out", str(tmp_path / "file"), "--epochs", "1"])
    assert "is a file" in line


def test_train_resume_from_final_weights_is_refused(capsys, data_dir, trained, tmp_path):
    line = fails(capsys, ["train", "--data-dir", str(data_dir), "--out", str(tmp_path),
                          "--resume", str(trained / "model.npz")])
    assert "checkpoint.npz" in line
    assert not (tmp_path / "model.npz").exists()


def test_train_resume_from_a_missing_checkpoint(capsys, data_dir, tmp_path):
    line = fails(capsys, ["train", "--data-dir", str(data_dir), "--out", str(tmp_path),
                          "--resume", str(tmp_path / "none.npz")])
    assert "none.npz" in line


# ---------------------------------------------------------------------------------------------------------------
# evaluate


def test_evaluate_prints_per_class_lines_and_writes_the_confusion_matrix(capsys, arrays, data_dir, trained,
                                                                         tmp_path):
    csv = tmp_path / "confusion.csv"
    argv = ["evaluate", str(trained / "model.npz"), "--data-dir", str(data_dir), "--confusion", str(csv)]
    assert cli.main(argv) == 0
    stdout = capsys.readouterr().out
    test_labels = arrays[3]

    rows = [line.split(",") for line in csv.read_text().splitlines()]
    assert len(rows) == 11
    assert rows[0] == ["true\\predicted", *map(str, range(10))]
    assert [row[0] for row in rows[1:]] == list(map(str, range(10)))
    counts = np.array([[int(c) for c in row[1:]] for row in rows[1:]])
    assert counts.shape == (10, 10) and counts.sum() == N_TEST
    np.testing.assert_array_equal(counts.sum(axis=1), np.bincount(test_labels, minlength=10))  # rows are true labels

    # the same numbers as the predictions worked out here by hand from the saved weights
    w = checkpoint.load(trained / "model.npz")[0].state_dict()
    images = arrays[2].reshape(N_TEST, 784).astype(np.float32) / 255
    predicted = (np.maximum(images @ w["0.weight"] + w["0.bias"], 0) @ w["2.weight"] + w["2.bias"]).argmax(axis=1)
    assert abs(np.trace(counts) - (predicted == test_labels).sum()) <= 1
    assert np.trace(counts) / N_TEST > 0.9

    headline = re.search(r"test accuracy (\d+\.\d\d)% on 500 mnist test images", stdout)
    assert headline and float(headline[1]) == pytest.approx(100 * np.trace(counts) / N_TEST, abs=0.006)
    class_lines = re.findall(r"^  class (\d): (\d+\.\d\d)%  \((\d+)/(\d+)\)$", stdout, flags=re.M)
    assert [int(c[0]) for c in class_lines] == list(range(10))
    for digit, percent, right, total in class_lines:
        d = int(digit)
        assert (int(right), int(total)) == (counts[d, d], counts[d].sum())
        assert float(percent) == pytest.approx(100 * counts[d, d] / counts[d].sum(), abs=0.006)
    assert str(csv) in stdout


def test_evaluate_a_model_that_always_says_3(capsys, arrays, data_dir, tmp_path):
    model = MLP([784, 10])
    bias = np.zeros(10, dtype=np.float32)
    bias[3] = 1
    model.load_state_dict({"0.weight": np.zeros((784, 10), dtype=np.float32), "0.bias": bias})
    checkpoint.save(tmp_path / "three.npz", model, {})
    csv = tmp_path / "confusion.csv"
    argv = ["evaluate", str(tmp_path / "three.npz"), "--data-dir", str(data_dir), "--confusion", str(csv)]
    assert cli.main(argv) == 0
    stdout = capsys.readouterr().out

    per_class = np.bincount(arrays[3], minlength=10)
    expected = np.zeros((10, 10), dtype=int)
    expected[:, 3] = per_class  # every true class lands in the predicted-3 column
    rows = csv.read_text().splitlines()[1:]
    np.testing.assert_array_equal(np.array([[int(c) for c in row.split(",")[1:]] for row in rows]), expected)
    assert f"test accuracy {100 * per_class[3] / N_TEST:.2f}%" in stdout
    assert f"  class 3: 100.00%  ({per_class[3]}/{per_class[3]})" in stdout
    assert f"  class 0: 0.00%  (0/{per_class[0]})" in stdout


def test_evaluate_without_confusion_writes_no_file(capsys, data_dir, trained, tmp_path):
    assert cli.main(["evaluate", str(trained / "checkpoint.npz"), "--data-dir", str(data_dir)]) == 0
    assert "class 9:" in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == []


def test_evaluate_without_the_data_files(capsys, trained, tmp_path):
    line = fails(capsys, ["evaluate", str(trained / "model.npz"), "--data-dir", str(tmp_path)])
    assert "idx" in line


def test_evaluate_corrupt_checkpoint(capsys, data_dir, tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04" + b"\x00" * 40)
    assert "bad.npz" in fails(capsys, ["evaluate", str(bad), "--data-dir", str(data_dir)])


def test_evaluate_truncated_checkpoint(capsys, data_dir, trained, tmp_path):
    whole = (trained / "model.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(whole[: len(whole) // 3])
    line = fails(capsys, ["evaluate", str(tmp_path / "cut.npz"), "--data-dir", str(data_dir)])
    assert "cut.npz is not a readable .npz checkpoint" in line


def test_evaluate_pickled_checkpoint(capsys, data_dir, trained, tmp_path):
    with np.load(trained / "model.npz") as archive:
        arrays = dict(archive)
    arrays["param/0.bias"] = np.array([{"not": "an array"}], dtype=object)
    np.savez(tmp_path / "evil.npz", **arrays)
    line = fails(capsys, ["evaluate", str(tmp_path / "evil.npz"), "--data-dir", str(data_dir)])
    assert "pickle" in line


def test_evaluate_missing_checkpoint(capsys, data_dir, tmp_path):
    assert "nothing.npz" in fails(capsys, ["evaluate", str(tmp_path / "nothing.npz"), "--data-dir", str(data_dir)])


# ---------------------------------------------------------------------------------------------------------------
# predict


@pytest.fixture
def digit_png(arrays, tmp_path) -> Path:
    path = tmp_path / "digit.png"
    Image.fromarray(arrays[2][0]).save(path)
    return path


def test_predict_prints_ten_probabilities(capsys, trained, digit_png):
    assert cli.main(["predict", str(trained / "model.npz"), str(digit_png)]) == 0
    lines = capsys.readouterr().out.splitlines()
    head = re.fullmatch(rf"{re.escape(str(digit_png))}: (\d) \((\d+\.\d)%\)", lines[0])
    assert head, lines[0]
    rows = [re.match(r"^  (\d): +(\d+\.\d\d)% ", line + " ") for line in lines[1:]]
    assert len(rows) == 10 and all(rows), lines
    assert [int(r[1]) for r in rows] == list(range(10))
    percents = np.array([float(r[2]) for r in rows])
    assert percents.sum() == pytest.approx(100, abs=0.06)
    assert int(head[1]) == percents.argmax()
    assert float(head[2]) == pytest.approx(percents.max(), abs=0.06)

    # the printed numbers are softmax of the saved network's output, worked out here by hand
    w = checkpoint.load(trained / "model.npz")[0].state_dict()
    x = load_digit(digit_png)
    expected = 100 * softmax(np.maximum(x @ w["0.weight"] + w["0.bias"], 0) @ w["2.weight"] + w["2.bias"])
    np.testing.assert_allclose(percents, expected, atol=0.006)


def test_predict_missing_image(capsys, trained, tmp_path):
    line = fails(capsys, ["predict", str(trained / "model.npz"), str(tmp_path / "nope.png")])
    assert "nope.png" in line


@pytest.mark.parametrize("content", [b"", b"just some text\n", b"\x89PNG\r\n\x1a\n\x00\x00"])
def test_predict_non_image_file(capsys, trained, tmp_path, content):
    fake = tmp_path / "fake.png"
    fake.write_bytes(content)
    assert "fake.png" in fails(capsys, ["predict", str(trained / "model.npz"), str(fake)])


def test_predict_corrupt_checkpoint(capsys, digit_png, tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"\x00garbage")
    assert "bad.npz" in fails(capsys, ["predict", str(bad), str(digit_png)])


def test_predict_npy_instead_of_npz(capsys, digit_png, tmp_path):
    np.save(tmp_path / "weights.npy", np.zeros(10))
    assert "weights.npy" in fails(capsys, ["predict", str(tmp_path / "weights.npy"), str(digit_png)])


def test_predict_pickled_checkpoint(capsys, trained, digit_png, tmp_path):
    with np.load(trained / "model.npz") as archive:
        arrays = dict(archive)
    arrays["meta"] = np.array([{"sizes": [784, 16, 10]}], dtype=object)
    np.savez(tmp_path / "evil.npz", **arrays)
    assert "pickle" in fails(capsys, ["predict", str(tmp_path / "evil.npz"), str(digit_png)])


def test_predict_needs_both_arguments(capsys, trained):
    with pytest.raises(SystemExit) as info:
        cli.main(["predict", str(trained / "model.npz")])
    assert info.value.code == 2
    assert "IMAGE" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------------------------
# train --resume: where it writes, which settings it takes


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
    assert errors_of(err, "train") == []
    assert (tmp_path / "run" / "model.npz").exists()
    assert str(tmp_path / "run" / "model.npz") in out
    assert not (tmp_path / "runs").exists()


def test_train_resume_refuses_a_changed_setting_but_accepts_the_same_ones(capsys, data_dir, tmp_path):
    ckpt = train_once(capsys, data_dir, tmp_path / "run")
    line = fails(capsys, ["train", "--data-dir", str(data_dir), "--resume", str(ckpt), "--epochs", "7"])
    assert "drop --epochs 7" in line and "(it was 1)" in line

    argv = ["train", "--data-dir", str(data_dir), "--resume", str(ckpt), *TINY_RUN, "--quiet"]
    assert cli.main(argv) == 0
    assert errors_of(capsys.readouterr().err, "train") == []
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["config"]["batch_size"] == 500


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
# predict and evaluate: blank pictures, networks that don't take digits


def digits_checkpoint(path: Path, sizes: list[int]) -> Path:
    checkpoint.save(path, MLP(sizes, rng=np.random.default_rng(0)), {})
    return path


@pytest.mark.parametrize("mode, colour", [("L", 255), ("RGBA", (0, 0, 0, 0))], ids=["white", "transparent"])
def test_predict_on_a_blank_image_is_one_line(capsys, tmp_path, mode, colour):
    ckpt = digits_checkpoint(tmp_path / "model.npz", [784, 10])
    image = tmp_path / "blank.png"
    Image.new(mode, (28, 28), colour).save(image)
    assert "no ink" in fails(capsys, ["predict", str(ckpt), str(image)])


@pytest.mark.parametrize("command", ["evaluate", "predict"])
def test_evaluate_and_predict_need_a_digits_network(capsys, tmp_path, command):
    ckpt = digits_checkpoint(tmp_path / "small.npz", [4, 3])
    image = tmp_path / "digit.png"
    Image.new("L", (28, 28), 0).save(image)
    argv = [command, str(ckpt)] + ([str(image)] if command == "predict" else [])
    line = fails(capsys, argv)
    assert "784 inputs" in line and "4-3" in line
