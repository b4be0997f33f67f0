"""Backprop one chain-rule step at a time, for `Value` graphs: the step model every face reads.

`steps(root)` performs exactly the work of `root.backward()`, in the same
order, but pauses after each node to say what happened: the node, its op, the
gradient that arrived at it (dL/dnode), and per input the op table's rule for
∂node/∂input, its value here, the product added to the input's grad and the
running total. The numbers come from the op table, like everything else; the
final gradients equal `.backward()`'s exactly. The terminal walk-through, the
quiz, the HTML page and the step pictures all read these records.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from .graph import toposort
from .ops import SCALAR, Op
from .value import Value


@dataclass(frozen=True)
class Edge:
    parent: Value
    rule: str  # the op table's rule for ∂node/∂parent, in the op's own names (`b`, `1 − out²`)
    local: float  # ∂node/∂parent, here
    added: float  # dL/dnode · ∂node/∂parent, what parent.grad grew by
    grad_after: float  # parent.grad once this step is done
    arrival: int  # 1 for the first gradient to reach parent, 2 for the second path, …
    input: int  # which of the op's inputs parent is (x * x has two edges to one parent)


@dataclass(frozen=True)
class Step:
    index: int  # 1, 2, ... in the order backprop runs
    node: Value
    op: Op
    upstream: float  # dL/dnode, complete by the time backprop reaches the node
    edges: tuple[Edge, ...]
    blocked_by: Value | None = None  # when nothing arrived (upstream 0): the ReLU that was off on the way


@dataclass
class Frame:
    """A step and the text a walk-through prints for it, captured as it happened (the grads change every step)."""

    step: Step
    text: str


def steps(root: Value) -> Iterator[Step]:
    """Run backprop from `root`, yielding after each node. Every grad in the graph starts at 0."""
    order = toposort(root)
    for node in order:
        node.grad = 0.0
    root.grad = 1.0
    arrivals: dict[int, int] = {}
    blocked: dict[int, Value] = {}  # node -> the ReLU that stopped a gradient on its way here
    index = 0
    for node in reversed(order):
        if node.op is None:
            continue
        index += 1
        inputs = [p.data for p in node.parents]
        edges = []
        for i, (parent, vjp, rule) in enumerate(zip(node.parents, node.op.vjp, node.op.rule)):
            added = vjp(SCALAR, node.grad, node.data, *inputs, *node.params)  # what backward() adds, exactly
            parent.grad += added
            local = vjp(SCALAR, 1.0, node.data, *inputs, *node.params)  # a VJP at g = 1 is the local derivative
            arrivals[id(parent)] = arrivals.get(id(parent), 0) + 1
            edges.append(Edge(parent, rule, local, added, parent.grad, arrivals[id(parent)], i))
            if node.op.name == "relu" and local == 0:
                blocked[id(parent)] = node
            elif node.grad == 0 and id(node) in blocked:
                blocked.setdefault(id(parent), blocked[id(node)])
        cause = blocked.get(id(node)) if node.grad == 0 else None
        yield Step(index, node, node.op, node.grad, tuple(edges), cause)


def taught(step: Step) -> list[Edge]:
    """The edges worth a line: not the ones into plain constants (the 2 in x*2), whose gradient nobody uses."""
    return [e for e in step.edges if e.parent.op is not None or e.parent.label]


def relu_was_off(step: Step) -> bool:
    return step.op.name == "relu" and step.edges[0].local == 0


class Names:
    """Short, stable names for nodes: a label if it has one, a number for a constant, else t1, t2, …
    (and L for an unlabeled output: the loss)."""

    def __init__(self, root: Value) -> None:
        self.names: dict[int, str] = {}
        count = 0
        for node in toposort(root):
            if node is root and not node.label:
                self.names[id(node)] = "L"
            elif node.label:
                self.names[id(node)] = node.label
            elif node.op is None and np.size(node.data) == 1:
                self.names[id(node)] = f"{float(np.asarray(node.data).item()):g}"  # a constant: its value
            elif node.op is None:
                count += 1
                self.names[id(node)] = f"C{count}"  # a constant array
            else:
                count += 1
                self.names[id(node)] = f"t{count}"

    def __getitem__(self, node: Value) -> str:
        return self.names[id(node)]


# --- the words: every face prints a step with these ---------------------------------------------------

def fmt(x: float, precision: int = 2) -> str:
    """A number as a learner reads it: fixed decimals, and never "-0.00"."""
    text = f"{x:.{precision}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


_SYMBOL = r"[A-Za-z_][A-Za-z0-9_]*"  # the table's symbols are ASCII; \w would swallow the ² of out²


def rule_symbols(step: Step, edge: Edge, names: Names) -> dict[str, tuple[str, float]]:
    """The rule's symbols (the op's input names, `out`, its constants) as this graph's names and values."""
    symbols = {name: (names[p], p.data) for name, p in zip(step.op.inputs, step.node.parents)}
    symbols["out"] = (names[step.node], step.node.data)
    constants = list(inspect.signature(step.op.forward).parameters)[1 + len(step.op.inputs):]
    symbols.update((c, (f"{v:g}", v)) for c, v in zip(constants, step.node.params)
                   if isinstance(v, (int, float)) and not isinstance(v, bool))  # an exponent, not an axis
    return {s: symbols[s] for s in re.findall(_SYMBOL, edge.rule) if s in symbols}


