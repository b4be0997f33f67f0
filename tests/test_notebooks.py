"""The notebooks in examples/ run top to bottom, and their committed outputs are what the code gives today.

Cells tagged "data" depend on the dataset (the committed outputs come from real MNIST, the test runs on a
small synthetic set), so only their running without error is checked. Every other cell's text must be what
is committed (memory addresses aside); pictures must be where they are committed (graphviz numbers its
nodes by id(), so an SVG differs from run to run in its names, not in what it shows).

    python tests/test_notebooks.py     (`make notebooks`) re-executes them and rewrites them in place.
"""

from __future__ import annotations

import copy
import re
import sys
import tempfile
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
NOTEBOOKS = sorted(EXAMPLES.glob("*.ipynb"))
DATA_TAG = "data"
ADDRESS = re.compile(r"0x[0-9a-fA-F]{6,}")


def execute(nb, cwd: Path):
    """Run `nb` in a fresh kernel of this interpreter (jupyter_client starts `python` kernels with
    sys.executable, so the notebooks see this venv's packages) with `cwd` as the working folder."""
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}).execute()
    return nb


def summary(cell) -> list:
    """What a reader sees of a cell's outputs, in a form that is the same on every run."""
    seen: list = []
    for out in cell.get("outputs", []):
        if out.output_type == "stream":
            if seen and seen[-1][0] == out.name:  # the kernel may split one print's text in chunks
                seen[-1] = (out.name, seen[-1][1] + out.text)
            else:
                seen.append((out.name, out.text))
        elif out.output_type == "error":
            seen.append(("error", out.ename, out.evalue))
        else:
            data = out.get("data", {})
            seen.append(("display", ADDRESS.sub("0x…", data.get("text/plain", "")),
                         tuple(sorted(k for k in data if k != "text/plain"))))
    return [(kind, ADDRESS.sub("0x…", rest[0]), *rest[1:]) if kind in ("stdout", "stderr") else (kind, *rest)
            for kind, *rest in seen]


def is_data(cell) -> bool:
    return DATA_TAG in cell.get("metadata", {}).get("tags", [])


@pytest.fixture
def synthetic_data(monkeypatch, tmp_path, data_dir):
    """The kernel inherits this environment: the synthetic IDX set, and caches inside tmp_path."""
    monkeypatch.setenv("MICROGRAD_MNIST_DATA", str(data_dir))  # data.load reads it, never the network
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    monkeypatch.setenv("MPLCONFIGDIR", str(tmp_path / "matplotlib"))
    return data_dir


def test_there_are_notebooks():
    assert [p.name[:2] for p in NOTEBOOKS] == ["01", "02", "03", "04"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_and_is_up_to_date(path, synthetic_data, tmp_path):
    committed = nbformat.read(path, as_version=4)
    code = [c for c in committed.cells if c.cell_type == "code"]
    assert code and all(c.execution_count is not None for c in code), \
        f"{path.name} is committed without outputs: run `make notebooks`"
    ran = execute(copy.deepcopy(committed), tmp_path)  # raises CellExecutionError, naming the cell, on any error
    for i, (old, new) in enumerate(zip(committed.cells, ran.cells)):
        if old.cell_type != "code" or is_data(old):
            continue
        assert summary(new) == summary(old), (f"{path.name} cell {i} ({old.source.splitlines()[0]!r}) gives other "
                                              "output than is committed: run `make notebooks`")


def test_a_changed_output_is_noticed():
    cell = nbformat.v4.new_code_cell("print(1)")
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="1\n")]
    changed = copy.deepcopy(cell)
    changed.outputs[0].text = "2\n"
    moved = copy.deepcopy(cell)
    moved.outputs = [nbformat.v4.new_output("stream", name="stdout", text="1"),
                     nbformat.v4.new_output("stream", name="stdout", text="\n")]
    assert summary(changed) != summary(cell)
    assert summary(moved) == summary(cell)  # the same text in two chunks
    address = nbformat.v4.new_output("execute_result", data={"text/plain": "<object at 0x7f3a2b1c9d10>"})
    other = nbformat.v4.new_output("execute_result", data={"text/plain": "<object at 0x55d0e4a1b2c0>"})
    assert summary({"outputs": [address]}) == summary({"outputs": [other]})


def main() -> int:
    """Re-execute every notebook and write it back with its outputs (real MNIST, as `micrograd-mnist train`
    finds or fetches it). Pictures the notebooks write go to a scratch folder, not into examples/."""
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        with tempfile.TemporaryDirectory() as scratch:
            execute(nb, Path(scratch))
        nbformat.write(nb, path)
        print(f"wrote {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
