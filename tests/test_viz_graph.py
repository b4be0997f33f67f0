"""`viz.graph`: computation graphs as graphviz, folding of big fan-in sums, module-level model drawings,
rendering (atomic, format from the suffix) and what happens without Graphviz's `dot`."""

from __future__ import annotations

import re
import subprocess
import sys
import xml.etree.ElementTree as ET

import graphviz
import numpy as np
import pytest

import viz
from micrograd_mnist import Tensor, Value, nn
from micrograd_mnist.demos import single_neuron
from micrograd_mnist.graph import toposort
from micrograd_mnist.moons import loss as moons_loss
from micrograd_mnist.moons import make_model, make_moons
from micrograd_mnist.nn import functional as F
from viz.graph import HIGHLIGHT

SVG = "{http://www.w3.org/2000/svg}svg"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def node_lines(dot: graphviz.Digraph) -> list[str]:
    """The node statements of a graph (not edges, not graph attributes)."""
    return [line for line in dot.body if "->" not in line and re.match(r"\s*\"?\w+\"? \[", line)]


def line_of(dot: graphviz.Digraph, node) -> str:
    (line,) = [line for line in dot.body if line.startswith(f"\t{id(node)} [")]
    return line


def labelled(root) -> dict:
    return {n.label: n for n in toposort(root) if n.label}


def big_neuron(n: int = 784):
    rng = np.random.default_rng(0)
    ws = [Value(float(v), f"w{i}") for i, v in enumerate(rng.normal(0, 0.05, n))]
    xs = [Value(float(v), f"x{i}") for i, v in enumerate(rng.uniform(0, 1, n))]
    y_hat = sum((w * x for w, x in zip(ws, xs)), Value(0.1, "b"))
    y_hat.label = "ŷ"
    loss = (y_hat - 1.0) ** 2
    loss.label = "L"
    loss.backward()
    return loss


# --- draw ---------------------------------------------------------------------------------------


def test_single_neuron_shows_labels_data_and_grads():
    root = single_neuron()
    root.backward()
    dot = viz.draw(root, title="one neuron")
    source = dot.source
    for label in ("w", "x", "b", "y", "w·x", "ŷ", "e", "L"):
        assert f"{{ {label} | data " in source, label
    w = labelled(root)["w"]
    assert "{ w | data 0.5000 | grad -1.0000 }" in line_of(dot, w)
    assert "{ L | data 0.0625 | grad 1.0000 }" in source
    for symbol in ("*", "+", "-", "** 2"):
        assert f'[label="{symbol}"' in source or f"[label={symbol} " in source, symbol
    assert 'label="one neuron"' in source
    # 8 values, 4 ops; one edge per op output and per op input (2+2+2+1)
    assert len(node_lines(dot)) == 12
    assert source.count("->") == 4 + 7
    assert "Σ" not in source and "elided" not in source and "more terms" not in source


def test_show_grad_false_hides_gradients():
    root = single_neuron()
    root.backward()
    source = viz.draw(root, show_grad=False).source
    assert "grad" not in source
    assert "{ w | data 0.5000 }" in source


def test_highlight_colours_only_the_given_nodes():
    root = single_neuron()
    n = labelled(root)
    dot = viz.draw(root, highlight=[n["w·x"], n["w"]])
    assert f'fillcolor="{HIGHLIGHT}"' in line_of(dot, n["w"])
    assert f'fillcolor="{HIGHLIGHT}"' in line_of(dot, n["w·x"])
    (op_line,) = [line for line in dot.body if line.startswith(f'\t"{id(n["w·x"])}op" [')]
    assert HIGHLIGHT in op_line  # the op that made a highlighted node is coloured too
    for other in ("x", "b", "y", "ŷ", "e", "L"):
        assert HIGHLIGHT not in line_of(dot, n[other]), other
    assert dot.source.count(HIGHLIGHT) == 3
    assert HIGHLIGHT not in viz.draw(root).source


def test_names_label_unlabelled_nodes():
    a = Value(2.0, "a")
    t = a * a
    out = t + 1.0
    source = viz.draw(out, names={id(t): "t1", id(out): "t2"}).source
    assert "{ t1 | data 4.0000" in source and "{ t2 | data 5.0000" in source
    assert "{ data 1.0000 | grad 0.0000 }" in source  # the constant: no name given, none shown


