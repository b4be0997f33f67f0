"""Walking a computation graph: shared by both engines, the drawer and the stepper."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def toposort(root: Any) -> list:
    """Every node `root` depends on, parents before children.

    Iterative depth-first search (a stack of parent iterators), so a
    million-node chain needs no recursion. Nodes only need a `parents` tuple.
    """
    order, seen = [], {root}
    stack = [(root, iter(root.parents))]
    while stack:
        node, parents = stack[-1]
        for p in parents:
            if p not in seen:
                seen.add(p)
                stack.append((p, iter(p.parents)))
                break
        else:
            stack.pop()
            order.append(node)
    return order


@contextmanager
def no_cycle_collection() -> Iterator[None]:
    """Pause the cycle collector: graphs are acyclic, so its passes over a big
    graph during backward are pure overhead (refcounting still frees memory)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