def rule_text(step: Step, edge: Edge, names: Names) -> str:
    """The op table's rule in this graph's names: ∂(w·x)/∂w = `x`; ∂t/∂a = `1 − t²`; ∂L/∂e = `2·e`."""
    symbols = rule_symbols(step, edge, names)
    text = re.sub(_SYMBOL, lambda m: bracket(symbols[m[0]][0]) if m[0] in symbols else m[0], edge.rule)
    # p·a^(p−1) at p = 2 reads 2·e, not 2·e^(2−1)
    text = re.sub(r"\^\((-?[\d.]+)−([\d.]+)\)", lambda m: f"^{float(m[1]) - float(m[2]):g}", text)
    return re.sub(r"\^1(?![\d.])", "", text)


def where(step: Step, edge: Edge, names: Names, precision: int = 2) -> str:
    """The values the rule needs: `x = 2.00` (empty when the rule is a plain number)."""
    values = {name: value for name, value in rule_symbols(step, edge, names).values() if not _is_number(name)}
    return ", ".join(f"{name} = {fmt(value, precision)}" for name, value in values.items())


def partial(step: Step, edge: Edge, names: Names) -> str:
    """`∂(w·x)/∂w`"""
    return f"∂{bracket(names[step.node])}/∂{bracket(names[edge.parent])}"


def contribution(step: Step, edge: Edge, names: Names, loss: str = "L", precision: int = 2) -> str:
    """`dL/d(w·x) · ∂(w·x)/∂w = dL/d(w·x) · x = -0.50 · 2.00 = -1.00`: rule, then numbers."""
    n, f = bracket(names[step.node]), lambda x: fmt(x, precision)
    rule = rule_text(step, edge, names)
    rule = f"({rule})" if " " in rule or rule.startswith("−") else rule  # a factor in a product: one piece
    return (f"d{loss}/d{n} · {partial(step, edge, names)} = d{loss}/d{n} · {rule}"
            f" = {f(step.upstream)} · {f(edge.local)} = {f(edge.added)}")


def chain_rule_line(step: Step, edge: Edge, names: Names, loss: str = "L", precision: int = 2) -> str:
    """`dL/dw += dL/d(w·x) · ∂(w·x)/∂w = dL/d(w·x) · x = -0.50 · 2.00 = -1.00   (dL/dw now -1.00)`"""
    p = bracket(names[edge.parent])
    return (f"d{loss}/d{p} += {contribution(step, edge, names, loss, precision)}"
            f"   (d{loss}/d{p} now {fmt(edge.grad_after, precision)})")


