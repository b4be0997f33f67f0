"""Step through backprop on a node used twice: the gradient reaches `a` along several paths and adds up.

    python examples/backprop_by_hand.py  (or: micrograd-mnist backprop --expr "b = a + a; c = b + b" --set a=3)
"""

from micrograd_mnist.backprop import Names, chain_rule_line, describe, steps
from micrograd_mnist.expr import graph

c, named = graph("b = a + a; c = b + b", a=3.0)
names = Names(c)
for step in steps(c):
    print(describe(step, names))
    for edge in step.edges:
        print("   ", chain_rule_line(step, edge, names, loss="c"))

# Each use of a node passes on the whole gradient of what it feeds, so a node used twice gets it twice.
a, b = named["a"], named["b"]
for node, parent, upstream in ((c, b, c.grad), (b, a, b.grad)):
    uses = sum(p is parent for p in node.parents)
    times = {1: "once", 2: "twice"}.get(uses, f"{uses} times")
    print(f"dc/d{parent.label} = {parent.grad:g} = {' + '.join([f'{upstream:g}'] * uses)}: "
          f"{node.label} uses {parent.label} {times}, and each use passes on dc/d{node.label} = {upstream:g}")
