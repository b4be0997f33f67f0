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
print(f"dc/da = {named['a'].grad} (four paths, each worth 1)")
