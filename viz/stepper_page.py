"""The backprop walk-through as pictures: one self-contained HTML page, or one picture per step.

The page holds one graphviz drawing of the graph and, per step, the records of `backprop.steps`
written out as text (the same lines the terminal prints), which nodes play which part, the label
of every edge that carries gradient, and each node's gradient as it stood. Its script only shows
those numbers: it colours, follows, zooms and pans; it computes nothing of the network. No script,
style or font is fetched from anywhere.
"""

from __future__ import annotations

import base64
import html
import io
import json
import re
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image

from micrograd_mnist import tensor_steps
from micrograd_mnist.backprop import Names, bracket, contribution, describe, fmt, roles, taught
from micrograd_mnist.files import atomic_write
from micrograd_mnist.graph import toposort

from .graph import FLOW, ROLES, draw, pipe, render


def write_frames(root, frames: list, folder: str | Path, format: str = "svg") -> list[Path]:
    """One picture per step, coloured as the page colours it, each with the gradients as its step left them;
    `frames` from `walkthrough.frames(root)`."""
    names = Names(root)
    all_steps = [f.step for f in frames]
    grads = _grad_history(root, all_steps)
    paths = []
    for frame in frames:
        k = frame.step.index
        with _grads_at(root, grads, k):
            dot = draw(root, names=names.names, roles=roles(all_steps, k), flow=_flow(frame.step),
                       title=f"step {k}: backprop at {names[frame.step.node]}")
        paths.append(render(dot, Path(folder) / f"step-{k:03d}.{format}"))
    return paths


def write(path: str | Path, title: str, root, intro: str, frames: list,
          mirrors: dict[str, str] | None = None) -> Path:
    """The page: `intro` is the forward pass as text, `frames` from `walkthrough.frames(root)` or, for a
    Tensor graph, `tensor_steps.frames(root)`; then each step also shows its arrays as pictures, and
    `mirrors` (an entry's name, `W[2,1]`, to its scalar mirror's text) answers a click on any cell."""
    names = Names(root)
    loss = names[root]
    all_steps = [f.step for f in frames]
    tensor = isinstance(root.data, np.ndarray)
    svgs = {}
    for shape, rankdir in (("wide", "LR"), ("tall", "TB")):  # a screen wider than tall, and a phone held upright
        dot = draw(root, names=names.names, stacked=True, max_nodes=10**6, rankdir=rankdir, show_grad=not tensor)
        dot.graph_attr.update(ranksep="0.8", nodesep="0.25")  # room on every edge for the label of what it carries
        svgs[shape] = _bare_svg(pipe(dot, "svg").decode())
    data = {
        "svgs": svgs,
        "steps": [{"text": f.text, "node": _key(f.step.node), "parents": sorted({_key(e.parent) for e in f.step.edges}),
                   "flow": [{"edge": f"e{id(f.step.node)}_{i}", "label": label}
                            for (_, i), label in _flow(f.step).items()],
                   "panel": _panel(f.step, names, loss, _mirrored(mirrors)) if tensor else ""}
                  for f in frames],
        "nodes": _nodes(root, all_steps, names, loss),
        "mirrors": mirrors or {},
    }
    script = json.dumps(data, ensure_ascii=False).replace("</", "<\\/")  # no `</script>` inside the script
    fill = {"title": html.escape(title), "forward": html.escape(intro), "forward_lines": str(intro.count("\n")),
            "data": script, "flow": FLOW, **ROLES}
    page = re.sub(r"\{\{(\w+)\}\}", lambda m: fill[m[1]], _PAGE)  # one pass: nothing filled in is read again
    atomic_write(path, lambda f: f.write(page.encode()))
    return Path(path)


def _key(node) -> str:
    return f"n{id(node)}"


def _flow(step) -> dict[tuple[int, int], str]:
    """The edges that carry gradient in this step, labelled with what each adds (a number, or a shape)."""
    return {(id(step.node), e.input): f"adds {fmt(e.added) if np.ndim(e.added) == 0 else tuple(e.added.shape)}"
            for e in taught(step)}


