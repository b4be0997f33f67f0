"""Backprop one chain-rule step at a time, for `Value` graphs.

`steps(root)` performs exactly the work of `root.backward()`, in the same
order, but pauses after each node to say what happened: the node, its op, the
gradient that arrived at it (dL/dnode), each local derivative ∂node/∂parent and
the product added to each parent's grad. The numbers come from the op table,
like everything else; the final gradients equal `.backward()`'s exactly.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from .graph import toposort
from .ops import SCALAR, Op
from .value import Value


@dataclass(frozen=True)
class Edge:
    parent: Value
    local: float  # ∂node/∂parent
    added: float  # dL/dnode · ∂node/∂parent, what parent.grad grew by
    grad_after: float  # parent.grad once this step is done


@dataclass(frozen=True)
class Step:
    index: int  # 1, 2, ... in the order backprop runs
    node: Value
    op: Op
    upstream: float  # dL/dnode, complete by the time backprop reaches the node
    edges: tuple[Edge, ...]


def steps(root: Value) -> Iterator[Step]:
    """Run backprop from `root`, yielding after each node. Every grad in the graph starts at 0."""
    order = toposort(root)
    for node in order:
        node.grad = 0.0
    root.grad = 1.0
    index = 0
    for node in reversed(order):
        if node.op is None:
            continue
        index += 1
        inputs = [p.data for p in node.parents]
        edges = []
        for parent, vjp in zip(node.parents, node.op.vjp):
            added = vjp(SCALAR, node.grad, node.data, *inputs, *node.params)  # what backward() adds, exactly
            parent.grad += added
            local = vjp(SCALAR, 1.0, node.data, *inputs, *node.params)  # a VJP at g = 1 is the local derivative
            edges.append(Edge(parent, local, added, parent.grad))
        yield Step(index, node, node.op, node.grad, tuple(edges))


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
            elif node.op is None:
                self.names[id(node)] = f"{node.data:g}"
            else:
                count += 1
                self.names[id(node)] = f"t{count}"

    def __getitem__(self, node: Value) -> str:
        return self.names[id(node)]


def chain_rule_line(step: Step, edge: Edge, names: Names, loss: str = "L", precision: int = 2) -> str:
    """`dL/dw += dL/dŷ · ∂ŷ/∂w = -0.50 · 2.00 = -1.00`"""
    n, p, f = bracket(names[step.node]), bracket(names[edge.parent]), f".{precision}f"
    return (f"d{loss}/d{p} += d{loss}/d{n} · ∂{n}/∂{p} = {step.upstream:{f}} · {edge.local:{f}} = {edge.added:{f}}"
            f"   (d{loss}/d{p} now {edge.grad_after:{f}})")


def describe(step: Step, names: Names) -> str:
    """The node and how it was made: `t2 = t1 + b = 1.2500  [add]`"""
    node, parents = step.node, [names[p] for p in step.node.parents]
    if len(parents) == 2:
        formula = f"{parents[0]} {step.op.symbol} {parents[1]}"
    elif step.op.name == "pow":
        formula = f"{parents[0]} ** {node.params[0]:g}"
    elif step.op.name == "neg":
        formula = f"-{parents[0]}"
    else:
        formula = f"{step.op.symbol}({parents[0]})"
    return f"{names[node]} = {formula} = {node.data:.4f}"


def bracket(name: str) -> str:
    """`w·x` reads badly in `dL/dw·x`: bracket any name that is not a plain identifier."""
    return name if re.fullmatch(r"[^\W\d]\w*", name) else f"({name})"  # not isidentifier(): it admits ·
