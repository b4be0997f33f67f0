"""`micrograd-mnist backprop` in the terminal: walk a learner through backprop one chain-rule step
at a time — interactively, all at once, or as a quiz. Every line is made from the step records of
`backprop.steps` (the page and the step pictures, in `viz`, read the same records)."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from fractions import Fraction

import numpy as np

from . import tensor_steps
from .backprop import (
    Edge,
    Frame,
    Names,
    Step,
    bracket,
    describe,
    fmt,
    forward_text,
    notes,
    partial,
    rule_text,
    step_text,
    steps,
    taught,
    where,
)
from .graph import building, toposort
from .value import Value


def frames(root: Value) -> tuple[str, list[Frame]]:
    """Run backprop step by step, capturing each step's text as it happens (the grads change every step)."""
    names = Names(root)
    leaves = [n for n in toposort(root) if n.op is None and n.label]
    with building():  # here, not in the generator `steps`: paused only while this loop runs, never between yields
        return forward_text(root, names), [Frame(s, step_text(s, names, names[root], leaves)) for s in steps(root)]


def interactive(intro: str, fs: list[Frame], read: Callable[[str], str] = input,
                write: Callable[[str], None] = print) -> None:
    """Enter = next, b = back, q = quit."""
    write(intro)
    i = 0
    while True:
        write("")
        write(fs[i].text)
        try:
            key = read(f"[{i + 1}/{len(fs)}] Enter next · b back · q quit > ").strip().lower()
        except EOFError:
            return
        if key == "q":
            return
        if key == "b":
            i = max(0, i - 1)
        elif i == len(fs) - 1:
            write("\nthat was the last step: every gradient is in place.")
            return
        else:
            i += 1


# --- the quiz -----------------------------------------------------------------------------------------

class _Quit(Exception):
    pass


def parse_number(text: str) -> float | None:
    """What a learner types: -0.5, -.5, −0.50 (a typographic minus), 1/2, 3e-2; None if it is not a number."""
    text = text.strip().replace("−", "-").replace("–", "-").replace(" ", "")
    try:
        return float(Fraction(text))
    except (ValueError, ZeroDivisionError, OverflowError):  # 1e400 is not an answer either
        return None


def close(guess: float, answer: float) -> bool:
    """Right to the two decimals the quiz shows (and 1% for big numbers)."""
    return math.isclose(guess, answer, rel_tol=0.01, abs_tol=0.006)


def quiz(intro: str, fs: list[Frame], loss: str, names: Names, read: Callable[[str], str] = input,
         write: Callable[[str], None] = print) -> tuple[int, int]:
    """Each chain-rule step as separate questions: the local derivative, what this path adds, and (when a
    node is reached by a second path) its running total. A wrong answer gets a hint and a retry, then the
    worked answer. `q` quits; Ctrl-C and the end of input print the score so far.
    Returns (chain-rule steps answered right first time, chain-rule steps asked)."""
    write(intro)
    write("\nFor every step, type a number (-0.5, -.5 and 1/2 all work); q quits.")

    def rounds():
        for frame in fs:
            step = frame.step
            write(f"\nstep {step.index}: {describe(step, names)};  d{loss}/d{bracket(names[step.node])} = "
                  f"{fmt(step.upstream, 4)} arrived")
            for note in notes(step, names, loss):
                write("  " + note)
            for edge in taught(step):
                path = f" (path {edge.arrival})" if edge.arrival > 1 else ""
                yield (_ask_edge(step, edge, names, loss, read, write),
                       f"step {step.index}: d{loss}/d{bracket(names[edge.parent])} through {names[step.node]}{path}")

    return _scored(rounds(), write, "chain-rule steps")


def _scored(rounds, write, what: str) -> tuple[int, int]:
    """Run a quiz's rounds, each (right first time?, what to look at again), and print the score: at the end,
    or early on `q`, the end of input or Ctrl-C (which then goes on to end the program)."""
    right, missed = 0, []
    try:
        for ok, name in rounds:
            if ok:
                right += 1
            else:
                missed.append(name)
    except _Quit:
        pass
    except EOFError:
        write("")
    except KeyboardInterrupt:
        write("\n(interrupted)")
        _score(write, right, missed, what)
        raise
    _score(write, right, missed, what)
    return right, right + len(missed)


def _score(write, right: int, missed: list[str], what: str) -> None:
    asked = right + len(missed)
    write(f"\nscore: {right}/{asked} {what} right first time")
    if missed:
        write("to look at again: " + "; ".join(missed))