def test_tensor_records_show_shape_and_dtype():
    x = Tensor(np.ones((2, 3)), requires_grad=True, label="x")
    W = Tensor(np.arange(6, dtype=np.float32).reshape(3, 2), requires_grad=True, label="W")
    y = (x @ W).sum()
    y.backward()
    dot = viz.draw(y)
    assert "x | (2, 3) float64 | data " in line_of(dot, x)
    assert "W | (3, 2) float32 | data " in line_of(dot, W)
    assert "grad " in line_of(dot, W)
    assert "() float64 | data [30.] | grad [1.]" in line_of(dot, y)
    assert "(2, 2) float64 | data [6., 9., 6., 9.]" in dot.source
    unbackwarded = Tensor(np.zeros(3), requires_grad=True, label="z") * 2.0
    assert "grad —" in viz.draw(unbackwarded).source


# --- folding ------------------------------------------------------------------------------------


def test_a_784_input_neuron_folds_into_a_few_nodes():
    loss = big_neuron()
    assert len(toposort(loss)) > 3000
    dot = viz.draw(loss, max_nodes=60, title="one neuron, 784 inputs")
    source = dot.source
    assert len(node_lines(dot)) < 30
    assert len(dot.body) < 100
    assert source.count("->") < 30
    caption = re.search(r'label="([^"]*)" labelloc=t', source).group(1)
    assert caption.startswith("one neuron, 784 inputs")
    assert "785 terms" in caption and "elided" in caption
    assert "Σ  785 terms" in source
    assert "781 more terms" in source  # 785 terms: the 3 largest products and the bias are drawn
    # the three terms that contribute most are kept (wherever they stand in the sum), with the rest of the graph
    leaves = {n.label: n for n in toposort(loss) if n.op is None}
    products = sorted(range(784), key=lambda i: -abs(leaves[f"w{i}"].data * leaves[f"x{i}"].data))
    kept = [f"{v}{i}" for i in products[:3] for v in "wx"]
    for shown in (*kept, "b", "ŷ", "L"):
        assert f"{{ {shown} | data" in source, shown
    for dropped in (products[3], products[-1], 0, 783):
        assert f"{{ w{dropped} |" not in source, dropped
    svg = viz.pipe(dot, "svg")
    assert ET.fromstring(svg).tag == SVG


def test_a_medium_sum_folds_without_eliding():
    loss = big_neuron(20)  # 81 values: just over the default max_nodes=80
    source = viz.draw(loss).source
    assert "Σ  21 terms" in source
    assert "elided" not in source and "more terms" not in source
    assert all(f"{{ w{i} |" in source for i in range(20))


def test_small_graphs_are_not_folded():
    loss = big_neuron(10)
    dot = viz.draw(loss)
    assert "Σ" not in dot.source and "elided" not in dot.source and "more terms" not in dot.source
    values = toposort(loss)
    ops = [n for n in values if n.op is not None]
    assert len(node_lines(dot)) == len(values) + len(ops)


# --- draw_model ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mlp():
    return nn.MLP([784, 16, 16, 10], "sigmoid", rng=np.random.default_rng(0))


def test_draw_model_boxes_show_layers_shapes_and_parameter_count(mlp):
    dot = viz.draw_model(mlp, np.zeros((3, 784), np.float32))
    source = dot.source
    assert "Linear(784 → 16)" in source and "Linear(16 → 16)" in source and "Linear(16 → 10)" in source
    assert "Sigmoid()" in source
    assert "weight (784, 16)" in source and "bias (16,)" in source
    assert "input\n(3, 784)" in source and "out (3, 10)" in source
    assert 'label="13,002 parameters"' in source
    assert source.count("->") == len(mlp)
    assert "cluster_" not in source
    assert all(p.grad is None for p in mlp.parameters())  # no graph was recorded, nothing backpropagated


def test_draw_model_expanded_has_one_cluster_per_layer(mlp):
    target = np.zeros((2, 10), np.float32)
    dot = viz.draw_model(mlp, np.full((2, 784), 0.5, np.float32), expand=True, loss=lambda y: F.mse(y, target))
    source = dot.source
    clusters = re.findall(r"subgraph (cluster_\d+)", source)
    assert clusters == [f"cluster_{i}" for i in range(len(mlp))] and len(clusters) == 5
    assert 'label="(0) Linear(784 → 16)"' in source and 'label="(1) Sigmoid()"' in source
    assert "{ loss |" not in source and "loss | () float32" in source
    assert "W | (784, 16) float32" in source
    assert mlp[0].weight.grad is not None and np.abs(mlp[0].weight.grad).sum() > 0
    assert ET.fromstring(viz.pipe(dot, "svg")).tag == SVG


# --- render and pipe ----------------------------------------------------------------------------


