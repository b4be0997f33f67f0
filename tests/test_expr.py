"""The expression parser: learner-typed formulas become `Value` graphs, without `eval`.

Values and gradients are checked against derivatives worked out by hand; everything outside the
small language is refused with a one-line `ExprError` whose ⟶ points at the offending column.
"""

from __future__ import annotations

import math

import pytest

from micrograd_mnist import Value
from micrograd_mnist.backprop import Names
from micrograd_mnist.expr import FUNCTIONS, ExprError, graph
from micrograd_mnist.graph import toposort


def sigmoid(z: float) -> float:
    return 1 / (1 + math.exp(-z))


def run(source: str, **values: float) -> tuple[Value, dict[str, Value]]:
    root, names = graph(source, **values)
    root.backward()
    return root, names


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12)


# --- values and gradients ---------------------------------------------------------------------------


def test_single_neuron_squared_error():
    root, n = run("(w*x + b - y)**2", w=0.5, x=2.0, b=0.25, y=1.5)
    # ŷ = 1.25, e = ŷ − y = −0.25, L = e² = 0.0625, dL/dŷ = 2e = −0.5
    assert root.data == 0.0625
    assert (n["w"].grad, n["x"].grad, n["b"].grad, n["y"].grad) == (-1.0, -0.25, -0.5, 0.5)


@pytest.mark.parametrize(("source", "f", "df"), [
    ("exp(a)", math.exp, math.exp),
    ("log(a)", math.log, lambda a: 1 / a),
    ("tanh(a)", math.tanh, lambda a: 1 - math.tanh(a) ** 2),
    ("sigmoid(a)", sigmoid, lambda a: sigmoid(a) * (1 - sigmoid(a))),
    ("relu(a)", lambda a: max(a, 0.0), lambda a: float(a > 0)),
    ("relu(-a)", lambda a: max(-a, 0.0), lambda a: -float(a < 0)),
    ("-a", lambda a: -a, lambda a: -1.0),
    ("- -a", lambda a: a, lambda a: 1.0),
    ("+a * 3", lambda a: 3 * a, lambda a: 3.0),
    ("a ** 3", lambda a: a ** 3, lambda a: 3 * a ** 2),
    ("a ** -2", lambda a: a ** -2, lambda a: -2 * a ** -3),
    ("a ** (-0.5)", lambda a: a ** -0.5, lambda a: -0.5 * a ** -1.5),
    ("-a ** 2", lambda a: -(a ** 2), lambda a: -2 * a),  # ** binds tighter than unary minus, as in Python
    ("2 * a + 3", lambda a: 2 * a + 3, lambda a: 2.0),
    ("1.5e1 / a - 0.25", lambda a: 15 / a - 0.25, lambda a: -15 / a ** 2),
    ("exp(-a * a) * tanh(a)", lambda a: math.exp(-a * a) * math.tanh(a),
     lambda a: -2 * a * math.exp(-a * a) * math.tanh(a) + math.exp(-a * a) * (1 - math.tanh(a) ** 2)),
    ("log(sigmoid(a))", lambda a: math.log(sigmoid(a)), lambda a: 1 - sigmoid(a)),
])
@pytest.mark.parametrize("a", [0.7, 2.5])
def test_one_variable_functions_against_hand_derivatives(source, f, df, a):
    root, n = run(source, a=a)
    assert close(root.data, f(a)), (root.data, f(a))
    assert close(n["a"].grad, df(a)), (n["a"].grad, df(a))


def test_relu_blocks_negative_inputs():
    _, n = run("relu(a) * b", a=-1.5, b=4.0)
    assert (n["a"].grad, n["b"].grad) == (0.0, 0.0)


def test_two_variables_and_quotient_rule():
    a, b = 1.3, -0.4
    root, n = run("tanh(a*b) + a / (b*b + 1)", a=a, b=b)
    t = math.tanh(a * b)
    assert close(root.data, t + a / (b * b + 1))
    assert close(n["a"].grad, (1 - t * t) * b + 1 / (b * b + 1))
    assert close(n["b"].grad, (1 - t * t) * a - a * 2 * b / (b * b + 1) ** 2)


def test_reused_names_accumulate():
    root, n = run("b = a + a; c = b + b", a=3.0)
    assert root.data == 12.0 and n["a"].grad == 4.0 and n["b"].grad == 2.0 and n["c"] is root
    root, n = run("s = a * a; s * a + s", a=1.5)  # a³ + a²
    assert close(root.data, 1.5 ** 3 + 1.5 ** 2)
    assert close(n["a"].grad, 3 * 1.5 ** 2 + 2 * 1.5)


def test_assigned_names_label_their_nodes():
    root, n = graph("h = w * x; o = h + 1\nL = o ** 2", w=2.0, x=3.0)
    assert set(n) == {"w", "x", "h", "o", "L"}
    assert root is n["L"] and root.label == "L" and root.data == 49.0
    assert n["h"].label == "h" and n["h"].data == 6.0 and n["h"].op.name == "mul"
    assert n["o"].parents[0] is n["h"]
    assert n["h"].parents == (n["w"], n["x"])
    assert n["w"].label == "w" and n["w"].op is None
    names = Names(root)
    assert [names[v] for v in toposort(root)] == ["w", "x", "h", "1", "o", "L"]


def test_assigning_a_number_makes_a_labelled_leaf():
    root, n = run("k = 2; k * a", a=5.0)
    assert n["k"].op is None and n["k"].label == "k" and n["k"].data == 2.0
    assert root.data == 10.0 and n["k"].grad == 5.0 and n["a"].grad == 2.0


