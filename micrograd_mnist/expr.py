"""Expressions typed by a learner, turned into `Value` graphs without `eval`.

    graph("b = a + a; c = b + b", a=3.0)        # a's gradient arrives along four paths
    graph("(w*x + b - y)**2", w=0.5, x=2, b=0.1, y=1)

Statements are separated by `;` or newlines; each `name = expression` labels
its node, and the last expression (or assignment) is the output. Python's `ast`
parses; only numbers, names, + - * / **, unary minus and the calls exp, log,
tanh, sigmoid and relu are accepted: anything else is refused with its position.

Sizes are limited (MAX_CHARS, MAX_NODES, MAX_DEPTH), each with a one-line error, so that no
input reaches a recursion limit in Python's parser or in the evaluator below.
"""

from __future__ import annotations

import ast
import re
import warnings

from .value import Value

FUNCTIONS = ("exp", "log", "tanh", "sigmoid", "relu")
_BINARY = {ast.Add: "__add__", ast.Sub: "__sub__", ast.Mult: "__mul__", ast.Div: "__truediv__"}

# Limits far above anything a learner types to step through (the single neuron "(w*x + b - y)**2" has
# 9 parts, nesting 3; a two-layer network written out by hand some 60 parts), and far below what breaks:
# 2,000 characters keep Python's parser (at most one level per character) clear of its limits near 3,000
# levels; 500 numbers, names and operations make a walk-through of some 250 steps, more than anyone reads;
# 50 levels of nesting bound the evaluator's recursion (a + b + c + ... is one level, however long).
MAX_CHARS = 2000
MAX_NODES = 500
MAX_DEPTH = 50


class ExprError(ValueError):
    """A one-line message pointing at the offending column."""


def graph(source: str, **values: float) -> tuple[Value, dict[str, Value]]:
    """The output node and every named node (leaves and assignments)."""
    if len(source) > MAX_CHARS:
        raise ExprError(f"the expression is {len(source):,} characters long, more than the {MAX_CHARS:,} allowed: "
                        "write a shorter one")
    names: dict[str, Value] = {name: Value(float(v), label=name) for name, v in values.items()}
    out, parts = None, 0
    for start, text in _statements(source):
        try:
            with warnings.catch_warnings():
                # as errors: Python's warnings about a literal (`1if`, "\d") become a SyntaxError at its
                # column, one line like every refusal, instead of a line of its own on stderr
                warnings.simplefilter("error")
                tree = ast.parse(text, mode="exec")
        except SyntaxError as e:
            # SyntaxError counts characters already (ast nodes count UTF-8 bytes; see _chars)
            raise ExprError(_point(source, start + (e.offset or 1) - 1, e.msg or "invalid syntax")) from None
        except (ValueError, RecursionError) as e:  # a null byte; a stack already deep when we were called
            raise ExprError(f"cannot parse the expression ({e}): write a simpler one") from None
        if not tree.body:  # a comment
            continue
        parts += sum(isinstance(node, ast.expr) for node in ast.walk(tree))  # ast.walk does not recurse
        if parts > MAX_NODES:
            raise ExprError(f"the expression has more than {MAX_NODES} numbers, names and operations: "
                            "write a smaller one")
        (statement,) = tree.body
        where = (source, start, text)
        if isinstance(statement, ast.Assign) and len(statement.targets) == 1 \
                and isinstance(statement.targets[0], ast.Name):
            target = statement.targets[0].id
            if target in names:  # one name, one node: a second meaning would make the graph lie
                raise ExprError(_point(source, start, f"{target!r} is already defined; give the new value a new name"))
            out = _eval(statement.value, names, where)
            if not isinstance(statement.value, ast.Name):  # `a = b` just gives b's node a second name
                out.label = target
            names[target] = out
        elif isinstance(statement, ast.Expr):
            out = _eval(statement.value, names, where)
        else:
            raise ExprError(_point(source, start, "only `name = expression` and expressions are allowed"))
    if out is None:
        raise ExprError("empty expression: write one such as \"(w*x + b - y)**2\"")
    if not isinstance(out, Value):
        out = Value(float(out))
    return out, names


