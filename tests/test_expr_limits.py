"""`--expr` as hostile input: length, size and nesting limits with one-line errors (no RecursionError anywhere),
expressions just under each limit still work, and random text raises only the parser's own errors.
"""

from __future__ import annotations

import traceback

import pytest
from conftest import error_lines
from hypothesis import given
from hypothesis import strategies as st

from micrograd_mnist import cli
from micrograd_mnist.expr import FUNCTIONS, MAX_CHARS, MAX_DEPTH, MAX_NODES, ExprError, graph


def backprop(capsys, expr: str) -> tuple[int, str, list[str]]:
    values = [v for v in ("a=1.5", "b=-0.5") if v[0] in expr]  # --set refuses a name the expression does not use
    code = cli.main(["backprop", f"--expr={expr}", *(["--set", *values] if values else []), "--all"])
    out, err = capsys.readouterr()
    return code, out, error_lines(err, "backprop")


def terms(n: int) -> str:
    """a+b+a+b+...: n names, n - 1 additions, 2n - 1 nodes, one level of nesting."""
    return "+".join("ab"[i % 2] for i in range(n))


# --- over each limit: one line that says the limit ---------------------------------------------------------------

@pytest.mark.parametrize("expr, words", [
    ("+".join(["a"] * 1000), f"more than {MAX_NODES} numbers, names and operations"),  # RecursionError before
    (terms(MAX_NODES // 2 + 1), f"more than {MAX_NODES} numbers, names and operations"),
    ("h = " + terms(200) + "; " + terms(60), f"more than {MAX_NODES} numbers, names and operations"),  # in all
    ("-" * 5000 + "a", f"{5001:,} characters long, more than the {MAX_CHARS:,} allowed"),
    ("a" + " " * MAX_CHARS, f"{MAX_CHARS + 1:,} characters long"),
    ("-" * (MAX_DEPTH + 1) + "a", f"nested more than {MAX_DEPTH} levels deep"),
    ("exp(" * 60 + "a" + ")" * 60, f"nested more than {MAX_DEPTH} levels deep"),
    ("a*(" * 60 + "b" + ")" * 60, f"nested more than {MAX_DEPTH} levels deep"),
    ("(" * 250 + "a" + ")" * 250, "too many nested parentheses"),  # Python's own limit, its own words
    ("a + " + "9" * 400, "too big for a float"),
    ("a ** " + "9" * 400, "too big for a float"),
])
def test_limits_are_one_line_errors(capsys, expr, words):
    code, _, lines = backprop(capsys, expr)
    assert code == 2 and len(lines) == 1, lines
    assert words in lines[0], lines[0]


def test_a_python_warning_is_part_of_the_one_line_error(capsys):
    code, _, lines = backprop(capsys, "1if a else 2")  # Python warns "invalid decimal literal" on a line of its own
    assert code == 2 and lines == ["micrograd-mnist backprop: invalid decimal literal at column 1: ⟶1if a else 2"]


# --- just under each limit: still a walk-through -----------------------------------------------------------------

@pytest.mark.parametrize("expr", [
    terms(MAX_NODES // 2),  # 499 nodes
    "-" * (MAX_DEPTH - 1) + "a",  # 50 levels: the unary minuses and the name
    "tanh(" * (MAX_DEPTH - 1) + "a" + ")" * (MAX_DEPTH - 1),
    "(" * 150 + "a * b" + ")" * 150,  # brackets that only group are no deeper
    (terms(100) + " " * MAX_CHARS)[:MAX_CHARS],
])
def test_just_under_the_limits_works(capsys, expr):
    code, out, lines = backprop(capsys, expr)
    assert code == 0 and lines == [], lines
    assert out.startswith("forward pass:") and "step 1:" in out


def test_a_long_sum_is_not_deep():
    root, names = graph(terms(MAX_NODES // 2), a=1.0, b=2.0)
    root.backward()
    assert root.data == 125 * 1.0 + 125 * 2.0 and names["a"].grad == 125 and names["b"].grad == 125


def test_a_carriage_return_separates_statements_like_a_newline():
    root, names = graph("h = a * b\rh + a\r\n", a=2.0, b=3.0)  # a lone \r used to escape as a plain ValueError
    assert root.data == 8.0 and names["h"].data == 6.0


# --- random text: ExprError, or an arithmetic error of the forward pass at these values --------------------------

CHARACTERS = "ab xy0123456789.e+-*/()=;#_,\n\r\t" + "".join(FUNCTIONS)
PIECES = ["exp(", "log(", "tanh(", "sigmoid(", "relu(", "(", ")", "a", "b", "x", "h", "0", "2", "0.5", "1e308",
          "-", "+", "*", "/", "**", " ", ";", "=", "\n"]


def check_graph(source: str) -> None:
    try:
        graph(source, a=1.0, b=-2.0, x=0.0)
    except ExprError as e:
        assert "\n" not in str(e)
    except (ArithmeticError, ValueError) as e:
        # only the forward pass at these values (1/0, log(-2), exp(1e308)) may fail otherwise: raised in the op table
        where = [frame.filename for frame in traceback.extract_tb(e.__traceback__)]
        assert where[-1].endswith("ops.py"), (type(e).__name__, e, where)


@given(st.text(alphabet=CHARACTERS, max_size=60))
def test_random_expression_characters(source):
    check_graph(source)


@given(st.lists(st.sampled_from(PIECES), max_size=40).map("".join))
def test_random_expression_pieces(source):
    check_graph(source)


@given(st.text(max_size=40))
def test_arbitrary_text(source):
    check_graph(source)
