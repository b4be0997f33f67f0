"""All drawing lives here (graphviz and matplotlib); the engines never import it.

`Value`, `Tensor` and `nn` models show themselves as graphs in Jupyter without importing this
package: pyproject.toml registers `graph.repr_svg` under the entry-point group
`micrograd_mnist.display`, which the engines look up on their first display.
"""

from __future__ import annotations

from .graph import FORMATS, DrawError, GraphvizMissing, PlotError, draw, draw_model, fit_width, pipe, render, repr_svg

__all__ = ["FORMATS", "DrawError", "GraphvizMissing", "PlotError", "draw", "draw_model", "fit_width", "pipe",
           "render", "repr_svg"]
