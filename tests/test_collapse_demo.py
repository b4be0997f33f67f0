"""`demo two-layer-collapse`: a 1 → 3 → 1 network of Values, the one layer it collapses to, and its ReLU variant."""

from __future__ import annotations

import re

import numpy as np
import pytest
from PIL import Image

from micrograd_mnist import Value, cli, demos
from micrograd_mnist.graph import toposort
from viz import plots


def forward(make, x: float) -> float:
    return make(Value(x)).data


def relu_net(x: Value) -> Value:
    return demos.collapse_stack(x, relu=True)


def test_collapsed_weights_are_the_products_of_the_layers():
    W1, b1 = np.array(demos.COLLAPSE_W1), np.array(demos.COLLAPSE_B1)
    W2, b2 = np.array(demos.COLLAPSE_W2), np.array(demos.COLLAPSE_B2)
    W, b = demos.collapsed_weights()
    assert W.shape == (1, 1) and b.shape == (1,)
    # written out by hand: y = Σ_j (x·W1[j] + b1[j])·W2[j] + b2 = x·Σ_j W1[j]·W2[j] + (Σ_j b1[j]·W2[j] + b2)
    assert W[0, 0] == pytest.approx(sum(W1[0, j] * W2[j, 0] for j in range(3)))
    assert b[0] == pytest.approx(sum(b1[j] * W2[j, 0] for j in range(3)) + b2[0])


def test_the_collapsed_layer_reproduces_the_stacked_network():
    W, b = demos.collapsed_weights()
    for x in np.random.default_rng(0).uniform(-10, 10, 20):
        stacked = forward(demos.collapse_stack, float(x))
        assert forward(demos.collapse_single, float(x)) == pytest.approx(stacked, abs=1e-12)
        assert x * W[0, 0] + b[0] == pytest.approx(stacked, abs=1e-12)


def test_both_graphs_give_the_same_gradients():
    for x0, t in ((1.5, 2.0), (-2.3, 0.7), (0.4, -1.0)):
        grads = []
        for make in (demos.collapse_stack, demos.collapse_single):
            x = Value(x0, "x")
            y = make(x)
            loss = demos.collapse_loss(y, t)
            loss.backward()
            grads.append((y.grad, x.grad))
        (dy2, dx2), (dy1, dx1) = grads
        assert dy2 == pytest.approx(dy1, abs=1e-12) and dx2 == pytest.approx(dx1, abs=1e-12)
        y = forward(demos.collapse_stack, x0)
        assert dy2 == pytest.approx(2 * (y - t))  # by hand: dL/dy = 2(y − t), dL/dx = dL/dy · W
        assert dx2 == pytest.approx(2 * (y - t) * demos.collapsed_weights()[0][0, 0])


def test_the_stacked_graph_is_built_of_one_value_per_number():
    nodes = toposort(demos.collapse_stack(Value(1.0, "x")))
    labels = {n.label for n in nodes}
    assert {"x", "b2", "y"} | {f"{p}[{j}]" for p in ("W1", "b1", "W2", "z") for j in range(3)} <= labels
    assert not any(n.op is not None and n.op.name == "relu" for n in nodes)
    relu_nodes = toposort(relu_net(Value(1.0, "x")))
    assert sum(n.op is not None and n.op.name == "relu" for n in relu_nodes) == 3


def test_the_relu_variant_is_not_a_straight_line():
    lo, hi = demos.COLLAPSE_RANGE
    xs = np.linspace(lo, hi, 61)
    ys = np.array([forward(relu_net, float(x)) for x in xs])
    line = np.polyval(np.polyfit(xs, ys, 1), xs)
    assert np.abs(ys - line).max() > 0.3
    linear = np.array([forward(demos.collapse_stack, float(x)) for x in xs])
    assert np.abs(linear - np.polyval(np.polyfit(xs, linear, 1), xs)).max() < 1e-9
    # every bend lies inside the range drawn, and the slope (by backprop) changes at each
    bends = sorted(-b / w for w, b in zip(demos.COLLAPSE_W1[0], demos.COLLAPSE_B1))
    assert all(lo < k < hi for k in bends)
    slopes = []
    for x0 in [(a + b) / 2 for a, b in zip([lo, *bends], [*bends, hi])]:
        x = Value(x0)
        relu_net(x).backward()
        slopes.append(x.grad)
    assert min(abs(a - b) for a, b in zip(slopes, slopes[1:])) > 0.1


