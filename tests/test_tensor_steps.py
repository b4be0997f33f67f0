"""Backprop through whole layers: `tensor_steps.steps` does `Tensor.backward()`'s work bit for bit, says
each step's rule, shapes and sums in words, and any one entry of a gradient is the sum of the scalar
engine's chain-rule terms on the same weights (the mirror)."""

from __future__ import annotations

import re

import numpy as np
import pytest
from conftest import scripted
from hypothesis import given, settings
from hypothesis import strategies as st

from micrograd_mnist import Tensor, cli, nn
from micrograd_mnist.demos import SEED_INPUTS, SEED_WEIGHTS, seed_layer
from micrograd_mnist.graph import toposort
from micrograd_mnist.nn import functional as F
from micrograd_mnist.nn import scalar
from micrograd_mnist.tensor_steps import matrix, mirror, parse_entry, steps
from micrograd_mnist.value import Value


def leaves(root: Tensor) -> list[Tensor]:
    return [n for n in toposort(root) if n.op is None and n.requires_grad]


def test_seed_layer_forward_is_the_seed_table():
    demo = seed_layer()
    Y = demo.tensors["Y"].data
    # the seed text's outputs, as printed there, row by row
    assert np.round(Y, 3).tolist() == [[4.8, 1.21, 2.385], [3.31, 1.662, 1.661], [3.31, 2.001, 0.381]]
    # and by hand: one neuron is a dot product plus a bias
    assert Y[0, 0] == pytest.approx(np.dot(SEED_WEIGHTS[0], SEED_INPUTS[0]) + 2.0)


def test_seed_layer_steps_equal_backward_bit_for_bit():
    stepped, backwarded = seed_layer(), seed_layer()
    walk = list(steps(stepped.loss))
    backwarded.loss.backward()
    assert [s.op.name for s in walk] == ["mean", "pow", "sub", "linear"]
    for a, b in zip(leaves(stepped.loss), leaves(backwarded.loss)):
        assert a.grad.tobytes() == b.grad.tobytes(), a.label


def mlp_pair(sizes, activation, seed, batch, loss):
    """The same network (same weights) twice, with its loss: one to step, one to backward()."""
    rng = np.random.default_rng(seed)
    model = nn.MLP(sizes, activation, rng=rng, dtype=np.float64)
    x = rng.normal(size=(batch, sizes[0]))
    labels = rng.integers(0, sizes[-1], batch)
    target = rng.normal(size=(batch, sizes[-1]))

    def build():
        twin = nn.MLP(sizes, activation, dtype=np.float64)
        twin.load_state_dict(model.state_dict())
        out = twin(Tensor(x))
        return twin, (F.cross_entropy(out, labels) if loss == "ce" else F.mse(out, target))

    return build, model, x, labels, target


@settings(max_examples=25)
@given(st.lists(st.integers(1, 5), min_size=2, max_size=4), st.sampled_from(["relu", "sigmoid", "tanh"]),
       st.integers(0, 10**6), st.integers(1, 4), st.sampled_from(["mse", "ce"]))
def test_random_mlps_step_exactly_like_backward(sizes, activation, seed, batch, loss):
    build = mlp_pair(sizes, activation, seed, batch, loss)[0]
    (m1, l1), (m2, l2) = build(), build()
    walk = list(steps(l1))
    l2.backward()
    for (name, p1), (_, p2) in zip(m1.named_parameters(), m2.named_parameters()):
        assert p1.grad.tobytes() == p2.grad.tobytes(), name
    assert len(walk) == len([n for n in toposort(l1) if n.op is not None])


def test_every_step_says_its_rule_shapes_and_sums(capsys):
    assert cli.main(["backprop", "seed-layer", "--all"]) == 0
    out = capsys.readouterr().out
    for row in ("[ 4.800  1.210  2.385 ]", "[ 3.310  1.662  1.661 ]", "[ 3.310  2.001  0.381 ]"):
        assert row in out  # the seed table, exactly as printed there
    assert "step 4: Y = X @ W + b   (3, 3)   [linear]" in out
    assert "dL/dW += Xᵀ · dL/dY      shapes: (4, 3) · (3, 3) → (4, 3)" in out
    assert ("dL/db += Σ dL/dY over the batch      shapes: (3, 3) → (3, 3), "
            "summed over axis 0 (the batch: 3 rows → 1) → (3,)") in out
    assert "dL/dE += dL/dt1 ⊙ 2·E      shapes: (3, 3) ⊙ (3, 3) → (3, 3)" in out
    assert "(no gradient for X: nothing asks for it" in out
    assert "-0.000" not in out
    demo = seed_layer()
    demo.loss.backward()
    assert matrix(demo.tensors["W"].grad) in out  # the numbers printed are the engine's


