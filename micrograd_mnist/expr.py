"""Expressions typed by a learner, turned into `Value` graphs without `eval`.

    graph("b = a + a; c = b + b", a=3.0)        # a's gradient arrives along four paths
    graph("(w*x + b - y)**2", w=0.5, x=2, b=0.1, y=1)

Statements are separated by `;` or newlines; each `name = expression` labels
its node, and the last expression (or assignment) is the output. Python's `ast`
parses; only numbers, names, + - * / **, unary minus and the calls exp, log,
tanh, sigmoid and relu are accepted: anything else is refused with its position.
"""

from __future__ import annotations

import ast

from .value import Value

FUNCTIONS = ("exp", "log", "tanh", "sigmoid", "relu")
_BINARY = {ast.Add: "__add__", ast.Sub: "__sub__", ast.Mult: "__mul__", ast.Div: "__truediv__"}


class ExprError(ValueError):
    """A one-line message pointing at the offending column."""


def graph(source: str, **values: float) -> tuple[Value, dict[str, Value]]:
    """The output node and every named node (leaves and assignments)."""
    names: dict[str, Value] = {name: Value(float(v), label=name) for name, v in values.items()}
    out = None
    for start, text in _statements(source):
        try:
            tree = ast.parse(text, mode="exec")
        except SyntaxError as e:
            # SyntaxError counts characters already (ast nodes count UTF-8 bytes; see _chars)
            raise ExprError(_point(source, start + (e.offset or 1) - 1, e.msg or "invalid syntax")) from None
        if not tree.body:  # a comment
            continue
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
    """(offset, text) of each `;`- or newline-separated statement, stripped, with its column in `source`."""
    start = 0
    for piece in source.replace("\n", ";").split(";"):
        stripped = piece.strip()
        if stripped:
            yield start + len(piece) - len(piece.lstrip()), stripped
        start += len(piece) + 1


def _eval(node: ast.AST, names: dict[str, Value], where: tuple[str, int, str]):
    source, start, text = where

    def fail(message: str):
        raise ExprError(_point(source, start + _chars(text, node.col_offset), message))

    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return Value(float(node.value))
    if isinstance(node, ast.Name):
        if node.id not in names:
            fail(f"unknown name {node.id!r}: give it a value with --set {node.id}=NUMBER")
        return names[node.id]
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _eval(node.left, names, where), _eval(node.right, names, where)
        return getattr(left, _BINARY[type(node.op)])(right)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
        base = _eval(node.left, names, where)
        exponent = node.right
        sign = -1 if isinstance(exponent, ast.UnaryOp) and isinstance(exponent.op, ast.USub) else 1
        literal = exponent.operand if sign == -1 else exponent
        if not (isinstance(literal, ast.Constant) and isinstance(literal.value, (int, float))) \
                or isinstance(literal.value, bool):
            raise ExprError(_point(source, start + _chars(text, exponent.col_offset),
                                   "the exponent of ** must be a number (a constant power)"))
        return base ** (sign * literal.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_eval(node.operand, names, where)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.UAdd):
        return _eval(node.operand, names, where)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in FUNCTIONS:
        if len(node.args) != 1 or node.keywords:
            fail(f"{node.func.id}() takes exactly one argument")
        return getattr(_eval(node.args[0], names, where), node.func.id)()
    if isinstance(node, ast.Call):
        fail(f"only these functions are allowed: {', '.join(FUNCTIONS)}")
    fail(f"not allowed in an expression: {type(node).__name__}")


def _chars(text: str, utf8_offset: int) -> int:
    """ast counts columns in UTF-8 bytes; people count characters (ŷ is one)."""
    return len(text.encode()[:utf8_offset].decode(errors="ignore"))


def _point(source: str, offset: int, message: str) -> str:
    shown = source.replace("\n", "⏎")  # one line, same offsets
    return f"{message} at column {offset + 1}: {shown[:offset]}⟶{shown[offset:]}"
