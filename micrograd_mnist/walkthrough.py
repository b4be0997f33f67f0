"""`micrograd-mnist backprop`: walk a learner through backprop in the terminal, one chain-rule
step at a time — interactively, all at once, as a quiz, as pictures, or as one HTML page."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .backprop import Names, Step, bracket, chain_rule_line, describe, steps
from .graph import toposort
from .value import Value


@dataclass
class Frame:
    step: Step
    text: str
    dot: object = None  # the graph as it stood at this step (graphviz), when pictures were asked for


def forward_text(root: Value, names: Names) -> str:
    """The forward pass, node by node, in the order it was computed."""
    lines = ["forward pass:"]
    for node in toposort(root):
        if node.op is None:
            lines.append(f"  {names[node]} = {node.data:.4f}")
        else:
            lines.append("  " + describe(Step(0, node, node.op, 0.0, ()), names))
    return "\n".join(lines)


def frames(root: Value, pictures: bool = False) -> tuple[str, list[Frame]]:
    """Run backprop step by step, capturing each step's text (and graph) as it happens."""
    names = Names(root)
    loss = names[root]
    intro = forward_text(root, names)
    leaves = [n for n in toposort(root) if n.op is None and n.label]
    out = []
    for step in steps(root):
        lines = [f"step {step.index}: {describe(step, names)}   [{step.op.name}]",
                 f"  d{loss}/d{bracket(names[step.node])} = {step.upstream:.4f} arrived here"]
        lines += ["  " + chain_rule_line(step, edge, names, loss) for edge in _taught(step)]
        lines.append("  grads so far: " + ", ".join(f"{names[n]} {n.grad:.4f}" for n in leaves))
        dot = None
        if pictures:  # drawn now: the grads change with every step
            import viz

            dot = viz.draw(root, highlight=[step.node, *step.node.parents], names=names.names,
                           title=f"step {step.index}: backprop at {names[step.node]}")
        out.append(Frame(step, "\n".join(lines), dot))
    return intro, out


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


def quiz(intro: str, fs: list[Frame], loss: str, names: Names, read: Callable[[str], str] = input,
         write: Callable[[str], None] = print) -> tuple[int, int]:
    """Ask for each gradient contribution before revealing it; returns (right, asked)."""
    write(intro)
    right = asked = 0
    for frame in fs:
        step = frame.step
        node = bracket(names[step.node])
        write(f"\nstep {step.index}: {describe(step, names)};  d{loss}/d{node} = {step.upstream:.4f}")
        for edge in _taught(step):
            parent = bracket(names[edge.parent])
            prompt = f"  d{loss}/d{parent} += d{loss}/d{node} · ∂{node}/∂{parent} = ? "
            while True:
                try:
                    answer = read(prompt).strip()
                except EOFError:
                    write(f"\nscore: {right}/{asked}")
                    return right, asked
                try:
                    guess = float(answer)
                    break
                except ValueError:
                    write("  please type a number, e.g. -0.5")
            asked += 1
            ok = math.isclose(guess, edge.added, rel_tol=0.01, abs_tol=0.005)
            right += ok
            write(f"  {'✓ right' if ok else '✗ not quite'}: {chain_rule_line(step, edge, names, loss)}")
    write(f"\nscore: {right}/{asked}")
    return right, asked


def _taught(step: Step) -> list:
    """The edges worth a line: not the ones into plain constants (the 2 in x*2), whose gradient nobody uses."""
    return [e for e in step.edges if e.parent.op is not None or e.parent.label]


def write_frames(fs: list[Frame], folder: Path, format: str = "svg") -> list[Path]:
    import viz

    return [viz.render(frame.dot, folder / f"step-{frame.step.index:03d}.{format}") for frame in fs]


def write_html(path: Path, title: str, intro: str, fs: list[Frame]) -> Path:
    import viz
    from viz import stepper_page

    return stepper_page.write(path, title, intro, [(viz.pipe(f.dot, "svg").decode(), f.text) for f in fs])
