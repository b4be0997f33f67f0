"""All drawing lives here (graphviz and matplotlib); the engines never import it.

Importing `viz` also teaches `Value` and `Tensor` to show themselves as graphs in
Jupyter (`_repr_svg_`), so the engines stay free of graphviz.
"""

from __future__ import annotations

from micrograd_mnist import Tensor, Value

from .graph import FORMATS, DrawError, GraphvizMissing, draw, draw_model, pipe, render

__all__ = ["FORMATS", "DrawError", "GraphvizMissing", "draw", "draw_model", "pipe", "render"]


def _repr_svg_(node) -> str | None:
    try:
        return pipe(draw(node), "svg").decode()
    except DrawError:
        return None  # Jupyter then falls back to repr()


Value._repr_svg_ = _repr_svg_
Tensor._repr_svg_ = _repr_svg_
