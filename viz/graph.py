"""Computation graphs drawn with graphviz, left to right: a record per value, an ellipse per op.

Big graphs are folded rather than drawn as hairballs: a long chain of additions
(a neuron's fan-in sum) becomes one Σ node, and when that is still too much its
terms are elided but for a few, with the picture saying what was folded.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from contextlib import nullcontext
from pathlib import Path

import graphviz
import numpy as np

from micrograd_mnist.backprop import fmt
from micrograd_mnist.files import atomic_write
from micrograd_mnist.graph import toposort

FORMATS = ("svg", "png", "pdf", "dot")
TOO_BIG = 1500  # values; past this a drawing is a hairball whatever we fold, and dot takes minutes
HIGHLIGHT = "#ffd54f"
# What colour means in every backprop picture and page: the node being processed, the inputs its
# gradient flows into now, the nodes already finished (their gradient complete and passed on).
ROLES = {"current": "#ffb300", "receiving": "#9ccc65", "done": "#e4e7eb"}
FLOW = "#2e7d32"  # an edge carrying gradient back in the current step


class DrawError(RuntimeError):
    """A picture that can't be made; the message is one line for the user."""


class PlotError(ValueError):
    """A chart (viz.plots) that can't be drawn from what it was given; the message is one line for the user.
    Defined here, not in viz.plots, so that catching it needs no matplotlib."""


class GraphvizMissing(DrawError):
    """Rendering needs Graphviz's `dot` program."""

    def __init__(self) -> None:
        super().__init__("Graphviz's `dot` program is not installed: apt-get install graphviz (or brew install "
                         "graphviz); format='dot' writes the graph's source without it")


def draw(root, *, highlight: Iterable = (), show_grad: bool = True, max_nodes: int = 80,
         names: dict[int, str] | None = None, title: str | None = None, rankdir: str = "LR",
         roles: dict[int, str] | None = None, flow: dict[tuple[int, int], str] | None = None,
         stacked: bool = False) -> graphviz.Digraph:
    """A `Value` or `Tensor` graph as a graphviz Digraph (render it with `render`, or show it in Jupyter).

    highlight: nodes to colour; show_grad: print .grad beside .data; max_nodes: past this many values,
    fan-in sums are folded and their terms elided; names: id(node) -> name for unlabeled nodes.
    For a backprop step: roles maps id(node) to a key of ROLES, and flow maps (id(node), i) to the label
    of the edge from the node's i-th input, drawn as gradient flowing back. stacked: a scalar's name,
    data and grad one above the other (narrow nodes, for small screens).
    In SVG, a value's node has the id `n<key>`, its op `o<key>` and the edge from its i-th input
    `e<key>_<i>`, so a page can find them.
    """
    nodes = toposort(root)
    folds, hidden, notes = _fold(nodes, max_nodes)
    drawn = len(nodes) - len(hidden) - len(folds["member"])
    if drawn > TOO_BIG:
        stub = graphviz.Digraph(node_attr={"fontname": "Helvetica", "shape": "note"})
        stub.node("too-big", f"this graph has {len(nodes):,} values, {drawn:,} even after folding its sums:\n"
                             "too many to read; draw a smaller piece (one neuron, one sample)")
        return stub
    highlighted = {id(n) for n in highlight}
    roles, flow = roles or {}, flow or {}
    dot = graphviz.Digraph(graph_attr={"rankdir": rankdir, "fontname": "Helvetica", "nodesep": "0.25",
                                       "ranksep": "0.35"},
                           node_attr={"fontname": "Helvetica", "fontsize": "11"},
                           edge_attr={"arrowsize": "0.6", "color": "#555555"})
    caption = [title] if title else []
    caption += notes
    if caption:
        dot.attr(label="\n".join(caption), labelloc="t", fontsize="13")
    for node in nodes:
        if id(node) in hidden or id(node) in folds["member"]:
            continue
        key = str(id(node))
        name = node.label or (names or {}).get(id(node), "")
        role = roles.get(id(node))
        fill = HIGHLIGHT if id(node) in highlighted else ROLES.get(role, "#ffffff")
        record = _record(node, name, show_grad, stacked, rankdir in ("TB", "BT"))
        dot.node(key, record, shape="record", style="filled", fillcolor=fill, id=f"n{key}")
        if node.op is None:
            continue
        head = folds["head"].get(id(node))
        if head is not None:  # a folded Σ over many terms
            label, parents = f"Σ  {head['count']} terms", head["parents"]
        else:
            params = f" {node.params[0]:g}" if node.op.name == "pow" else ""
            label, parents = node.op.symbol + params, node.parents
        op_key = key + "op"
        op_fill = HIGHLIGHT if id(node) in highlighted else ROLES["current"] if role == "current" else \
            ROLES["done"] if role == "done" else "#eef3fb"
        dot.node(op_key, html.escape(label), shape="ellipse", style="filled", fillcolor=op_fill, fontsize="10",
                 id=f"o{key}")
        dot.edge(op_key, key, id=f"e{key}_out")
        shown = [(i, p) for i, p in enumerate(parents) if id(p) not in hidden]
        for i, parent in shown:
            carried = flow.get((id(node), i)) if head is None else None
            style = {"label": html.escape(carried), "color": FLOW, "fontcolor": FLOW, "penwidth": "2.2",
                     "dir": "back", "fontsize": "10", "fontname": "Helvetica"} if carried is not None else {}
            dot.edge(str(id(parent)), op_key, id=f"e{key}_{i}", **style)
        if len(shown) < len(parents):
            more = key + "more"
            dot.node(more, f"… {len(parents) - len(shown)} more terms like these", shape="note",
                     style="filled", fillcolor="#f5f5f5", fontsize="10")
            dot.edge(more, op_key, style="dashed")
    return dot