def test_render_svg_png_and_dot(tmp_path):
    root = single_neuron()
    dot = viz.draw(root)
    svg = viz.render(dot, tmp_path / "g.svg")
    assert svg == tmp_path / "g.svg"
    tree = ET.parse(svg).getroot()
    assert tree.tag == SVG
    assert "w·x" in svg.read_text(encoding="utf-8")
    png = viz.render(dot, tmp_path / "sub" / "g.png")  # missing folders are made
    assert png.read_bytes().startswith(PNG_MAGIC) and png.stat().st_size > 1000
    source = viz.render(dot, tmp_path / "g.dot")
    assert source.read_text(encoding="utf-8") == dot.source
    forced = viz.render(dot, tmp_path / "picture.out", format="svg")
    assert ET.parse(forced).getroot().tag == SVG
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == [
        "g.dot", "g.png", "g.svg", "picture.out"]  # atomic: no temp files left behind


def test_render_refuses_unknown_formats(tmp_path):
    with pytest.raises(ValueError, match="unknown format 'txt'"):
        viz.render(viz.draw(single_neuron()), tmp_path / "g.txt")
    assert not any(tmp_path.iterdir())


def assert_graphviz_missing(tmp_path) -> None:
    dot = viz.draw(single_neuron())
    with pytest.raises(viz.GraphvizMissing) as info:
        viz.render(dot, tmp_path / "g.svg")
    message = str(info.value)
    assert "\n" not in message and "apt-get install graphviz" in message
    assert not (tmp_path / "g.svg").exists()
    with pytest.raises(viz.GraphvizMissing, match="apt-get install graphviz"):
        viz.pipe(dot, "png")
    assert viz.render(dot, tmp_path / "g.dot").read_text(encoding="utf-8") == dot.source
    assert Value(1.0)._repr_svg_() is None  # Jupyter then falls back to repr()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.dot"]


def test_without_dot_rendering_says_how_to_install_it(tmp_path, monkeypatch):
    def no_dot(self, *args, **kwargs):
        raise graphviz.ExecutableNotFound(["dot", "-Tsvg"])

    monkeypatch.setattr(graphviz.Digraph, "pipe", no_dot)
    assert_graphviz_missing(tmp_path)


def test_without_dot_on_the_path(tmp_path, monkeypatch):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    out = tmp_path / "out"
    out.mkdir()
    assert_graphviz_missing(out)


# --- Jupyter, and keeping the engines free of drawing libraries ---------------------------------


def test_repr_svg_after_importing_viz():
    a = Value(2.0, "a")
    svg = (a * a + 1.0)._repr_svg_()
    assert isinstance(svg, str) and ET.fromstring(svg).tag == SVG and ">a<" in svg
    t = Tensor(np.ones(3), requires_grad=True, label="t").sum()
    assert ET.fromstring(t._repr_svg_()).tag == SVG


def test_the_engines_never_import_graphviz_or_matplotlib():
    code = ("import micrograd_mnist, micrograd_mnist.value, micrograd_mnist.tensor, micrograd_mnist.nn, "
            "micrograd_mnist.training, micrograd_mnist.backprop, micrograd_mnist.expr, micrograd_mnist.walkthrough, "
            "micrograd_mnist.demos, micrograd_mnist.cli; import sys; "
            "bad = [m for m in sys.modules if m.startswith(('graphviz', 'matplotlib', 'viz'))]; "
            "assert not bad, bad; import viz; assert 'graphviz' in sys.modules; print('ok')")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


# --- once a bug: the caption's claim of elision -------------------------------------------------------------


def test_the_caption_claims_no_elision_when_nothing_was_elided():
    # a long chain with no sums: nothing can be folded, so every node is drawn and none is "elided"
    a = Value(0.3, "a")
    t = a
    for _ in range(100):
        t = t.tanh()
    dot = viz.draw(t, max_nodes=60)
    assert len(node_lines(dot)) == 101 + 100
    assert "elided" not in dot.source, re.search(r'label="([^"]*)" labelloc=t', dot.source).group(1)


# --- big graphs, and pipe's errors ------------------------------------------------------------------------------


def dot_parts(source: str) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """A graphviz source's declared nodes (name -> label) and its edges (tail, head), names unquoted."""
    name = r'("[^"]*"|\w+)'
    label = r'(?:"((?:[^"\\]|\\.)*)"|(\w+))'  # quoted, or a bare word such as tanh
    nodes = {m[1].strip('"'): m[2] if m[2] is not None else m[3]
             for m in re.finditer(rf"^\t{name} \[label={label}", source, re.M)}
    edges = [(m[1].strip('"'), m[2].strip('"')) for m in re.finditer(rf"^\t{name} -> {name}", source, re.M)]
    return nodes, edges


def test_a_folded_drawing_declares_every_node_it_draws_an_edge_to():
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


def test_the_moons_loss_graph_has_one_caption_line_about_sums_and_renders():
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
    with pytest.raises(viz.DrawError, match="Error: boom") as info:
        viz.pipe(dot, "svg")
    assert "\n" not in str(info.value)
