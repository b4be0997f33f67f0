"""Backprop through whole layers, one node of a `Tensor` graph at a time, and the scalar mirror
under any one entry of it.

`steps(root)` does exactly `root.backward()`'s work in its order (the final grads are equal bit for
bit) and yields the same `Step` records as the scalar stepper, with arrays where the scalar one has
numbers: the gradient that arrived (dL/dnode), and per input the op table's rule (`linear`:
`xᵀ · g`), what was added to the input's grad and, where broadcasting made the VJP bigger than the
input, the axes it was summed over. `mirror` shows that one entry of such a gradient is the sum of
scalar chain-rule terms, read from the `Value` engine's own steps on the same weights.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from . import backprop
from .backprop import Frame, Names, Step, bracket, describe, fmt
from .graph import toposort
from .tensor import Tensor, unbroadcast
from .value import Value


@dataclass(frozen=True)
class TensorEdge:
    parent: Tensor
    rule: str  # the op table's rule, in the op's own names (`xᵀ · g`)
    added: np.ndarray  # what parent.grad grew by, in the parent's shape
    grad_after: np.ndarray  # parent.grad once this step is done
    arrival: int  # 1 for the first gradient to reach parent, 2 for the second path, …
    input: int  # which of the op's inputs parent is (inputs that need no gradient get no edge)
    vjp_shape: tuple[int, ...]  # the VJP's own shape, before broadcasting was summed back
    summed: tuple[int, ...] = ()  # the axes summed over to get back to the parent's shape


def steps(root: Tensor) -> Iterator[Step]:
    """Run backprop from a one-number `root`, yielding after each node. Every grad starts from nothing."""
    if not root.requires_grad or root.data.size != 1:
        raise ValueError("steps() walks back from a one-number loss that requires grad")
    order = toposort(root)
    for node in order:
        node.grad = None
    root.grad = np.ones_like(root.data)
    arrivals: dict[int, int] = {}
    index = 0
    for node in reversed(order):
        op, g = node.op, node.grad
        if op is None or g is None:
            continue
        index += 1
        inputs = [p.data for p in node.parents]
        edges = []
        for i, (parent, vjp, rule) in enumerate(zip(node.parents, op.vjp, op.rule)):
            if not parent.requires_grad:  # as backward(): no gradient for the image batch in x @ W
                continue
            grad = vjp(np, g, node.data, *inputs, *node.params)  # exactly backward()'s arithmetic, in its order
            vjp_shape, summed = grad.shape, _summed_axes(grad.shape, parent.data.shape)
            if grad.shape != parent.data.shape:
                grad = unbroadcast(grad, parent.data.shape)
            if parent.op is None and (grad is g or not grad.flags.writeable):
                grad = grad.copy()
            parent.grad = grad if parent.grad is None else parent.grad + grad
            arrivals[id(parent)] = arrivals.get(id(parent), 0) + 1
            edges.append(TensorEdge(parent, rule, grad, parent.grad, arrivals[id(parent)], i, vjp_shape, summed))
        yield Step(index, node, op, g, tuple(edges))


def _summed_axes(big: tuple, small: tuple) -> tuple[int, ...]:
    lead = len(big) - len(small)
    return tuple(range(lead)) + tuple(lead + i for i, n in enumerate(small) if n == 1 and big[lead + i] != 1)


# --- the words ------------------------------------------------------------------------------------------

_SYMBOL = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(ᵀ?)")


def rule_text(step: Step, edge: TensorEdge, names: Names, loss: str = "L") -> str:
    """The VJP in the graph's names: `dL/dW += Xᵀ · dL/dY`; an elementwise rule multiplies entry by entry (⊙)."""
    g = f"d{loss}/d{bracket(names[step.node])}"
    text = re.sub(r"\bg\b", g, backprop.rule_text(step, edge, names))
    if re.search(r"\bg\b", edge.rule):
        return text
    return f"{g} ⊙ {text if re.fullmatch(r'[^ ]+', text) else f'({text})'}"