def render(dot: graphviz.Digraph, path: str | Path, format: str | None = None) -> Path:
    """Write `dot` to `path` (format from the suffix unless given); atomically, like every file here."""
    path = Path(path)
    format = format or path.suffix.lstrip(".") or "svg"
    if format not in FORMATS:
        raise ValueError(f"unknown format {format!r}: choose one of {', '.join(FORMATS)}")
    data = dot.source.encode() if format == "dot" else pipe(dot, format)
    atomic_write(path, lambda f: f.write(data))
    return path


def pipe(dot: graphviz.Digraph, format: str = "svg") -> bytes:
    try:
        return dot.pipe(format=format)
    except graphviz.ExecutableNotFound:
        raise GraphvizMissing() from None
    except graphviz.CalledProcessError as e:
        detail = (e.stderr or b"").decode(errors="replace").strip().splitlines()
        raise DrawError(f"Graphviz could not render this graph ({detail[0] if detail else e})") from None


def _record(node, name: str, show_grad: bool, stacked: bool = False, top_down: bool = False) -> str:
    """A record's fields: a tensor's always one above the other, a scalar's in one row unless stacked.
    (graphviz lays a record's fields across the flow, and `{ }` turns them along it.)"""
    def esc(text: str) -> str:
        return html.escape(text).replace("|", "\\|").replace("{", "\\{").replace("}", "\\}")

    if isinstance(node.data, np.ndarray):  # a tensor: a column of short lines (shape, data, grad)
        fields = [f"{tuple(node.data.shape)} {node.data.dtype}", "data " + _summary(node.data)]
        if show_grad:
            fields.append("grad " + ("—" if node.grad is None else _summary(node.grad)))
        if name:
            fields.insert(0, name)
        column = " | ".join(esc(f).replace("\n", "\\n") for f in fields)
        return "{ " + column + " }" if top_down else column
    fields = [f"data {fmt(node.data, 4)}"]  # a scalar: one row across the flow, like micrograd's drawings
    if show_grad:
        fields.append(f"grad {fmt(node.grad, 4)}")
    if name:
        fields.insert(0, name)
    row = " | ".join(esc(f) for f in fields)
    return "{ " + row + " }" if stacked == top_down else row


