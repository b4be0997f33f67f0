"""The layers point one way: every module of micrograd_mnist and viz has a layer, and none imports a module of a
higher layer or takes part in an import cycle, counting the imports deferred into functions. README's "Layout"
draws the same table."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("micrograd_mnist", "viz")

# Lowest first; a module may import its own layer and the ones above it in this list, never one below.
LAYERS = {
    "engines": ["micrograd_mnist", "ops", "graph", "value", "tensor", "gradcheck", "expr", "files", "blas"],
    "models": ["nn", "nn.functional", "nn.scalar", "optim"],
    "learning": ["data", "images", "config", "checkpoint", "training", "evaluation", "analysis", "moons",
                 "backprop", "tensor_steps", "walkthrough", "inspect"],
    "drawing": ["viz", "viz.graph", "viz.plots", "viz.stepper_page", "viz.explore_page"],
    "commands": ["cli", "arguments", "plot_command", "explore", "demos"],
}


def full_name(short: str) -> str:
    return short if short.split(".")[0] in PACKAGES else f"micrograd_mnist.{short}"


LAYER = {full_name(m): i for i, modules in enumerate(LAYERS.values()) for m in modules}
NAMES = list(LAYERS)


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports(module: str, path: Path, known: set[str]) -> set[str]:
    """The project modules `module` imports anywhere in its file (inside functions too): `from P import X`
    counts as P.X when that is a module, else as P."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            out.update(f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names)
    return {name for name in out if name.split(".")[0] in PACKAGES}


def graph() -> dict[str, set[str]]:
    found = modules()
    return {module: imports(module, path, set(found)) - {module} for module, path in found.items()}


def test_every_module_has_a_layer():
    assert set(modules()) == set(LAYER), "place each new module in LAYERS (and README's Layout)"


def test_the_scan_sees_deferred_imports():
    edges = graph()
    assert "micrograd_mnist.plot_command" in edges["micrograd_mnist.cli"]  # imported inside build_parser
    assert "viz.plots" in edges["micrograd_mnist.plot_command"]  # inside run
    assert "micrograd_mnist.nn.functional" in edges["micrograd_mnist.nn"]  # `from .nn import functional`


def test_no_module_imports_a_higher_layer():
    upward = [f"{module} ({NAMES[LAYER[module]]}) imports {target} ({NAMES[LAYER[target]]})"
              for module, targets in graph().items() for target in sorted(targets)
              if module in LAYER and target in LAYER and LAYER[target] > LAYER[module]]
    assert upward == []


def test_viz_only_draws():
    """Drawing takes numbers and graphs: viz reads no data or checkpoints and trains or evaluates nothing
    (micrograd_mnist.analysis and .evaluation compute what its charts show)."""
    computing = {full_name(m) for m in ("data", "checkpoint", "config", "training", "evaluation", "analysis",
                                        "optim", "inspect", "moons")}
    found = [f"{module} imports {target}" for module, targets in graph().items() if module.startswith("viz")
             for target in sorted(targets & computing)]
    assert found == []


def test_there_are_no_import_cycles():
    edges, state, cycles = graph(), {}, []

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for target in sorted(edges.get(module, ())):
            if state.get(target) == "open":
                cycles.append(" -> ".join(path[path.index(target):] + [target]))
            elif target not in state:
                visit(target, [*path, target])
        state[module] = "done"

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])
    assert cycles == []