@pytest.mark.parametrize("name", ["W", "b", "Y", "E"])
def test_the_mirror_sums_to_the_cell_for_every_entry_of_the_seed_layer(name):
    demo = seed_layer()
    list(steps(demo.loss))
    grad = demo.tensors[name].grad
    for index in np.ndindex(grad.shape):
        m = mirror(grad, name, index, demo.scalar_loss())
        assert m.terms, index
        assert m.total == pytest.approx(m.cell, rel=1e-12, abs=1e-12), (name, index)
    if name == "W":  # a weight feeds one output unit in every row of the batch: one term per row
        assert len(mirror(grad, "W", (2, 1), demo.scalar_loss()).terms) == len(SEED_INPUTS)


@settings(max_examples=10)
@given(st.integers(0, 10**6), st.sampled_from(["relu", "sigmoid", "tanh"]))
def test_the_mirror_matches_random_entries_of_every_layer(seed, activation):
    sizes, batch = [3, 4, 3, 2], 3
    build, model, x, _, target = mlp_pair(sizes, activation, seed, batch, "mse")
    twin, loss = build()
    list(steps(loss))

    def scalar_loss() -> Value:  # the same MLP from Values (nn.scalar) and the same mean squared error
        net = scalar.MLP(sizes, activation)
        net.load_state_dict(model.state_dict())
        squares = [(y - t) ** 2 for row, ts in zip(x, target) for y, t in zip(net([Value(v) for v in row]), ts)]
        return sum(squares[1:], squares[0]) / len(squares)

    rng = np.random.default_rng(seed)
    for key, p in twin.named_parameters():
        layer, kind = key.split(".")
        index = tuple(int(rng.integers(n)) for n in p.shape)
        m = mirror(p.grad, f"{'W' if kind == 'weight' else 'b'}{layer}", index, scalar_loss())
        assert m.total == pytest.approx(m.cell, rel=1e-9, abs=1e-12), (key, index)


def test_small_and_big_arrays():
    assert matrix(np.array([[-0.0001, 2.0]])) == "      [ 0.000  2.000 ]"  # never -0.000, columns aligned
    big = matrix(np.arange(784.0).reshape(28, 28))
    assert big.strip().startswith("(28, 28): mean 392, min 0, max 783, 783 of 784 not 0; first entries 0, 1, 2, 3")
    tiny = matrix(np.array([[0.00012, -0.0004]]))  # small gradients keep two significant digits
    assert tiny == "      [  0.00012  -0.00040 ]"