def shapes_text(step: Step, edge: TensorEdge, names: Names) -> str:
    """The factors' shapes and the result's: `(4, 3) · (3, 3) → (4, 3)`, and any sum back over broadcast axes."""
    known = {name: np.shape(p.data) for name, p in zip(step.op.inputs, step.node.parents)}
    known.update(out=np.shape(step.node.data), g=np.shape(step.upstream))
    if re.search(r"\bg\b", edge.rule):  # a product of arrays: each factor's shape (a ᵀ turns it round)
        factors = [known[s][::-1] if t else known[s] for s, t in _SYMBOL.findall(edge.rule) if s in known]
        text = " · ".join(_shape(f) for f in factors)
    else:  # elementwise: dL/dout times the rule, entry by entry, each entry the rule at that entry
        text = f"{_shape(known['g'])} ⊙ {_shape(known['out'])}"
    text += f" → {_shape(edge.vjp_shape)}"
    if edge.summed:
        text += f", {summed_text(edge)} → {_shape(edge.added.shape)}"
    return text


def summed_text(edge: TensorEdge) -> str:
    """`summed over axis 0 (the batch: 3 rows → 1)`: the adjoint of broadcasting, in words."""
    axes = ", ".join(map(str, edge.summed))
    rows = edge.vjp_shape[0] if len(edge.vjp_shape) == 2 else 0
    batch = f" (the batch: {rows} row{'s' * (rows != 1)} → 1)" if edge.summed == (0,) and rows else ""
    return f"summed over axis {axes}{batch}"


def _shape(shape: tuple) -> str:
    return "a number" if shape == () else str(tuple(shape))


def matrix(a: np.ndarray, precision: int = 3, indent: str = "      ", limit: int = 60) -> str:
    """Small arrays as aligned rows of numbers (never "-0.000"); big ones summarised."""
    a = np.asarray(a, dtype=np.float64)
    biggest = float(np.abs(a).max()) if a.size else 0.0
    if 0 < biggest < 0.1:  # small gradients keep two significant digits rather than reading as 0.000
        precision = min(8, max(precision, 1 - math.floor(math.log10(biggest))))
    if a.size > limit or a.ndim > 2:
        first = ", ".join(_g(x) for x in a.ravel()[:4])
        return (f"{indent}{_shape(a.shape)}: mean {_g(a.mean())}, min {_g(a.min())}, max {_g(a.max())}, "
                f"{np.count_nonzero(a):,} of {a.size:,} not 0; first entries {first}, …")
    rows = [[fmt(x, precision) for x in row] for row in np.atleast_2d(a)]
    width = max(len(x) for row in rows for x in row)
    return "\n".join(indent + "[ " + "  ".join(x.rjust(width) for x in row) + " ]" for row in rows)


def _g(x: float) -> str:
    """Three significant digits, whatever the scale (a summary of numbers from 1e-6 to 10)."""
    text = f"{x:.3g}"
    return "0" if float(text) == 0 else text


def step_text(step: Step, names: Names, loss: str) -> str:
    """One tensor step as the terminal prints it: what arrived, then per input the rule, shapes and numbers."""
    n = bracket(names[step.node])
    lines = [f"step {step.index}: {describe(step, names)}   [{step.op.name}]",
             f"  d{loss}/d{n} arrived here, {_shape(np.shape(step.upstream))}:", matrix(step.upstream)]
    for edge in step.edges:
        p = bracket(names[edge.parent])
        lines.append(f"  d{loss}/d{p} += {rule_text(step, edge, names, loss)}"
                     f"      shapes: {shapes_text(step, edge, names)}")
        lines.append(matrix(edge.added))
    skipped = [names[q] for q in step.node.parents if not q.requires_grad]
    if skipped:
        lines.append(f"  (no gradient for {', '.join(skipped)}: nothing asks for it, so backprop skips it)")
    return "\n".join(lines)


