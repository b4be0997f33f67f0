"""Walking a computation graph: shared by both engines, the drawer and the stepper."""

from __future__ import annotations

import gc
from typing import Any


def toposort(root: Any) -> list:
    """Every node `root` depends on, parents before children.

    Iterative depth-first search, so a million-node chain needs no recursion.
    A node leaves the stack once all its parents are marked; with at most a
    few parents per node, rescanning them beats keeping an iterator per node.
    Marking nodes (a `_visited` slot) rather than keeping a set of seen nodes
    keeps the cost per node flat as graphs outgrow the CPU cache.
    """
    token = object()  # fresh each call, so old marks never need clearing
    root._visited = token
    order, stack = [], [root]
    while stack:
        for p in stack[-1].parents:
            if p._visited is not token:
                p._visited = token
                stack.append(p)
                break
        else:
            order.append(stack.pop())
    return order


class no_cycle_collection:
    """Pause the cycle collector: graphs are acyclic, so its passes over a big
    graph during backward are pure overhead (refcounting still frees memory).
    A class, not @contextmanager, because a small backward runs it thousands of times."""

    def __enter__(self) -> None:
        self.was_enabled = gc.isenabled()
        gc.disable()

    def __exit__(self, *exc) -> None:
        if self.was_enabled:
            gc.enable()
