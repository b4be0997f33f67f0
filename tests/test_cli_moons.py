"""micrograd's two-moons demo and the command line."""

from __future__ import annotations

import micrograd.engine
import numpy as np
import pytest

from micrograd_mnist import Value, cli, moons
from micrograd_mnist.nn import scalar

# --- data ----------------------------------------------------------------------


def test_make_moons_shapes_and_labels():
    X, y = moons.make_moons(100)
    assert X.shape == (100, 2) and y.shape == (100,)
    assert set(np.unique(y)) == {-1, 1}
    assert np.sum(y == -1) == 50 and np.sum(y == 1) == 50
    X7, y7 = moons.make_moons(7)
    assert X7.shape == (7, 2) and list(y7) == [-1, -1, -1, 1, 1, 1, 1]


def test_make_moons_is_seeded():
    a, b, c = moons.make_moons(50, seed=3), moons.make_moons(50, seed=3), moons.make_moons(50, seed=4)
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.allclose(a[0], c[0])


def test_make_moons_without_noise_lies_on_two_half_circles():
    X, y = moons.make_moons(200, noise=0.0)
    upper, lower = X[y == -1], X[y == 1]
    np.testing.assert_allclose(np.hypot(upper[:, 0], upper[:, 1]), 1.0)  # unit circle, top half
    assert np.all(upper[:, 1] >= 0)
    np.testing.assert_allclose(np.hypot(lower[:, 0] - 1, lower[:, 1] - 0.5), 1.0)  # centred (1, 0.5), bottom half
    assert np.all(lower[:, 1] <= 0.5)


# --- model and training -------------------------------------------------------------


def test_make_model_with_our_value_class_passed_explicitly():
    default, explicit = moons.make_model(), moons.make_model(value=Value)
    params = explicit.parameters()
    assert len(params) == (2 * 16 + 16) + (16 * 16 + 16) + (16 + 1)
    assert all(type(p) is Value for p in params)
    assert [p.data for p in params] == [p.data for p in default.parameters()]
    named = explicit.named_parameters()
    assert all(-1 <= v.data <= 1 for v in np.ravel(np.array(named["0.weight"], dtype=object)))
    assert all(v.data == 0.0 for name in ("0.bias", "2.bias", "4.bias") for v in named[name])
    assert np.std([v.data for v in np.ravel(np.array(named["2.weight"], dtype=object))]) > 0.3  # U(-1, 1): std 0.58


def test_scalar_mirror_drives_another_value_class():
    """The benchmark runs micrograd's own Value through this code: both classes must compute the same."""
    X, y = moons.make_moons(20)
    ours = moons.make_model(value=Value)
    theirs = moons.make_model(value=micrograd.engine.Value)
    assert all(type(p) is micrograd.engine.Value for p in theirs.parameters())
    for k in range(3):
        loss_ours, acc_ours = moons.step(ours, X, y, k, steps=3, value=Value)
        loss_theirs, acc_theirs = moons.step(theirs, X, y, k, steps=3, value=micrograd.engine.Value)
        assert loss_ours == pytest.approx(loss_theirs, rel=1e-9) and acc_ours == acc_theirs
    np.testing.assert_allclose([p.data for p in ours.parameters()], [p.data for p in theirs.parameters()],
                               rtol=1e-9, atol=1e-12)


def test_scalar_mirror_labels_its_leaves():
    model = scalar.MLP([2, 3, 1])
    assert model.named_parameters()["0.weight"][1][2].label == "W0[1,2]"
    assert model.named_parameters()["2.bias"][0].label == "b2[0]"


def test_loss_is_the_hinge_plus_l2_of_micrograds_demo():
    X, y = moons.make_moons(10)
    model = moons.make_model()
    total, accuracy = moons.loss(model, X, y)
    scores = np.array([model([float(a) for a in row])[0].data for row in X])
    params = np.array([p.data for p in model.parameters()])
    expected = np.mean(np.maximum(0, 1 - y * scores)) + 1e-4 * np.sum(params ** 2)
    assert total.data == pytest.approx(expected, rel=1e-12)
    assert accuracy == pytest.approx(np.mean((y > 0) == (scores > 0)))