def frames(root: Tensor) -> tuple[str, list]:
    """The forward pass and one text frame per step, as `walkthrough.frames` gives for a Value graph."""
    names = Names(root)
    intro = ["forward pass:"]
    for node in toposort(root):
        if node.op is None:
            intro += [f"  {names[node]}   {_shape(node.data.shape)}", matrix(node.data, indent="    ")]
        else:
            intro.append("  " + describe(Step(0, node, node.op, 0.0, ()), names))
            intro += [matrix(node.data, indent="    ")] if node.data.size > 1 else []
    return "\n".join(intro), [Frame(s, step_text(s, names, names[root])) for s in steps(root)]


# --- the scalar mirror ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Mirror:
    name: str  # `W[2,1]`
    cell: float  # the tensor's gradient there
    terms: list[tuple[Step, backprop.Edge]]  # the scalar steps' edges into that one Value
    names: Names  # of the scalar graph

    @property
    def total(self) -> float:
        return float(sum(e.added for _, e in self.terms))


def mirror(tensor_grad: np.ndarray, name: str, index: tuple[int, ...], scalar_loss: Value) -> Mirror:
    """The entry `name[index]` of a tensor gradient as the sum of the scalar engine's chain-rule terms into
    the Value labelled `name[i,j]` in `scalar_loss`'s graph (the same network built from Values)."""
    label = _label(name, index)
    if not any(n.label == label for n in toposort(scalar_loss)):
        raise KeyError(f"the scalar network has no value named {label}")
    return _mirrors({label: float(tensor_grad[index])}, scalar_loss)[label]


def mirror_all(grads: dict[str, np.ndarray], scalar_loss: Value) -> dict[str, Mirror]:
    """`mirror` for every entry of every named gradient at once, from one walk of the scalar graph."""
    return _mirrors({_label(name, i): float(g[i]) for name, g in grads.items() for i in np.ndindex(g.shape)},
                    scalar_loss)


def _mirrors(cells: dict[str, float], scalar_loss: Value) -> dict[str, Mirror]:
    names = Names(scalar_loss)
    terms: dict[str, list] = {label: [] for label in cells}
    for s in backprop.steps(scalar_loss):
        for e in s.edges:
            if e.parent.label in terms:
                terms[e.parent.label].append((s, e))
    return {label: Mirror(label, cell, terms[label], names) for label, cell in cells.items()}


def _label(name: str, index: tuple[int, ...]) -> str:
    return f"{name}[{','.join(map(str, index))}]"


def mirror_text(m: Mirror, loss: str = "L") -> str:
    biggest = max([abs(m.cell)] + [abs(e.added) for _, e in m.terms])
    places = 4 if biggest == 0 or biggest >= 0.01 else min(10, 3 - math.floor(math.log10(biggest)))

    def f(x: float) -> str:
        return fmt(x, places)

    lines = [f"the scalar mirror of d{loss}/d{m.name} = {f(m.cell)} (one cell of the tensor step), "
             f"from the Value engine's own steps on the same weights:"]
    for s, e in m.terms:
        lines.append(f"  step {s.index}:  {backprop.contribution(s, e, m.names, loss, places)}")
    total = " + ".join(f(e.added) for _, e in m.terms) if len(m.terms) > 1 else ""
    lines.append(f"  sum of the {len(m.terms)} scalar term{'s' * (len(m.terms) != 1)} = "
                 f"{total + ' = ' if total else ''}{f(m.total)}"
                 f"   (the tensor cell: {f(m.cell)}; difference {abs(m.total - m.cell):.1e})")
    return "\n".join(lines)


def parse_entry(text: str) -> tuple[str, tuple[int, ...]]:
    """`W1[3,2]` -> ("W1", (3, 2)); a ValueError says what is wrong."""
    match = re.fullmatch(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*\[\s*(\d+(?:\s*,\s*\d+)*)\s*\]\s*", text)
    if not match:
        raise ValueError(f"--mirror takes NAME[i,j] (e.g. W[2,1]), got {text!r}")
    return match[1], tuple(int(i) for i in match[2].split(","))

