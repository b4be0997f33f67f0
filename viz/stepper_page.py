"""The backprop walk-through as pictures: one self-contained HTML page, or one picture per step.

The page holds one graphviz drawing of the graph and, per step, the records of `backprop.steps`
written out as text (the same lines the terminal prints), which nodes play which part, the label
of every edge that carries gradient, and each node's gradient as it stood. Its script only shows
those numbers: it colours, follows, zooms and pans; it computes nothing of the network. No script,
style or font is fetched from anywhere.
"""

from __future__ import annotations

import html
import json
import re
from contextlib import contextmanager
from pathlib import Path

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


def write(path: str | Path, title: str, root, intro: str, frames: list) -> Path:
    """The page: `intro` is the forward pass as text, `frames` from `walkthrough.frames(root)`."""
    names = Names(root)
    loss = names[root]
    all_steps = [f.step for f in frames]
    svgs = {}
    for shape, rankdir in (("wide", "LR"), ("tall", "TB")):  # a screen wider than tall, and a phone held upright
        dot = draw(root, names=names.names, stacked=True, max_nodes=10**6, rankdir=rankdir)
        dot.graph_attr.update(ranksep="0.8", nodesep="0.25")  # room on every edge for the label of what it carries
        svgs[shape] = _bare_svg(pipe(dot, "svg").decode())
    data = {
        "svgs": svgs,
        "steps": [{"text": f.text, "node": _key(f.step.node), "parents": sorted({_key(e.parent) for e in f.step.edges}),
                   "flow": [{"edge": f"e{id(f.step.node)}_{i}", "label": label}
                            for (_, i), label in _flow(f.step).items()]}
                  for f in frames],
        "nodes": _nodes(root, all_steps, names, loss),
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
    """The edges that carry gradient in this step, labelled with what each adds."""
    taught_ids = {id(e) for e in taught(step)}
    return {(id(step.node), i): f"adds {fmt(e.added)}" for i, e in enumerate(step.edges) if id(e) in taught_ids}


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
            "last": history[id(node)][-1][0],  # the step of its last arrival (0: none)
            "grads": [[k, fmt(g, 4)] for k, g in history[id(node)]],
            "sum": f"{d} = Σ over the nodes that use {name}: d{loss}/d(use) · ∂(use)/∂{bracket(name)}"
                   if len(terms) > 1 else "",
            "terms": terms,
            "total": total,
        }
    return nodes


def _bare_svg(svg: str) -> str:
    """Graphviz's SVG without its XML prolog and DOCTYPE, ready to sit inside HTML."""
    match = re.search(r"<svg\b", svg)
    return svg[match.start():] if match else svg


_PAGE = Path(__file__).with_name("stepper_page.html").read_text(encoding="utf-8")