def test_training_separates_the_moons():
    lines = []
    run = moons.train(steps=30, log=lines.append)
    accuracy = run.accuracy
    assert run.X.shape == (100, 2) and set(run.y) == {-1, 1}  # the points it learned, for the picture
    assert accuracy >= 0.85  # micrograd's demo reaches ~0.96 here
    assert len(lines) == 4 and lines[0].startswith("step   0") and lines[-1].startswith("step  29")
    first_loss, last_loss = (float(line.split("loss")[1].split()[0]) for line in (lines[0], lines[-1]))
    assert last_loss < first_loss / 2


# --- command line ---------------------------------------------------------------------


def test_cli_unknown_option_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["moons", "--no-such-option"])
    assert exit_info.value.code == 2
    assert "unrecognized arguments" in capsys.readouterr().err


def test_cli_moons_runs_and_reports_accuracy(capsys):
    assert cli.main(["moons", "--steps", "5"]) == 0
    out = capsys.readouterr().out
    assert "moons: training accuracy" in out and "at step 5" in out
    percent = int(out.strip().splitlines()[-1].split("accuracy")[1].split("%")[0])
    assert percent == round(100 * moons.train(5, 1, log=lambda *_: None).accuracy)  # the CLI's seed is 1


def test_cli_rejects_unknown_options_of_real_commands(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["moons", "--stepz", "5"])
    assert info.value.code == 2
    assert "--stepz" in capsys.readouterr().err


def test_cli_rejects_zero_steps(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["moons", "--steps", "0"])
    assert info.value.code == 2
    assert "--steps" in capsys.readouterr().err


def test_cli_without_a_command_prints_help(capsys):
    assert cli.main([]) == 0
    out = capsys.readouterr().out
    assert "usage: micrograd-mnist" in out and "moons" in out


# --- the decision boundary picture ------------------------------------------------------


def test_decision_grid_scores_are_the_trained_models():
    X, y = moons.make_moons(30, seed=1)
    model = moons.make_model(seed=1)
    for k in range(5):
        moons.step(model, X, y, k, steps=5)
    xx, yy, scores = moons.decision_grid(model, X, n=40)
    assert xx.shape == yy.shape == scores.shape == (40, 40)
    assert xx.min() == pytest.approx(X[:, 0].min() - 1) and yy.max() == pytest.approx(X[:, 1].max() + 1)
    assert (scores > 0).any() and (scores < 0).any()  # the boundary crosses the picture
    for i, j in [(0, 0), (5, 31), (20, 20), (39, 7), (39, 39)]:
        by_scalar_engine = model([float(xx[i, j]), float(yy[i, j])])[0].data
        assert scores[i, j] == pytest.approx(by_scalar_engine, rel=1e-9, abs=1e-12)
    np.testing.assert_allclose(moons.scores(model, X), [model(list(row))[0].data for row in X], rtol=1e-9)


def test_cli_moons_out_draws_the_boundary(capsys, tmp_path):
    from PIL import Image

    from viz import plots

    out = tmp_path / "pictures"
    assert cli.main(["moons", "--steps", "8", "--out", str(out)]) == 0
    assert f"wrote {out / 'moons.png'}" in capsys.readouterr().out
    assert [p.name for p in out.iterdir()] == ["moons.png"]
    with Image.open(out / "moons.png") as image:
        assert image.format == "PNG"
        assert image.size == tuple(round(v * plots.DPI) for v in plots.FIGSIZE["moons"])
        pixels = np.asarray(image.convert("RGB"), dtype=float)
    assert pixels.std() > 10
    blueish = (pixels[..., 2] > pixels[..., 0] + 20).mean()
    reddish = (pixels[..., 0] > pixels[..., 2] + 20).mean()
    assert blueish > 0.1 and reddish > 0.1  # both regions are there, each a good part of the picture


def test_cli_moons_out_onto_a_file_is_a_one_line_error(capsys, tmp_path):
    existing = tmp_path / "a-file"
    existing.write_text("keep me")
    assert cli.main(["moons", "--steps", "1", "--out", str(existing)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # refused before training
    assert captured.err.count("\n") == 1 and captured.err.startswith("micrograd-mnist moons: ")
    assert str(existing) in captured.err and "folder" in captured.err
    assert existing.read_text() == "keep me"


def test_training_without_out_imports_no_matplotlib():
    import subprocess
    import sys

    code = ("import sys; from micrograd_mnist import moons; moons.train(steps=1, log=lambda line: None); "
            "print('matplotlib' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "False\n"
