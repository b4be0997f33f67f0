"""Jupyter shows a Value's, a Tensor's and an nn model's graph with no extra import, and the engines
still load no drawing code until the first display."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET

import graphviz
import numpy as np

from micrograd_mnist import Tensor, Value, nn

SVG = "{http://www.w3.org/2000/svg}svg"


def test_graphs_show_inline_without_importing_viz():
    code = """
import sys
from micrograd_mnist import Tensor, Value, nn
import numpy as np

drawing = [m for m in sys.modules if m.startswith(("viz", "graphviz", "matplotlib"))]
assert not drawing, drawing
a = Value(2.0, label="a")
svgs = [(a * a + 1.0)._repr_svg_(),
        (Tensor(np.ones(3), requires_grad=True, label="t") * 2.0).sum()._repr_svg_(),
        nn.MLP([4, 3, 2], rng=np.random.default_rng(0))._repr_svg_()]
assert "viz" in sys.modules and "graphviz" in sys.modules  # loaded by the first display, not before
print("\\x00".join(svgs))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    value_svg, tensor_svg, model_svg = result.stdout.split("\x00")
    for svg in (value_svg, tensor_svg, model_svg):
        assert ET.fromstring(svg).tag == SVG
    assert ">a<" in value_svg and ">t<" in tensor_svg
    assert "Linear(4 → 3)" in model_svg and "23 parameters" in model_svg


def test_a_lone_linear_layer_shows_its_op_graph_and_an_activation_its_repr():
    svg = nn.Linear(4, 3, rng=np.random.default_rng(0))._repr_svg_()
    assert ET.fromstring(svg).tag == SVG and ">W<" in svg and ">b<" in svg
    assert nn.ReLU()._repr_svg_() is None  # no input width to draw it from: Jupyter shows repr()


def test_a_drawing_that_fails_falls_back_to_repr(monkeypatch):
    def no_dot(self, *args, **kwargs):
        raise graphviz.ExecutableNotFound(["dot", "-Tsvg"])

    monkeypatch.setattr(graphviz.Digraph, "pipe", no_dot)
    assert Value(1.0)._repr_svg_() is None
    assert Tensor(np.ones(2))._repr_svg_() is None
    assert nn.MLP([2, 2])._repr_svg_() is None



def test_a_graph_wider_than_a_notebook_is_scaled_to_its_width():
    x = Value(1.0, label="x")
    wide = x
    for _ in range(12):
        wide = wide * x + 1.0
    root = ET.fromstring(wide._repr_svg_())
    assert root.get("width") == "100%" and root.get("height") is None and root.get("viewBox")
    small = ET.fromstring((x * 2.0)._repr_svg_())
    assert small.get("width").endswith("pt") and small.get("height").endswith("pt")  # never enlarged