def _statements(source: str):
    """(offset, text) of each `;`- or line-break-separated statement, stripped, with its column in `source`."""
    start = 0
    for piece in re.split(r"[;\n\r]", source):  # \r too: Python's parser reads it as a line break
        stripped = piece.strip()
        if stripped:
            yield start + len(piece) - len(piece.lstrip()), stripped
        start += len(piece) + 1


def _eval(node: ast.AST, names: dict[str, Value], where: tuple[str, int, str], depth: int = 1):
    """The Value of one expression node; `depth` counts nesting, which bounds this function's recursion."""
    if depth > MAX_DEPTH:
        _fail(where, node, f"nested more than {MAX_DEPTH} levels deep (brackets, calls, unary minus): "
                           "name a part first, `h = ...; ...h...`")
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return Value(_number(node, where))
    if isinstance(node, ast.Name):
        if node.id not in names:
            _fail(where, node, f"unknown name {node.id!r}: give it a value with --set {node.id}=NUMBER")
        return names[node.id]
    if _chained(node):
        # a + b - c + ... nests to the left as deep as it is long: a loop down that side, so a long sum
        # costs no recursion (each right operand is one level deeper, as if bracketed)
        chain = []
        while _chained(node):
            chain.append(node)
            node = node.left
        out = _eval(node, names, where, depth)
        for binop in reversed(chain):
            out = _apply(binop, out, names, where, depth)
        return out
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_eval(node.operand, names, where, depth + 1)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.UAdd):
        return _eval(node.operand, names, where, depth + 1)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in FUNCTIONS:
        if len(node.args) != 1 or node.keywords:
            _fail(where, node, f"{node.func.id}() takes exactly one argument")
        return getattr(_eval(node.args[0], names, where, depth + 1), node.func.id)()
    if isinstance(node, ast.Call):
        _fail(where, node, f"only these functions are allowed: {', '.join(FUNCTIONS)}")
    _fail(where, node, f"not allowed in an expression: {type(node).__name__}")


def _chained(node: ast.AST) -> bool:
    return isinstance(node, ast.BinOp) and (type(node.op) in _BINARY or isinstance(node.op, ast.Pow))


def _apply(node: ast.BinOp, left: Value, names: dict[str, Value], where: tuple[str, int, str], depth: int):
    """`left (op) node.right`, for a BinOp whose left side is already `left`."""
    if not isinstance(node.op, ast.Pow):
        return getattr(left, _BINARY[type(node.op)])(_eval(node.right, names, where, depth + 1))
    exponent = node.right
    sign = -1 if isinstance(exponent, ast.UnaryOp) and isinstance(exponent.op, ast.USub) else 1
    literal = exponent.operand if sign == -1 else exponent
    if not (isinstance(literal, ast.Constant) and isinstance(literal.value, (int, float))) \
            or isinstance(literal.value, bool):
        _fail(where, exponent, "the exponent of ** must be a number (a constant power)")
    _number(literal, where)
    return left ** (sign * literal.value)


def _number(node: ast.Constant, where: tuple[str, int, str]) -> float:
    try:
        return float(node.value)
    except OverflowError:  # an integer literal of 309 digits or more
        _fail(where, node, "this number is too big for a float (at most about 1.8e308)")


def _fail(where: tuple[str, int, str], node: ast.AST, message: str):
    source, start, text = where
    raise ExprError(_point(source, start + _chars(text, node.col_offset), message))


def _chars(text: str, utf8_offset: int) -> int:
    """ast counts columns in UTF-8 bytes; people count characters (ŷ is one)."""
    return len(text.encode()[:utf8_offset].decode(errors="ignore"))


def _point(source: str, offset: int, message: str) -> str:
    shown = source.replace("\n", "⏎").replace("\r", "⏎")  # one line, same offsets
    return f"{message} at column {offset + 1}: {shown[:offset]}⟶{shown[offset:]}"