def _ask_edge(step: Step, edge: Edge, names: Names, loss: str, read, write) -> bool:
    n, p, d = bracket(names[step.node]), bracket(names[edge.parent]), partial(step, edge, names)
    rule, values = rule_text(step, edge, names), where(step, edge, names)
    with_values = f"{rule}, with {values}" if values else rule
    ok = _ask(f"  {d} = ? ", edge.local, read, write,
              hint=f"the rule for {step.op.name}: {d} = {with_values}",
              worked=f"{d} = {rule} = {fmt(edge.local)}" + (f" (with {values})" if values else ""))
    before = edge.grad_after - edge.added
    ok &= _ask(f"  d{loss}/d{p} += d{loss}/d{n} · {d} = ? ", edge.added, read, write,
               hint=f"multiply what arrived (d{loss}/d{n} = {fmt(step.upstream)}) by the local derivative "
                    f"({d} = {fmt(edge.local)})",
               worked=f"{fmt(step.upstream)} · {fmt(edge.local)} = {fmt(edge.added)}: what this path adds to "
                      f"d{loss}/d{p}",
               trap=(edge.grad_after, f"that is d{loss}/d{p}'s running total; this asks what this one path adds")
               if edge.arrival > 1 else None)
    if edge.arrival > 1:  # a second path into the same node: its gradients add up
        ok &= _ask(f"  d{loss}/d{p} was {fmt(before)} before this path; now d{loss}/d{p} = ? ", edge.grad_after,
                   read, write,
                   hint=f"gradients from every path into {p} add up: {fmt(before)} + {fmt(edge.added)}",
                   worked=f"{fmt(before)} + {fmt(edge.added)} = {fmt(edge.grad_after)}: every path into {p} "
                          "adds its share")
    return ok


def _ask(prompt: str, answer, read, write, hint: str, worked: str,
         trap: tuple[float, str] | None = None, parse=parse_number, same=close,
         example: str = "a number, e.g. -0.5 or 1/2") -> bool:
    """Two tries: a hint after the first miss, the worked answer after the second. True if right at once."""
    for attempt in (1, 2):
        guess = None
        while guess is None:
            text = read(prompt)
            if text.strip().lower() in ("q", "quit", "exit"):
                raise _Quit
            guess = parse(text)
            if guess is None:
                write(f"  please type {example} (q quits)")
        if same(guess, answer):
            write("  ✓ right" + ("" if attempt == 1 else " (second try)"))
            return attempt == 1
        if attempt == 1:
            near_trap = trap is not None and not same(trap[0], answer) and same(guess, trap[0])
            write(f"  ✗ not yet: {trap[1] if near_trap else 'hint: ' + hint}")
    write(f"  ✗ the answer: {worked}")
    return False


# --- the quiz on a Tensor graph: shapes first, then one entry ------------------------------------------------

def parse_shape(text: str) -> tuple[int, ...] | None:
    """What a learner types for a shape: `4,3`, `(4, 3)`, `4x3`, `4 × 3`; `number` or `()` for one number."""
    text = text.strip().lower()
    if text in ("()", "number", "a number", "scalar", "1 number"):
        return ()
    if not re.fullmatch(r"\(?\s*\d+(\s*[,x× ]\s*\d+)*\s*,?\s*\)?", text):
        return None
    return tuple(int(n) for n in re.findall(r"\d+", text))


def tensor_quiz(intro: str, fs: list[Frame], loss: str, names: Names, read: Callable[[str], str] = input,
                write: Callable[[str], None] = print) -> tuple[int, int]:
    """Per input of every step: the shape of its gradient, then its biggest entry. Returns (right, asked)."""
    write(intro)
    write("\nFor every gradient: its shape (type 4,3 or 4x3, or `number`), then one entry; q quits.")

    def rounds():
        for frame in fs:
            step = frame.step
            write(f"\nstep {step.index}: {describe(step, names)};  d{loss}/d{bracket(names[step.node])} arrived:")
            write(tensor_steps.matrix(step.upstream))
            for edge in step.edges:
                p, rule = names[edge.parent], tensor_steps.rule_text(step, edge, names, loss)
                shape = tuple(edge.added.shape)
                ok = _ask(f"  what shape is d{loss}/d{p}? ", shape, read, write, parse=parse_shape,
                          same=lambda a, b: tuple(a) == tuple(b), example="a shape, e.g. 4,3 (or `number`)",
                          hint=f"a gradient has the shape of what it is the gradient of: {p} is "
                               f"{tuple(edge.parent.data.shape)}",
                          worked=f"{shape}: d{loss}/d{p} is shaped like {p}")
                index = np.unravel_index(int(np.abs(edge.added).argmax()), shape) if shape else ()
                at = f"[{','.join(map(str, index))}]" if shape else ""
                value = float(edge.added[index])
                ok &= _ask(f"  d{loss}/d{bracket(p)}{at} = ? ", value, read, write,
                           hint=f"d{loss}/d{p} += {rule}: take entry {at or 'the number'} of it",
                           worked=f"{fmt(value, 4)}, entry {at or '(the one number)'} of {rule}")
                yield ok, f"step {step.index}: d{loss}/d{p}"

    return _scored(rounds(), write, "gradients")