def _summary(a: np.ndarray) -> str:
    if a.size <= 4:
        return np.array2string(np.asarray(a).ravel(), precision=3, separator=", ")
    return f"mean {a.mean():.3g}, std {a.std():.3g}\nrange [{a.min():.3g}, {a.max():.3g}]"


def draw_model(model, x, *, expand: bool = False, loss=None, show_grad: bool = True) -> graphviz.Digraph:
    """An `nn.Sequential` at module level: one box per layer with its shapes, from a forward pass on `x`.

    expand=True draws the op graph instead, each layer's ops and parameters in a labelled cluster;
    with `loss` (a function of the output), the loss is added and backpropagated so grads show
    (which replaces the model's current .grad values).
    """
    from micrograd_mnist import Tensor, no_grad

    x = x if isinstance(x, Tensor) else Tensor(np.asarray(x), label="x")
    outputs, h = [], x
    with no_grad() if not expand else nullcontext():
        for layer in model:
            h = layer(h)
            outputs.append(h)
    if expand:
        root = outputs[-1]
        if loss is not None:
            model.zero_grad()
            root = loss(root)
            root.label = root.label or "loss"
            root.backward()
        dot = draw(root, show_grad=show_grad, max_nodes=10**6)
        for i, (layer, out) in enumerate(zip(model, outputs)):
            with dot.subgraph(name=f"cluster_{i}") as c:
                c.attr(label=f"({i}) {layer!r}", style="rounded,filled", fillcolor="#f7f9fc", color="#9fb3c8")
                members = [out] + [p for p in out.parents if p.requires_grad and p.op is None]
                for node in members:
                    c.node(str(id(node)))
                    if node.op is not None:
                        c.node(str(id(node)) + "op")
        return dot
    dot = graphviz.Digraph(graph_attr={"rankdir": "LR", "fontname": "Helvetica"},
                           node_attr={"fontname": "Helvetica", "fontsize": "11", "shape": "box",
                                      "style": "rounded,filled", "fillcolor": "#eef3fb"})
    dot.node("in", f"input\n{tuple(x.shape)}", fillcolor="#ffffff")
    previous = "in"
    for i, (layer, out) in enumerate(zip(model, outputs)):
        params = "".join(f"\n{name} {tuple(p.shape)}" for name, p in layer.named_parameters())
        dot.node(str(i), f"({i}) {layer!r}{params}\nout {tuple(out.shape)}")
        dot.edge(previous, str(i))
        previous = str(i)
    dot.attr(label=f"{model.num_parameters():,} parameters", labelloc="t")
    return dot