def roles(all_steps: list[Step], k: int) -> dict[int, str]:
    """What each node is doing at step k (1-based), by id: `current` (its gradient is passed on now),
    `receiving` (its inputs), `done` (finished: an op stepped before, or a leaf whose last gradient came
    before). The colours of every backprop picture and page."""
    out: dict[int, str] = {}
    last: dict[int, int] = {}
    for s in all_steps:
        for e in s.edges:
            last[id(e.parent)] = s.index
    for s in all_steps[:k - 1]:
        out[id(s.node)] = "done"
        for e in s.edges:
            if e.parent.op is None and last[id(e.parent)] < k:
                out[id(e.parent)] = "done"
    step = all_steps[k - 1]
    out.update((id(e.parent), "receiving") for e in step.edges)
    out[id(step.node)] = "current"
    return out


def notes(step: Step, names: Names, loss: str = "L") -> list[str]:
    """Why a step passes nothing back, in words: a ReLU that was off, or nothing that arrived."""
    out = []
    if relu_was_off(step):
        a = step.node.parents[0]
        out.append(f"ReLU was off ({names[a]} = {fmt(a.data)} ≤ 0): nothing flows back through it")
    if step.upstream == 0:
        why = f" (the ReLU {names[step.blocked_by]} was off)" if step.blocked_by is not None else ""
        out.append(f"nothing arrived here{why}: d{loss}/d{bracket(names[step.node])} = 0, so every "
                   "contribution below is 0")
    return out


def forward_lines(root: Value, names: Names) -> list[str]:
    """The forward pass, node by node, in the order it was computed."""
    return [describe(Step(0, node, node.op, 0.0, ()), names) if node.op else f"{names[node]} = {fmt(node.data, 4)}"
            for node in toposort(root)]


def forward_text(root: Value, names: Names) -> str:
    return "\n".join(["forward pass:"] + ["  " + line for line in forward_lines(root, names)])


def step_text(step: Step, names: Names, loss: str, leaves: list[Value]) -> str:
    lines = [f"step {step.index}: {describe(step, names)}   [{step.op.name}]",
             f"  d{loss}/d{bracket(names[step.node])} = {fmt(step.upstream, 4)} arrived here"]
    lines += ["  " + note for note in notes(step, names, loss)]
    lines += ["  " + chain_rule_line(step, edge, names, loss) for edge in taught(step)]
    if len(leaves) <= 8:
        lines.append("  grads so far: " + ", ".join(f"{names[n]} {fmt(n.grad, 4)}" for n in leaves))
    else:  # a network's worth of leaves: the ones that have a gradient yet
        reached = [n for n in leaves if n.grad != 0]
        lines.append(f"  grads so far ({len(leaves) - len(reached)} of {len(leaves)} leaves still 0): "
                     + ", ".join(f"{names[n]} {fmt(n.grad)}" for n in reached))
    return "\n".join(lines)


def describe(step: Step, names: Names) -> str:
    """The node and how it was made: `t2 = t1 + b = 1.2500`"""
    node, parents = step.node, [names[p] for p in step.node.parents]
    if step.op.name == "linear":
        formula = f"{parents[0]} @ {parents[1]} + {parents[2]}"
    elif len(parents) == 2:
        formula = f"{parents[0]} {step.op.symbol} {parents[1]}"
    elif step.op.name == "pow":
        formula = f"{parents[0]} ** {node.params[0]:g}"
    elif step.op.name == "neg":
        formula = f"-{parents[0]}"
    else:
        formula = f"{step.op.symbol}({parents[0]})"
    if np.size(node.data) != 1:  # an array: its shape, the numbers come in a matrix of their own
        return f"{names[node]} = {formula}   {tuple(np.shape(node.data))}"
    return f"{names[node]} = {formula} = {fmt(float(np.asarray(node.data).item()), 4)}"


def bracket(name: str) -> str:
    """`w·x` reads badly in `dL/dw·x`: bracket any name that is not a plain identifier or number."""
    plain = re.fullmatch(r"[^\W\d]\w*(\[[\d,]+\])?", name) or _is_number(name)  # not isidentifier(): it admits ·
    return name if plain else f"({name})"


def _is_number(name: str) -> bool:
    return re.fullmatch(r"\d+(\.\d*)?(e[-+]?\d+)?", name) is not None