def _grad_history(root, all_steps) -> dict[int, list[tuple[int, float]]]:
    """Each node's gradient after each step that changed it, starting from step 0 (only the output's is 1)."""
    history = {id(n): [(0, 1.0 if n is root else 0.0)] for n in toposort(root)}
    for s in all_steps:
        for e in s.edges:
            history[id(e.parent)].append((s.index, e.grad_after))
    return history


@contextmanager
def _grads_at(root, history: dict, k: int):
    """Every node's .grad as step k left it, while a picture is drawn; the final grads afterwards."""
    nodes = toposort(root)
    final = [n.grad for n in nodes]
    for n in nodes:
        n.grad = [g for step, g in history[id(n)] if step <= k][-1]
    try:
        yield
    finally:
        for n, g in zip(nodes, final):
            n.grad = g


def _nodes(root, all_steps, names: Names, loss: str) -> dict[str, dict]:
    """Per node: its name, the step that processes it, its last arrival, its gradient over time and the
    full chain-rule expansion of dL/dnode (the sum over the nodes that use it)."""
    incoming: dict[int, list] = {}
    for s in all_steps:
        for e in taught(s):
            incoming.setdefault(id(e.parent), []).append((s, e))
    step_of = {id(s.node): s for s in all_steps}
    last = {id(e.parent): s.index for s in all_steps for e in s.edges}
    if isinstance(root.data, np.ndarray):
        return {_key(node): _tensor_node(node, step_of.get(id(node)), incoming.get(id(node), []), names, loss,
                                         last.get(id(node), 0)) for node in toposort(root)}
    history = _grad_history(root, all_steps)
    nodes = {}
    for node in toposort(root):
        name, own = names[node], step_of.get(id(node))
        d = f"d{loss}/d{bracket(name)}"
        if node is root:
            terms, total = [], f"{d} = 1: backprop starts here"
        elif id(node) in incoming:
            pairs = incoming[id(node)]
            terms = [{"step": s.index, "text": contribution(s, e, names, loss)} for s, e in pairs]
            total = f"{d} = " + (" + ".join(fmt(e.added) for _, e in pairs) + " = " if len(pairs) > 1 else "") \
                + fmt(node.grad)
        else:
            terms, total = [], f"{d} = {fmt(node.grad)} (no gradient is worth taking for a constant)"
        nodes[_key(node)] = {
            "name": name,
            "what": describe(own, names) if own else f"{name} = {fmt(node.data, 4)}, a leaf (an input or a weight)",
            "step": own.index if own else 0,
            "last": last.get(id(node), 0),  # the step of its last arrival (0: none)
            "grads": [[k, fmt(g, 4)] for k, g in history[id(node)]],
            "sum": f"{d} = Σ over the nodes that use {name}: d{loss}/d(use) · ∂(use)/∂{bracket(name)}"
                   if len(terms) > 1 else "",
            "terms": terms,
            "total": total,
        }
    return nodes


def _tensor_node(node, own, pairs: list, names: Names, loss: str, last: int) -> dict:
    """A Tensor node's entry: its shape, and the VJPs that built its gradient, rule and shapes."""
    name = names[node]
    d = f"d{loss}/d{bracket(name)}"
    terms = [{"step": s.index, "text": f"{tensor_steps.rule_text(s, e, names, loss)}   "
                                      f"({tensor_steps.shapes_text(s, e, names)})"} for s, e in pairs]
    total = (f"{d} = 1: backprop starts here" if own is not None and own.index == 1 else
             f"{d}, {tuple(node.data.shape)}: " + (tensor_steps.matrix(node.grad, indent="").strip()
                                                    if node.grad is not None else "not needed"))
    return {"name": name, "what": describe(own, names) if own else f"{name} {tuple(node.data.shape)}, a leaf",
            "step": own.index if own else 0, "last": last, "grads": [],
            "sum": f"{d} = the sum of what each use of {name} sent back:" if len(terms) > 1 else "",
            "terms": terms, "total": total}