def _fold(nodes: list, max_nodes: int) -> tuple[dict, set, list[str]]:
    """Which nodes to merge into Σ nodes and which to hide, and sentences saying so."""
    folds: dict = {"head": {}, "member": set()}
    hidden: set[int] = set()
    if len(nodes) <= max_nodes:
        return folds, hidden, []
    consumers: dict[int, int] = {}
    for node in nodes:
        for p in node.parents:
            consumers[id(p)] = consumers.get(id(p), 0) + 1
    # 1. Chains of additions, each link used only by the next: one Σ node with all the terms.
    for node in reversed(nodes):
        if node.op is None or node.op.name != "add" or id(node) in folds["member"]:
            continue
        terms, links, link = [], [], node
        while True:
            a, b = link.parents
            terms.append(b)
            if a.op is not None and a.op.name == "add" and consumers.get(id(a)) == 1:
                links.append(id(a))
                link = a
            else:
                terms.append(a)
                break
        if len(terms) > 3:  # a short sum reads fine as it is
            folds["member"].update(links)
            folds["head"][id(node)] = {"count": len(terms), "parents": terms[::-1]}
    heads = list(folds["head"].values())
    notes = []
    if len(heads) == 1:
        notes.append(f"a sum of {heads[0]['count']} terms is drawn as one Σ node")
    elif heads:
        notes.append(f"{len(heads)} sums are drawn as one Σ node each (the largest has "
                     f"{max(h['count'] for h in heads)} terms)")
    # 2. Still too big: keep the three terms of each Σ that contribute most, hide what only the rest feed.
    if len(nodes) - len(folds["member"]) > max_nodes:
        for head in heads:
            terms = head["parents"]
            biases = [t for t in terms if t.op is None]  # a leaf added to a sum of products: keep it in view
            pool = [t for t in terms if t.op is not None] if 0 < len(biases) <= 3 else terms
            kept = {id(t) for t in sorted(pool, key=lambda t: -_size(t))[:3]}
            kept.update(id(t) for t in biases if len(biases) <= 3)
            hidden.update(id(t) for t in terms if id(t) not in kept)
        users: dict[int, list[int]] = {}
        for node in nodes:
            if id(node) not in folds["member"]:
                for p in _drawn_parents(node, folds):
                    users.setdefault(id(p), []).append(id(node))
        root = nodes[-1]
        for node in reversed(nodes[:-1]):  # consumers come first, so each node's users are already decided
            mine = users.get(id(node))
            if id(node) not in folds["member"] and mine and all(u in hidden for u in mine):
                hidden.add(id(node))
        hidden.discard(id(root))
        if hidden:
            notes.append(f"{len(hidden):,} nodes elided: each Σ shows its 3 largest terms (by |value|) and its bias")
    return folds, hidden, notes


def _size(node) -> float:
    """How much a term contributes to its sum: |value| (the largest entry's, for a tensor)."""
    return float(np.abs(node.data).max()) if np.size(node.data) else 0.0


def _drawn_parents(node, folds: dict) -> list:
    head = folds["head"].get(id(node))
    return head["parents"] if head is not None else list(node.parents)


def repr_svg(obj) -> str | None:
    """SVG of a `Value` or `Tensor` graph, or of an `nn` model's layers, for Jupyter; None if it can't be drawn.

    Registered as the engines' display plugin (entry-point group `micrograd_mnist.display`).
    A model is drawn from a forward pass on one zero image of its input width.
    """
    from micrograd_mnist import Tensor, nn

    try:
        if isinstance(obj, nn.Sequential):
            width = next((m.in_features for m in obj if isinstance(m, nn.Linear)), None)
            if width is None:
                return None  # no Linear layer, so no input width to run it on
            dot = draw_model(obj, np.zeros((1, width), dtype=np.float32))
        elif isinstance(obj, nn.Module):
            if not isinstance(obj, nn.Linear):
                return None
            dot = draw(obj(Tensor(np.zeros((1, obj.in_features), dtype=obj.weight.dtype), label="x")))
        else:
            dot = draw(obj)
        return fit_width(pipe(dot, "svg").decode())
    except DrawError:
        return None  # Jupyter then falls back to repr()


def fit_width(svg: str, max_points: float = 650) -> str:
    """`svg` scaled down to the width of the notebook or page if it is wider than `max_points` (about 870 px);
    otherwise unchanged.

    Graphviz and matplotlib give an SVG a fixed size in points, and a notebook crops what is wider than its
    column (a style such as max-width does not reach every renderer: some show an SVG as an <img>). A width of
    100% and no height lets the viewBox keep the proportions.
    """
    head, rest = svg.split("<svg", 1)
    tag, body = rest.split(">", 1)
    width = re.search(r'\swidth="([\d.]+)pt"', tag)
    if width is None or float(width[1]) <= max_points:
        return svg
    tag = re.sub(r'\sheight="[\d.]+pt"', "", tag.replace(width[0], ' width="100%"'))
    return f"{head}<svg{tag}>{body}"
