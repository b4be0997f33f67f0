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
    accuracy = moons.train(steps=30, log=lines.append)
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
    assert 0 <= percent <= 100


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