def test_closest_line_is_no_worse_than_least_squares_and_touches_three_points():
    xs = np.linspace(-3, 3, 121)
    ys = np.array([forward(relu_net, float(x)) for x in xs])
    a, c = demos._closest_line(xs, ys)
    worst = np.abs(ys - (a * xs + c)).max()
    assert worst <= np.abs(ys - np.polyval(np.polyfit(xs, ys, 1), xs)).max() + 1e-12
    for da, dc in ((0.01, 0), (-0.01, 0), (0, 0.01), (0, -0.01)):  # a nudged line misses by more
        assert np.abs(ys - ((a + da) * xs + c + dc)).max() > worst
    assert (np.abs(ys - (a * xs + c)) > worst - 1e-9).sum() >= 3  # Chebyshev: the misses alternate


def test_numbers_are_printed_without_a_negative_zero():
    assert demos._num(-0.001) == "0.00" and demos._num(-0.006) == "-0.01" and demos._num(0.5, 1) == "0.5"
    assert demos._matrix("W2", [[0.8], [-1.5]]) == ["W2 (2×1) = [  0.80 ]",
                                                          " " * len("W2 (2×1) = ") + "[ -1.50 ]"]


def test_printed_matrices_and_table():
    logged: list[str] = []
    assert demos.run("two-layer-collapse", None, log=logged.append) == []
    text = "\n".join(logged)
    lines = text.splitlines()

    def matrix(name: str) -> list[list[float]]:
        """The rows printed after `name (r×c) ... = [`, read back from the bracketed columns."""
        first = next(i for i, line in enumerate(lines) if re.search(rf"(^|\s){re.escape(name)} \(\d×\d\)", line))
        column = lines[first].index("[", lines[first].index(name))
        rows = []
        for line in lines[first:]:
            if len(line) <= column or line[column] != "[":
                break
            rows.append([float(v) for v in line[column + 1:line.index("]", column)].split()])
        return rows

    assert matrix("W1") == demos.COLLAPSE_W1 and matrix("b1") == [demos.COLLAPSE_B1]
    assert matrix("W2") == demos.COLLAPSE_W2 and matrix("b2") == [demos.COLLAPSE_B2]
    W, b = demos.collapsed_weights()
    np.testing.assert_allclose(matrix("W"), W, atol=0.005)
    np.testing.assert_allclose(matrix("b"), [b], atol=0.005)
    y = forward(demos.collapse_stack, demos.COLLAPSE_X)
    assert re.search(rf"^  y\s+{y:.4f}\s+{y:.4f}\s+0\.0e\+00$", text, flags=re.M)
    assert "-0.00" not in text


def test_the_pictures(tmp_path, monkeypatch):
    drawn = {}
    collapse_lines = plots.collapse_lines

    def capture(x, two_layer, collapsed, relu, path, **kwargs):
        drawn.update(x=x, two_layer=two_layer, collapsed=collapsed, relu=relu, **kwargs)
        return collapse_lines(x, two_layer, collapsed, relu, path, **kwargs)

    monkeypatch.setattr(plots, "collapse_lines", capture)
    out = tmp_path / "pictures"
    assert cli.main(["demo", "two-layer-collapse", "--out", str(out), "--format", "png"]) == 0
    names = ["collapse-lines.png", "collapsed.png", "two-layer-relu.png", "two-layer.png"]
    assert sorted(p.name for p in out.iterdir()) == names
    for name in names:
        with Image.open(out / name) as image:
            assert image.format == "PNG"
            pixels = np.asarray(image.convert("L"), dtype=float)
        assert pixels.std() > 10, name
    with Image.open(out / "collapse-lines.png") as image:
        assert image.size == tuple(round(v * plots.DPI) for v in plots.FIGSIZE["collapse"])
    # the lines drawn are the Value graphs' outputs, and the linear ones are the same line
    for i in (0, 40, 100):
        x = float(drawn["x"][i])
        assert drawn["two_layer"][i] == forward(demos.collapse_stack, x)
        assert drawn["relu"][i] == forward(relu_net, x)
    np.testing.assert_allclose(drawn["two_layer"], drawn["collapsed"], atol=1e-12)
    assert len(drawn["bends"]) == 3


def test_a_dot_format_writes_the_chart_as_svg(tmp_path):
    written = demos.run("two-layer-collapse", tmp_path, "dot", log=lambda line: None)
    assert [p.name for p in written] == ["two-layer.dot", "collapsed.dot", "two-layer-relu.dot", "collapse-lines.svg"]
    assert "W = W1·W2" in (tmp_path / "collapsed.dot").read_text(encoding="utf-8")