def test_number_constants_are_leaves():
    root, _ = graph("3 * 0.5")
    assert root.data == 1.5 and root.op.name == "mul"
    assert [p.data for p in root.parents] == [3.0, 0.5]
    assert all(p.op is None and p.label is None for p in root.parents)
    lone, _ = graph("4")
    assert lone.data == 4.0 and lone.op is None


def test_the_last_statement_is_the_output():
    root, n = graph("a * 2; b = a + 1", a=1.0)
    assert root is n["b"] and root.data == 2.0


def test_values_are_floats():
    _, n = graph("a + b", a=1, b=2)
    assert type(n["a"].data) is float and n["b"].data == 2.0


def test_the_allowed_functions():
    assert FUNCTIONS == ("exp", "log", "tanh", "sigmoid", "relu")


# --- refusals ---------------------------------------------------------------------------------------


def refusal(source: str, **values: float) -> str:
    with pytest.raises(ExprError) as info:
        graph(source, **values)
    message = str(info.value)
    assert "\n" not in message, message
    return message


def assert_points_at(message: str, source: str, column: int) -> None:
    """`... at column N: <source up to N>⟶<the rest>`: the marker sits just before column N."""
    assert f"at column {column}: " in message, message
    assert message.endswith(f"at column {column}: " + source[:column - 1] + "⟶" + source[column - 1:]), message


@pytest.mark.parametrize(("source", "column", "words"), [
    ("(a + b", 1, "never closed"),
    ("a + (b * 2", 5, "never closed"),
    ("a + zz", 5, "unknown name 'zz'"),
    ("a + w.x", 5, "Attribute"),
    ("w.x", 1, "Attribute"),
    ('__import__("os")', 1, "only these functions are allowed"),
    ('a + open("f")', 5, "only these functions are allowed"),
    ("w ** x", 6, "exponent of ** must be a number"),
    ("w ** -x", 6, "exponent of ** must be a number"),
    ("w ** (a + 1)", 7, "exponent of ** must be a number"),
    ("lambda: a", 1, "Lambda"),
    ("a * (lambda: 1)()", 5, "only these functions are allowed"),
    ("w[0]", 1, "Subscript"),
    ("a + w[0]", 5, "Subscript"),
    ("a < b", 1, "Compare"),
    ("a + (b == a)", 6, "Compare"),
    ('"text"', 1, "not allowed"),
    ("True * a", 1, "not allowed"),
    ("exp(a, b)", 1, "exactly one argument"),
    ("1 +* 2", 4, "invalid syntax"),
    ("h = a * 2; h + zz", 16, "unknown name 'zz'"),
    ("a = b = 1", 1, "only `name = expression`"),
    ("import os", 1, "only `name = expression`"),
])
def test_refusals_point_at_the_column(source, column, words):
    message = refusal(source, a=1.0, b=2.0, w=3.0, x=4.0)
    assert words in message, message
    assert_points_at(message, source, column)


@pytest.mark.parametrize("source", ["", "   ", " ; ;\n"])
def test_empty_input_is_refused(source):
    assert "empty expression" in refusal(source)


def test_unknown_name_suggests_set():
    assert "--set zz=NUMBER" in refusal("a + zz", a=1.0)


@pytest.mark.parametrize("template", [
    'open("{marker}", "w")',
    '__import__("pathlib").Path("{marker}").touch()',
    'exp(open("{marker}", "w"))',
    '[open("{marker}", "w") for i in [1]]',
])
def test_nothing_is_executed(tmp_path, template):
    marker = tmp_path / "marker"
    source = template.format(marker=marker)
    refusal(source)
    assert not marker.exists()


# --- once bugs: a column in characters, one line for any source, every refusal an ExprError ----------------


def test_column_counts_characters_not_utf8_bytes():
    # ast's col_offset counts UTF-8 bytes; `ŷ` (a name the project itself uses) is one character but two bytes
    source = "ŷ + zz"
    assert_points_at(refusal(source, **{"ŷ": 1.0}), source, 5)


def test_an_error_in_a_later_line_is_still_one_line():
    message = refusal("h = a * 2\nh + zz", a=1.0)  # refusal() checks the message has no newline
    assert message.startswith("unknown name 'zz'") and message.endswith("h = a * 2⏎h + ⟶zz")


def test_a_comment_alone_is_an_expr_error():
    assert refusal("# just a comment").startswith("empty expression")


def test_a_boolean_exponent_is_refused():
    # `True` alone is refused as "not allowed", and Value ** True raises TypeError; as an exponent it slips through
    message = refusal("w ** True", w=3.0)
    assert message.startswith("the exponent of ** must be a number")
    assert_points_at(message, "w ** True", 6)


# --- names: aliases and redefinitions ---------------------------------------------------------------


def test_a_bare_name_assignment_aliases_the_node():
    out, names = graph("a = b; c = a*b", b=3.0)
    assert names["a"] is names["b"]  # one node, two names
    out.backward()
    assert out.data == 9.0
    assert names["b"].grad == 6.0  # d(b*b)/db, both paths reaching the same leaf


@pytest.mark.parametrize("source, values", [
    ("y = w*x; y = y + 1", {"w": 2.0, "x": 3.0}),
    ("b = 2*b", {"b": 1.0}),  # a name given a value with --set is defined too
])
def test_redefining_a_name_is_refused(source, values):
    with pytest.raises(ExprError, match="already defined"):
        graph(source, **values)


def test_a_syntax_error_column_counts_characters_not_bytes():
    message = refusal("ŷŷŷ + $")
    assert "at column 7:" in message and "ŷŷŷ + ⟶$" in message
