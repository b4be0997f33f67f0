"""Walking a computation graph: shared by both engines, the drawer and the stepper; and showing one in Jupyter."""

from __future__ import annotations

import functools
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


class building:
    """Pause Python's cycle collector while graphs are built and backpropagated; restore it afterwards.

        from micrograd_mnist.graph import building

        with building():
            for step in range(steps):
                loss = model_loss(...)   # builds a graph of Values
                loss.backward()
                ...                      # update the parameters

    Why: every few hundred new objects the collector runs, and now and then it walks every object
    alive, the whole graph built so far included. Building a chain of Values costs about 180 ns a node
    at 10,000 nodes and 250 at a million with it paused, but 300 and 1,200 with it running; a moons
    training step takes half the time (benchmarks/scalar.py). Graphs hold no reference cycles, so
    reference counting alone frees each one as soon as its last reference goes: pausing loses nothing.
    (Cyclic garbage that other code makes meanwhile waits for the first collection after the block.)

    It leaves the collector as it found it: off again only if it was on when the block began (so a
    caller's own gc.disable() stands), also when an exception leaves the block; blocks nest. The switch
    is process-wide, so for the block's duration it holds in every thread. The library's own loops
    (moons training, the demos' big graphs, the backprop walk-through, every backward()) use it.
    A program that also keeps many objects of its own alive for good can call gc.freeze() once they
    are made, so the collections that do run skip them.

    A class, not @contextmanager, because a small backward enters it thousands of times.
    """

    def __enter__(self) -> None:
        self.was_enabled = gc.isenabled()
        gc.disable()

    def __exit__(self, *exc) -> None:
        if self.was_enabled:
            gc.enable()


DISPLAY_GROUP = "micrograd_mnist.display"


def display_svg(obj: Any) -> str | None:
    """`obj` (a Value, a Tensor or an nn model) as SVG for Jupyter's `_repr_svg_`, or None for plain repr.

    The drawing code lives above the engines (viz), so the engines find it as a plugin: the renderers
    registered under the entry-point group `micrograd_mnist.display` (pyproject.toml), imported on the
    first display and not before. A renderer returns None for what it can't draw (Graphviz missing,
    a graph too big); with no renderer installed every object shows as its repr.
    """
    for render in _renderers():
        svg = render(obj)
        if svg is not None:
            return svg
    return None


@functools.cache
def _renderers() -> tuple:
    from importlib.metadata import entry_points

    return tuple(ep.load() for ep in sorted(entry_points(group=DISPLAY_GROUP), key=lambda ep: ep.name))