@pytest.mark.parametrize(("argv", "message"), [
    (["--mirror", "V[0,0]"], "no gradient named 'V'; choose one of W (4, 3), b (3,)"),
    (["--mirror", "X[0,0]"], "no gradient named 'X'"),  # the data asks for no gradient
    (["--mirror", "W[4,0]"], "W has shape (4, 3); indices run from 0 to 3, 2"),
    (["--mirror", "W[1]"], "W has shape (4, 3)"),
    (["--mirror", "W3"], "--mirror takes NAME[i,j]"),
    (["--expr", "a"], "give exactly one of a DEMO"),
    (["--frames", "frames"], "seed-layer steps through matrices"),
])
def test_tensor_walkthrough_errors_are_one_line(capsys, argv, message):
    assert cli.main(["backprop", "seed-layer", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_mirror_on_a_value_graph_is_refused(capsys):
    assert cli.main(["backprop", "single-neuron", "--mirror", "w[0]"]) == 2
    assert "--mirror is for the Tensor walk-throughs" in capsys.readouterr().err


def test_parse_entry():
    assert parse_entry("W1[3,2]") == ("W1", (3, 2))
    assert parse_entry(" b [ 1 ] ") == ("b", (1,))
    for bad in ("W", "W[]", "W[-1]", "W[1;2]", "1W[0]"):
        with pytest.raises(ValueError, match=re.escape(f"--mirror takes NAME[i,j] (e.g. W[2,1]), got {bad!r}")):
            parse_entry(bad)


def test_cli_mirror_prints_terms_and_their_sum(capsys):
    assert cli.main(["backprop", "seed-layer", "--mirror", "W[2,1]"]) == 0
    out = capsys.readouterr().out
    demo = seed_layer()
    demo.loss.backward()
    cell = demo.tensors["W"].grad[2, 1]
    assert f"the scalar mirror of dL/dW[2,1] = {cell:.4f}" in out
    assert out.count("∂(X[") == 3  # one chain-rule term per row of the batch
    assert "sum of the 3 scalar terms = " in out and f"(the tensor cell: {cell:.4f}; difference" in out


# --- 3Blue1Brown's network on one digit -----------------------------------------------------------------


def test_3b1b_digit_from_a_short_built_in_run(capsys, data_dir):
    argv = ["backprop", "3b1b-digit", "--data-dir", str(data_dir), "--digit", "3", "--mirror", "W1[400,5]"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "MNIST test image 3" in out
    assert [line.split(":")[0] for line in out.splitlines() if line.startswith("step ")] == [
        f"step {k}" for k in range(1, 7)]  # CE, then three linear layers and two sigmoids
    assert "dL/dW1 += Xᵀ · dL/dZ1      shapes: (784, 1) · (1, 16) → (784, 16)" in out
    assert "dL/dZ1 += dL/dA1 ⊙ (A1·(1 − A1))" in out  # the sigmoid's rule, entry by entry
    assert "sum of the 1 scalar term = " in out  # one digit, and a first-layer weight feeds one neuron


def test_3b1b_digit_mirror_matches_every_layer(mnist):
    from micrograd_mnist.demos import quick_3b1b, three_b1b_digit

    model = quick_3b1b(mnist.train_images[:300], mnist.train_labels[:300], epochs=1, log=lambda line: None)
    demo = three_b1b_digit(model, mnist.test_images[0], int(mnist.test_labels[0]))
    list(steps(demo.loss))
    rng = np.random.default_rng(1)
    scalar_loss = demo.scalar_loss()
    for name, tensor in demo.tensors.items():
        index = tuple(int(rng.integers(n)) for n in tensor.shape)
        m = mirror(tensor.grad, name, index, scalar_loss)
        assert m.total == pytest.approx(m.cell, rel=1e-9, abs=1e-15), (name, index)


def test_3b1b_digit_refuses_other_networks_and_digits(capsys, data_dir, tmp_path):
    from micrograd_mnist import checkpoint

    other = tmp_path / "other.npz"
    checkpoint.save(other, nn.MLP([784, 8, 10], "relu"), {})
    assert cli.main(["backprop", "3b1b-digit", "--data-dir", str(data_dir), "--checkpoint", str(other)]) == 2
    assert "needs the 784-16-16-10 sigmoid network" in capsys.readouterr().err
    assert cli.main(["backprop", "3b1b-digit", "--data-dir", str(data_dir), "--digit", "99999"]) == 2
    assert "--digit 99999: there are 500 test images" in capsys.readouterr().err
    assert cli.main(["backprop", "seed-layer", "--digit", "3"]) == 2
    assert "--checkpoint, --digit and --data-dir choose the network and digit of 3b1b-digit" in capsys.readouterr().err


# --- the quiz on matrices: shapes, then one entry ---------------------------------------------------------


def seed_quiz(answers: list[str]):
    from micrograd_mnist import walkthrough
    from micrograd_mnist.backprop import Names
    from micrograd_mnist.tensor_steps import frames

    demo = seed_layer()
    names = Names(demo.loss)
    intro, fs = frames(demo.loss)
    shown: list[str] = []  # prompts and lines, in the order the learner sees them
    return walkthrough.tensor_quiz(intro, fs, "L", names, read=scripted(answers, shown), write=shown.append), shown, fs


def right_answers() -> list[str]:
    """Each gradient's shape and its biggest entry, from the step records."""
    _, _, fs = seed_quiz([])
    out = []
    for f in fs:
        for e in f.step.edges:
            shape = e.added.shape
            out += [",".join(map(str, shape)) or "number", f"{e.added.flat[np.abs(e.added).argmax()]:.4f}"]
    return out


def test_tensor_quiz_right_answers_score_full_marks():
    (score, shown, fs) = seed_quiz(right_answers())
    assert score == (5, 5)  # t1, E, Y, W, b
    assert "  what shape is dL/dW? " in shown and "  dL/dW[3,0] = ? " in shown
    assert shown[-1] == "\nscore: 5/5 gradients right first time"


def test_tensor_quiz_hints_the_shape_rule_and_the_entry():
    answers = right_answers()
    w = answers.index("4,3")
    answers[w:w + 1] = ["3,4", "4x3"]  # Xᵀ's shape by mistake, then right (written another way)
    answers[w + 2:w + 3] = ["0", "0", ]  # the entry twice wrong
    (score, shown, _) = seed_quiz(answers)
    assert "  ✗ not yet: hint: a gradient has the shape of what it is the gradient of: W is (4, 3)" in shown
    assert "  ✓ right (second try)" in shown
    assert "  ✗ not yet: hint: dL/dW += Xᵀ · dL/dY: take entry [3,0] of it" in shown
    assert any(line.startswith("  ✗ the answer: 3.2144, entry [3,0] of Xᵀ · dL/dY") for line in shown)
    assert score == (4, 5) and "to look at again: step 4: dL/dW" in shown[-1]


def test_parse_shape():
    from micrograd_mnist.walkthrough import parse_shape

    for text, shape in [("4,3", (4, 3)), ("(4, 3)", (4, 3)), ("4x3", (4, 3)), ("4 × 3", (4, 3)), ("3", (3,)),
                        ("(3,)", (3,)), ("number", ()), ("()", ())]:
        assert parse_shape(text) == shape, text
    for bad in ("four", "4,,3", "-4,3", ""):
        assert parse_shape(bad) is None, bad


def test_cli_tensor_quiz_reads_stdin(capsys, monkeypatch):
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO("".join(a + "\n" for a in right_answers())))
    assert cli.main(["backprop", "seed-layer", "--quiz"]) == 0
    assert "score: 5/5 gradients right first time" in capsys.readouterr().out