# --- arrays as pictures -----------------------------------------------------------------------------------
BLUE, RED = np.array([33, 102, 172]), np.array([178, 24, 43])  # as the weight pictures: blue +, red −


def _mirrored(mirrors: dict[str, str] | None) -> set[str]:
    """The tensors with a scalar mirror for their entries: `W` for `W[2,1]`."""
    return {key.split("[")[0] for key in mirrors or {}}


def _panel(step, names: Names, loss: str, mirrored: set[str]) -> str:
    """What arrived and what each input got, as coloured tables (small) or one 28×28 picture per neuron."""
    parts = [_array(f"d{loss}/d{names[step.node]}, what arrived", step.upstream, None, mirrored)]
    parts += [_array(f"d{loss}/d{names[e.parent]} += {tensor_steps.rule_text(step, e, names, loss)}", e.added,
                     names[e.parent], mirrored) for e in step.edges]
    return "".join(parts)


def _colour(a: np.ndarray) -> np.ndarray:
    """RGB per entry: white at 0, blue for positive, red for negative, full at the largest |value|."""
    top = np.abs(a).max() or 1.0
    t = (a / top)[..., None]
    return np.rint(255 * (1 - np.abs(t)) + np.where(t > 0, BLUE, RED) * np.abs(t)).astype(np.uint8)


def _array(caption: str, a, name: str | None, mirrored_names: set[str]) -> str:
    a = np.asarray(a, dtype=np.float64)
    mirrored = name in mirrored_names
    hint = " — click an entry for its scalar mirror" if mirrored else ""
    head = f'<figure class="arr"><figcaption>{html.escape(caption)} {tuple(a.shape)}{hint}</figcaption>'
    if a.ndim == 2 and a.shape[0] == 784:  # a first layer: one 28×28 picture per neuron, as 3Blue1Brown draws
        tiles = []
        for j in range(a.shape[1]):
            png = io.BytesIO()
            Image.fromarray(_colour(a[:, j]).reshape(28, 28, 3)).save(png, "PNG")
            src = "data:image/png;base64," + base64.b64encode(png.getvalue()).decode()
            attrs = f' data-tile="{html.escape(name)}" data-j="{j}"' if mirrored else ""
            tiles.append(f'<span class="tile"><img src="{src}" alt="neuron {j}"{attrs}><small>{j}</small></span>')
        return head + '<div class="tiles">' + "".join(tiles) + "</div></figure>"
    if a.size <= 320 and a.ndim <= 2:
        grid, colours = np.atleast_2d(a), _colour(np.atleast_2d(a))
        rows = []
        for i, row in enumerate(grid):
            cells = []
            for j, v in enumerate(row):
                index = (i, j)[2 - a.ndim:]  # (j,) in a vector, () for one number
                key = f"{name}[{','.join(map(str, index))}]" if index else ""
                r, g, b = colours[i, j]
                ink = "#fff" if abs(v) > 0.6 * (np.abs(grid).max() or 1) else "#111"
                attrs = f' data-m="{html.escape(key)}"' if mirrored and key else ""
                cells.append(f'<td style="background:rgb({r},{g},{b});color:{ink}"{attrs} '
                             f'title="{html.escape(key or caption)} = {v:.6g}">{html.escape(_short(v))}</td>')
            rows.append("<tr>" + "".join(cells) + "</tr>")
        return head + '<table class="heat">' + "".join(rows) + "</table></figure>"
    return head + f"<pre>{html.escape(tensor_steps.matrix(a, indent=''))}</pre></figure>"


def _short(v: float) -> str:
    text = f"{v:.2g}" if v and abs(v) < 0.01 else f"{v:.2f}"
    return "0" if float(text) == 0 else text


def _bare_svg(svg: str) -> str:
    """Graphviz's SVG without its XML prolog and DOCTYPE, ready to sit inside HTML."""
    match = re.search(r"<svg\b", svg)
    return svg[match.start():] if match else svg


_PAGE = Path(__file__).with_name("stepper_page.html").read_text(encoding="utf-8")
