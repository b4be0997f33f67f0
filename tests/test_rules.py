"""The op table's rules: every input of every op has one, each elementwise rule *is* its VJP's local
derivative (evaluated independently here, from the text alone), and every chain-rule line prints the
rule in the graph's own names and then the very numbers the VJP gives."""

from __future__ import annotations

import math
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from micrograd_mnist import ops
from micrograd_mnist.backprop import Names, chain_rule_line, fmt, notes, rule_text, steps
from micrograd_mnist.demos import layer_backprop, single_neuron
from micrograd_mnist.expr import graph
from micrograd_mnist.ops import SCALAR, Op

TABLE = [v for v in vars(ops).values() if isinstance(v, Op)]
ELEMENTWISE = ["add", "sub", "mul", "div", "neg", "pow", "exp", "log", "tanh", "sigmoid", "relu"]


def test_every_op_has_a_rule_for_every_input():
    assert len(TABLE) >= 20
    for op in TABLE:
        assert len(op.rule) == len(op.vjp) == len(op.inputs) >= 1, op.name
        assert all(isinstance(r, str) and r.strip() for r in op.rule), op.name
        assert set(op.inputs) <= set(re.findall(r"\w+", " ".join(["xp", "x", "a", "b", "W", "logits"]))), op.inputs


def as_python(rule: str) -> str:
    """The rule's notation, read as Python: `p·a^(p−1)` -> `p*a**(p-1)`, `1 − out²` -> `1 - out**2`."""
    return (rule.replace("·", "*").replace("−", "-").replace("²", "**2").replace("^", "**")
            .replace("exp(", "math.exp("))


@pytest.mark.parametrize("name", ELEMENTWISE)
@given(a=st.floats(0.1, 3.0), b=st.floats(-3.0, 3.0).filter(lambda v: abs(v) > 0.1),
       p=st.sampled_from([2, 3, -1, 0.5, -0.5]), negative=st.booleans())
def test_each_elementwise_rule_is_its_vjp(name, a, b, p, negative):
    op = getattr(ops, name)
    a = -a if negative and name not in ("log", "pow") else a  # log and fractional powers need a > 0
    inputs = (a, b)[:len(op.inputs)]
    params = (p,) if name == "pow" else ()
    out = op.forward(SCALAR, *inputs, *params)
    for i, rule in enumerate(op.rule):
        by_vjp = op.vjp[i](SCALAR, 1.0, out, *inputs, *params)
        symbols = dict(zip(op.inputs, inputs), out=out, p=p, math=math)
        by_rule = eval(as_python(rule), {"__builtins__": {}}, symbols)  # our own table's text, in a test
        assert math.isclose(by_rule, by_vjp, rel_tol=1e-9, abs_tol=1e-12), (name, i, rule, by_rule, by_vjp)


def test_rules_read_in_the_graphs_own_names():
    out, _ = graph("t = tanh(a); s = sigmoid(t); L = s * w + (t - 1) ** 2", a=0.3, w=-2.0)
    names = Names(out)
    texts = {(s.op.name, names[e.parent]): rule_text(s, e, names) for s in steps(out) for e in s.edges}
    assert texts[("tanh", "a")] == "1 − t²"
    assert texts[("sigmoid", "t")] == "s·(1 − s)"
    assert texts[("mul", "s")] == "w" and texts[("mul", "w")] == "s"  # s * w: each factor's rule is the other
    (square,) = [k for k in texts if k[0] == "pow"]
    assert texts[square] == f"2·{square[1]}"  # p·a^(p−1) at p = 2
    root = single_neuron()
    names = Names(root)
    (step,) = [s for s in steps(root) if names[s.node] == "w·x"]
    assert [rule_text(step, e, names) for e in step.edges] == ["x", "w"]


@given(st.floats(-3, 3), st.floats(-3, 3), st.sampled_from(["tanh", "sigmoid", "relu", "exp", "log", "-"]))
def test_chain_rule_lines_print_the_vjps_numbers(x, y, fn):
    source = f"u = {fn}(a * a + 0.5) * b; u / (b * b + 1) - u ** 2"  # fn "-" is neg
    out, _ = graph(source, a=x, b=y)
    names = Names(out)
    for s in steps(out):
        inputs = [p.data for p in s.node.parents]
        for e, vjp in zip(s.edges, s.op.vjp):
            line = chain_rule_line(s, e, names)
            local = vjp(SCALAR, 1.0, s.node.data, *inputs, *s.node.params)
            added = vjp(SCALAR, s.upstream, s.node.data, *inputs, *s.node.params)
            assert (e.local, e.added) == (local, added)
            rule = rule_text(s, e, names)
            assert f"· {rule} = " in line or f"· ({rule}) = " in line, line
            assert f" = {fmt(s.upstream)} · {fmt(local)} = {fmt(added)}   " in line, line
            assert "-0.00" not in line


def test_a_dead_relu_is_called_out_and_so_is_what_it_starves():
    root = layer_backprop()
    names = Names(root)
    walk = list(steps(root))
    dead = [s for s in walk if s.op.name == "relu" and s.edges[0].local == 0]
    assert [names[s.node] for s in dead] == ["h1[0]"]  # one of the four: three fire
    assert any("ReLU was off (z1[0] = -1.05 ≤ 0): nothing flows back" in n for n in notes(dead[0], names))
    starved = [s for s in walk if s.upstream == 0]
    assert starved and all(s.index > dead[0].index for s in starved)
    for s in starved:
        assert "nothing arrived here (the ReLU h1[0] was off)" in " ".join(notes(s, names))
    alive = [s for s in walk if s.upstream != 0]
    assert len(alive) > 2 * len(starved)  # most of the walk carries a gradient
