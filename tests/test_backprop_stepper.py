"""The backprop stepper: `steps(root)` does exactly `backward()`'s work, one node at a time, and says so.

Every graph is built twice (stepped / backward) and the gradients must match bit for bit, since the
stepper asks the same op table the same questions in the same order. Random graphs come from
Hypothesis as source text for `expr.graph`, with intermediate nodes reused, and are also built
directly from `Value` operators to check the parser builds the very same graph.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from micrograd_mnist import Value
from micrograd_mnist.backprop import Names, Step, chain_rule_line, describe, fmt, steps
from micrograd_mnist.demos import GRAPHS, single_neuron
from micrograd_mnist.expr import graph
from micrograd_mnist.graph import toposort


def by_label(root: Value) -> dict[str, Value]:
    return {n.label: n for n in toposort(root) if n.label}


def assert_same_gradients(stepped: Value, backwarded: Value) -> None:
    """Two builds of one graph: same shape, same data, and exactly (==) the same gradients everywhere."""
    a, b = toposort(stepped), toposort(backwarded)
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert (x.label, x.data) == (y.label, y.data)
        assert (x.op is None) == (y.op is None) and (x.op is None or x.op.name == y.op.name)
        assert x.grad == y.grad, f"{x.label or x.op.name}: stepper {x.grad!r} vs backward {y.grad!r}"


def check_step_invariants(root: Value, all_steps: list[Step]) -> None:
    """Order, bookkeeping and arithmetic of a finished walk."""
    order = toposort(root)
    ops = [n for n in order if n.op is not None]
    # one step per op node, numbered 1, 2, ...
    assert [s.index for s in all_steps] == list(range(1, len(ops) + 1))
    assert sorted(id(s.node) for s in all_steps) == sorted(id(n) for n in ops)
    position = {id(s.node): k for k, s in enumerate(all_steps)}
    for s in all_steps:
        assert s.op is s.node.op
        assert len(s.edges) == len(s.node.parents)
        assert [id(e.parent) for e in s.edges] == [id(p) for p in s.node.parents]
        for parent in s.node.parents:  # reverse topological: every consumer was stepped before its inputs
            if parent.op is not None:
                assert position[id(parent)] > position[id(s.node)]
        # the gradient that arrived was complete: nothing was added to the node after its step
        assert s.upstream == s.node.grad
        for e in s.edges:
            assert math.isclose(e.added, s.upstream * e.local, rel_tol=1e-12, abs_tol=1e-12), (e, s.upstream)
    # grad_after is a running total: the last edge into a node holds its final gradient
    last: dict[int, float] = {}
    for s in all_steps:
        for e in s.edges:
            last[id(e.parent)] = e.grad_after
    for n in order:
        if n is not root:
            assert last[id(n)] == n.grad
    assert root.grad == 1.0


# --- the demo graphs --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(GRAPHS))
def test_demo_graphs_stepped_equal_backward_exactly(name):
    stepped, backwarded = GRAPHS[name](), GRAPHS[name]()
    walk = list(steps(stepped))
    backwarded.backward()
    assert_same_gradients(stepped, backwarded)
    check_step_invariants(stepped, walk)
    assert any(n.grad != 0 for n in toposort(stepped) if n.op is None)


def test_single_neuron_gradients_by_hand():
    # ŷ = 0.5·2 + 0.25 = 1.25, y = 1.5, L = (ŷ − y)² = 0.0625, dL/dŷ = 2(ŷ − y) = −0.5
    root = single_neuron()
    walk = list(steps(root))
    n = by_label(root)
    assert root.data == 0.0625
    assert (n["w"].grad, n["x"].grad, n["b"].grad, n["y"].grad) == (-1.0, -0.25, -0.5, 0.5)
    assert [s.node.label for s in walk] == ["L", "e", "ŷ", "w·x"]
    assert [s.upstream for s in walk] == [1.0, -0.5, -0.5, -0.5]
    assert [s.op.name for s in walk] == ["pow", "sub", "add", "mul"]


def test_single_neuron_chain_rule_line_for_w():
    root = single_neuron()
    names = Names(root)
    walk = list(steps(root))
    step = next(s for s in walk if s.node.label == "w·x")
    w_edge, x_edge = step.edges
    assert (w_edge.parent.label, w_edge.local, w_edge.added, w_edge.grad_after) == ("w", 2.0, -1.0, -1.0)
    line = chain_rule_line(step, w_edge, names)
    # rule, then numbers: the product's rule names the other factor
    assert line.startswith("dL/dw += dL/d(w·x) · ∂(w·x)/∂w = dL/d(w·x) · x = -0.50 · 2.00 = -1.00"), line
    assert line.endswith("(dL/dw now -1.00)"), line
    other = chain_rule_line(step, x_edge, names)
    assert other.startswith("dL/dx += dL/d(w·x) · ∂(w·x)/∂x = dL/d(w·x) · w = -0.50 · 0.50 = -0.25"), other
    custom = chain_rule_line(step, w_edge, names, loss="E", precision=3)
    assert custom.startswith("dE/dw += dE/d(w·x) · ∂(w·x)/∂w = dE/d(w·x) · x = -0.500 · 2.000 = -1.000"), custom


def test_describe_and_names():
    root = single_neuron()
    names = Names(root)
    walk = {s.node.label: s for s in steps(root)}
    assert describe(walk["L"], names) == "L = e ** 2 = 0.0625"
    assert describe(walk["e"], names) == "e = ŷ - y = -0.2500"
    assert describe(walk["w·x"], names) == "w·x = w * x = 1.0000"

    out, _ = graph("-tanh(a) * 2 + sigmoid(a)", a=0.5)
    names = Names(out)
    described = [describe(s, names) for s in steps(out)]
    # unlabeled nodes are numbered in forward order, constants named by their value
    assert [names[n] for n in toposort(out)] == ["a", "t1", "t2", "2", "t3", "t4", "L"]  # the output is the loss
    assert [d.split(" = ")[:2] for d in described] == [
        ["L", "t3 + t4"], ["t4", "σ(a)"], ["t3", "t2 * 2"], ["t2", "-t1"], ["t1", "tanh(a)"]]
    assert described[-1] == f"t1 = tanh(a) = {math.tanh(0.5):.4f}"


def test_steps_start_every_gradient_from_zero():
    root = single_neuron()
    root.backward()
    root.backward()  # leaves accumulate under backward(): w.grad is now -2
    assert by_label(root)["w"].grad == -2.0
    list(steps(root))
    assert by_label(root)["w"].grad == -1.0


def test_a_leaf_root_has_no_steps():
    assert list(steps(Value(3.0, "a"))) == []


# --- expressions, gradient accumulation along several paths -----------------------------------------


def test_reuse_accumulates_along_several_paths():
    root, names = graph("b = a + a; c = b + b", a=3.0)
    walk = list(steps(root))
    assert names["a"].grad == 4.0 and root.data == 12.0
    assert [s.node.label for s in walk] == ["c", "b"]
    first, second = walk
    assert [(e.parent.label, e.local, e.added, e.grad_after) for e in first.edges] == [
        ("b", 1.0, 1.0, 1.0), ("b", 1.0, 1.0, 2.0)]
    assert second.upstream == 2.0
    assert [(e.parent.label, e.local, e.added, e.grad_after) for e in second.edges] == [
        ("a", 1.0, 2.0, 2.0), ("a", 1.0, 2.0, 4.0)]
    lines = [chain_rule_line(second, e, Names(root), loss="c") for e in second.edges]
    assert lines[0].endswith("(dc/da now 2.00)") and lines[1].endswith("(dc/da now 4.00)")


EXPRESSIONS = [
    ("b = a + a; c = b + b", {"a": 3.0}),
    ("(w*x + b - y)**2", {"w": 0.5, "x": 2.0, "b": 0.25, "y": 1.5}),
    ("h = tanh(a*b); o = h * h + sigmoid(h) - relu(a - b); o / (b*b + 1)", {"a": 0.7, "b": -1.3}),
    ("u = exp(a) * log(b); u ** -2 + u ** 3 - 0.5 * u", {"a": 0.3, "b": 2.5}),
    ("s = a*a; t = s*a; q = s + t; q * q - -a", {"a": 1.1}),
    ("p = relu(-a) + relu(a); p * a ** -0.5", {"a": 2.0}),
]


@pytest.mark.parametrize(("source", "values"), EXPRESSIONS)
def test_expression_graphs_stepped_equal_backward_exactly(source, values):
    stepped, _ = graph(source, **values)
    backwarded, _ = graph(source, **values)
    walk = list(steps(stepped))
    backwarded.backward()
    assert_same_gradients(stepped, backwarded)
    check_step_invariants(stepped, walk)


# --- random graphs ----------------------------------------------------------------------------------

# Each instruction makes t_k from earlier names (inputs or earlier t's), so nodes are reused freely.
# Shapes keep every value finite for up to 8 instructions on inputs in [-2, 2].
UNARY = {
    "tanh": ("tanh({0})", lambda x: x.tanh()),
    "sigmoid": ("sigmoid({0})", lambda x: x.sigmoid()),
    "relu": ("relu({0})", lambda x: x.relu()),
    "neg": ("-{0}", lambda x: -x),
    "exp": ("exp(tanh({0}))", lambda x: x.tanh().exp()),
    "log": ("log({0} * {0} + 1.5)", lambda x: (x * x + 1.5).log()),
    "square": ("{0} ** 2", lambda x: x ** 2),
    "rsqrt": ("({0} * {0} + 0.25) ** -0.5", lambda x: (x * x + 0.25) ** -0.5),
    "scale": ("2.5 * {0}", lambda x: 2.5 * x),
}
BINARY = {
    "add": ("{0} + {1}", lambda x, y: x + y),
    "sub": ("{0} - {1}", lambda x, y: x - y),
    "mul": ("{0} * {1}", lambda x, y: x * y),
    "div": ("{0} / ({1} * {1} + 0.5)", lambda x, y: x / (y * y + 0.5)),
}
INPUTS = ("a", "b", "c")


@st.composite
def programs(draw) -> tuple[dict[str, float], list[tuple]]:
    n_inputs = draw(st.integers(1, 3))
    values = {name: draw(st.floats(-2.0, 2.0)) for name in INPUTS[:n_inputs]}
    program = []
    for k in range(draw(st.integers(1, 8))):
        names = list(values) + [f"t{i + 1}" for i in range(k)]
        operand = st.sampled_from(names)
        if draw(st.booleans()):
            program.append((draw(st.sampled_from(sorted(UNARY))), draw(operand)))
        else:
            program.append((draw(st.sampled_from(sorted(BINARY))), draw(operand), draw(operand)))
    return values, program


def source_of(program) -> str:
    lines = []
    for k, (op, *args) in enumerate(program):
        template = (UNARY.get(op) or BINARY[op])[0]
        lines.append(f"t{k + 1} = " + template.format(*args))
    return "; ".join(lines)


def build_directly(values: dict[str, float], program) -> tuple[Value, dict[str, Value]]:
    nodes = {name: Value(v, label=name) for name, v in values.items()}
    out = None
    for k, (op, *args) in enumerate(program):
        make = (UNARY.get(op) or BINARY[op])[1]
        out = make(*(nodes[a] for a in args))
        out.label = f"t{k + 1}"
        nodes[out.label] = out
    return out, nodes


@given(programs())
def test_random_expression_graphs_stepped_equal_backward_exactly(case):
    values, program = case
    source = source_of(program)
    stepped, stepped_names = graph(source, **values)
    direct, direct_names = build_directly(values, program)
    walk = list(steps(stepped))
    direct.backward()
    # the parser builds the very graph the operators build, and the stepper matches backward() bit for bit
    assert stepped.data == direct.data
    assert_same_gradients(stepped, direct)
    for name in direct_names:
        assert stepped_names[name].grad == direct_names[name].grad, (source, name)
    check_step_invariants(stepped, walk)
    names = Names(stepped)
    for s in walk:
        assert describe(s, names).startswith(f"{names[s.node]} = ")
        for e in s.edges:
            line = chain_rule_line(s, e, names)
            assert f"now {fmt(e.grad_after)})" in line and "-0.00" not in line
