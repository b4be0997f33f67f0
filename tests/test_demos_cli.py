"""The seed demos (`demos.run`, `micrograd-mnist demo`) and the backprop walk-through
(`micrograd-mnist backprop`, `walkthrough.interactive`; the quiz is in test_quiz.py).

Nothing here touches the network or a real MNIST: the cache and data folder point at empty
temporary folders and `data.load` refuses, unless a test hands the CLI tiny synthetic IDX files.
"""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from micrograd_mnist import cli, data, demos, walkthrough
from micrograd_mnist.backprop import steps
from micrograd_mnist.demos import single_neuron

SVG = "{http://www.w3.org/2000/svg}svg"
SINGLE_NEURON_STEPS = 4


@pytest.fixture(autouse=True)
def no_dataset(monkeypatch, tmp_path):
    """No cache, no data folder and no loader: data.load refuses (conftest's `offline` refuses downloads)."""
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("XDG_CACHE_HOME", str(empty))

    def refuse(*args, **kwargs):
        raise data.DataError("no data")

    monkeypatch.setattr(data, "load", refuse)


def run_demo(name: str, out) -> tuple[str, list]:
    lines: list[str] = []
    written = demos.run(name, out, "svg", log=lines.append)
    return "\n".join(lines), written


def number_after(pattern: str, text: str) -> float:
    match = re.search(pattern + r"\s*(-?[0-9.]+(?:e[-+]?\d+)?)", text)
    assert match, (pattern, text)
    return float(match.group(1))


def assert_svg(path) -> None:
    assert ET.parse(path).getroot().tag == SVG, path


def svg_texts(path) -> list[str]:
    """Every <text> of an SVG, whitespace (graphviz writes &#160;) collapsed to single spaces."""
    texts = ET.parse(path).getroot().iter("{http://www.w3.org/2000/svg}text")
    return [" ".join("".join(t.itertext()).split()) for t in texts]


# --- demos.run --------------------------------------------------------------------------------------


def test_every_demo_is_listed():
    assert set(demos.DEMOS) == {"single-neuron", "two-layer-collapse", "seed-tables", "layer-backprop"}


def test_demo_single_neuron(tmp_path):
    text, written = run_demo("single-neuron", tmp_path)
    assert [p.name for p in written] == ["single-neuron.svg", "single-neuron-784.svg"]
    for path in written:
        assert_svg(path)
        assert f"wrote {path}" in text
    assert "ŷ = w·x + b = 0.5·2.0 + 0.25 = 1.2500;  L = (ŷ − y)² = 0.0625" in text
    hand_dyhat, auto_dyhat = (float(v) for v in re.search(r"dL/dŷ = 2\(ŷ − y\) = (\S+)\s+\(autograd: (\S+)\)",
                                                            text).groups())
    assert hand_dyhat == auto_dyhat == -0.5
    for name, expected in (("w", -1.0), ("b", -0.5)):
        hand, auto = (float(v) for v in re.search(rf"dL/d{name} = dL/dŷ · \S+ = (\S+)\s+autograd: (\S+)",
                                                  text).groups())
        assert hand == auto == expected, name
    assert number_after(r"largest difference from autograd", text) < 1e-12
    assert "Σ 785 terms" in svg_texts(tmp_path / "single-neuron-784.svg")


def test_demo_two_layer_collapse(tmp_path):
    text, written = run_demo("two-layer-collapse", tmp_path)
    assert [p.name for p in written] == ["two-layer.svg", "collapsed.svg", "two-layer-relu.svg", "collapse-lines.svg"]
    for path in written:
        assert_svg(path)
        assert f"wrote {path}" in text
    # each quantity's row: two layers, one layer, |difference|
    rows = {m.group(1): [float(v) for v in m.group(2, 3, 4)]
            for m in re.finditer(r"^  (y|L = \(y − t\)²|dL/dy|dL/dx)\s+(\S+)\s+(\S+)\s+(\S+)$", text, flags=re.M)}
    assert set(rows) == {"y", "L = (y − t)²", "dL/dy", "dL/dx"}
    for two, one, difference in rows.values():
        assert two == one and difference < 1e-12
    assert rows["dL/dx"][0] != 0  # the gradient reached x, through both graphs
    assert number_after(r"W \(1×1\) = W1·W2 = \[", text) == pytest.approx(
        np.dot(demos.COLLAPSE_W1[0], [w for (w,) in demos.COLLAPSE_W2]), abs=0.005)
    assert "-0.00" not in text
    assert number_after(r"and it still misses by", text) > 0.1
    collapsed = svg_texts(tmp_path / "collapsed.svg")
    assert "W = W1·W2" in collapsed and "b = b1·W2 + b2" in collapsed
    assert "ReLU" in svg_texts(tmp_path / "two-layer-relu.svg")
    assert "ReLU" not in " ".join(svg_texts(tmp_path / "two-layer.svg"))


def test_demo_seed_tables(tmp_path):
    out = tmp_path / "pictures"
    text, written = run_demo("seed-tables", out)
    assert written == [] and not out.exists()  # tables only, no pictures
    rows = {line.split()[0]: line.split() for line in text.splitlines() if line.strip()}
    assert rows["N1"][-1] == "4.800" and rows["N2"][-1] == "1.210" and rows["N3"][-1] == "2.385"
    expected = {"s1": "4.800 1.210 2.385", "s2": "3.310 1.662 1.661", "s3": "3.310 2.001 0.381"}
    for sample, outputs in expected.items():
        fields = rows[sample]
        assert " ".join(fields[5:8]) == outputs, fields  # Tensor engine
        assert " ".join(fields[8:11]) == outputs, fields  # Value engine
    assert number_after(r"engines agree to", text) < 1e-12


def test_demo_layer_backprop(tmp_path):
    text, written = run_demo("layer-backprop", tmp_path)
    assert [p.name for p in written] == ["layer-backprop.svg"]
    assert_svg(written[0])
    errors = [float(v) for v in re.findall(r"\|table − autograd\| = (\S+)", text)]
    assert len(errors) == 3
    assert all(e < 1e-12 for e in errors), errors
    order = [line.split()[1] for line in text.splitlines() if re.match(r"\s+\d\. ", line)]
    assert order == ["Loss", "Linear₃", "ReLU", "Linear₂", "ReLU", "Linear₁"]
    assert written[0].read_text(encoding="utf-8").count('class="cluster"') == 5  # one per layer of 4-5-3-2
    assert "Linear(5 → 3)" in written[0].read_text(encoding="utf-8")


def test_demo_without_a_folder_draws_nothing():
    lines: list[str] = []
    assert demos.run("two-layer-collapse", None, log=lines.append) == []
    assert lines and not any("wrote" in line for line in lines)


# --- micrograd-mnist demo -------------------------------------------------------------------------


def test_cli_demo_single_neuron_without_mnist(capsys, tmp_path):
    out = tmp_path / "pictures"
    assert cli.main(["demo", "single-neuron", "--out", str(out), "--format", "svg"]) == 0
    stdout = capsys.readouterr().out
    assert "MNIST is not on this machine, so the 784-input neuron reads a drawn ring" in stdout
    assert "dL/dw = dL/dŷ · x = -1.0000   autograd: -1.0000" in stdout
    assert sorted(p.name for p in out.iterdir()) == ["single-neuron-784.svg", "single-neuron.svg"]
    for path in out.iterdir():
        assert_svg(path)


def test_cli_demo_single_neuron_reads_a_digit_from_data_dir(capsys, tmp_path, monkeypatch):
    monkeypatch.undo()  # the real loader, reading only the given folder
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "empty-cache"))
    monkeypatch.delenv(data.ENV_VAR, raising=False)
    folder = tmp_path / "idx"
    digit = np.zeros((28, 28), np.uint8)
    digit[6:22, 12:16] = 255  # a "1"
    images = np.stack([digit, digit[::-1]])
    for name, array in zip(data.FILES, (images, np.array([1, 1], np.uint8), images[:1], np.array([7], np.uint8))):
        data.write_idx(folder / name, array)
    out = tmp_path / "pictures"
    assert cli.main(["demo", "single-neuron", "--out", str(out), "--format", "dot", "--data-dir", str(folder)]) == 0
    stdout = capsys.readouterr().out
    assert "reads MNIST test image 0, a 7" in stdout
    # the same weights as the demo, on this digit: ŷ = b + Σ wᵢ·xᵢ, summed in the same order
    ws = np.random.default_rng(0).normal(0, 0.05, 784)
    y_hat = 0.1
    for w, x in zip(ws, digit.ravel().astype(np.float32) / 255):
        y_hat += float(w) * float(x)
    assert f"ŷ = Σ wᵢ·xᵢ + b = {y_hat:.4f};" in stdout
    assert sorted(p.name for p in out.iterdir()) == ["single-neuron-784.dot", "single-neuron.dot"]
    assert "Σ  785 terms" in (out / "single-neuron-784.dot").read_text(encoding="utf-8")


def test_cli_demo_seed_tables_prints_the_table(capsys, tmp_path):
    assert cli.main(["demo", "seed-tables", "--out", str(tmp_path / "p")]) == 0
    assert "4.800  1.210  2.385     4.800  1.210  2.385" in capsys.readouterr().out


def test_cli_demo_unknown_name_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["demo", "no-such-demo"])
    assert info.value.code == 2
    assert "invalid choice: 'no-such-demo'" in capsys.readouterr().err


# --- micrograd-mnist backprop ---------------------------------------------------------------------


def step_numbers(text: str) -> list[int]:
    return [int(n) for n in re.findall(r"^step (\d+): ", text, flags=re.M)]


def test_backprop_all_prints_every_step(capsys):
    assert cli.main(["backprop", "single-neuron", "--all"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("forward pass:\n  w = 0.5000\n  x = 2.0000\n  w·x = w * x = 1.0000")
    assert step_numbers(out) == list(range(1, SINGLE_NEURON_STEPS + 1))
    assert "step 1: L = e ** 2 = 0.0625   [pow]" in out
    assert "dL/dw += dL/d(w·x) · ∂(w·x)/∂w = dL/d(w·x) · x = -0.50 · 2.00 = -1.00   (dL/dw now -1.00)" in out
    assert out.rstrip().endswith("grads so far: w -1.0000, x -0.2500, b -0.5000, y 0.5000")


def test_backprop_every_demo_graph(capsys):
    for name in demos.GRAPHS:
        assert cli.main(["backprop", name, "--all"]) == 0
        out = capsys.readouterr().out
        assert step_numbers(out) == list(range(1, len(list(steps(demos.GRAPHS[name]()))) + 1)), name


def test_backprop_expression_shows_accumulation(capsys):
    assert cli.main(["backprop", "--expr", "b = a + a; c = b + b", "--set", "a=3", "--all"]) == 0
    out = capsys.readouterr().out
    assert step_numbers(out) == [1, 2]
    assert "dc/da now 2.00" in out and "dc/da now 4.00" in out
    assert out.rstrip().endswith("grads so far: a 4.0000")


def test_backprop_expression_with_several_values(capsys):
    argv = ["backprop", "--expr", "L = (w*x + b - y)**2", "--set", "w=0.5", "x=2", "b=0.25", "y=1.5", "--all"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "grads so far: w -1.0000, x -0.2500, b -0.5000, y 0.5000" in out
    assert "dL/dw += " in out


def test_backprop_frames_one_picture_per_step(capsys, tmp_path):
    folder = tmp_path / "frames"
    assert cli.main(["backprop", "single-neuron", "--frames", str(folder), "--format", "svg"]) == 0
    out = capsys.readouterr().out
    names = sorted(p.name for p in folder.iterdir())
    assert names == [f"step-{k:03d}.svg" for k in range(1, SINGLE_NEURON_STEPS + 1)]
    assert f"wrote {SINGLE_NEURON_STEPS} pictures to {folder}/" in out
    assert "step 1:" not in out  # pictures asked for and stdin is no terminal: no text walk-through
    for k, name in enumerate(names, 1):
        text = (folder / name).read_text(encoding="utf-8")
        assert ET.fromstring(text.encode()).tag == SVG
        assert f"step {k}: backprop at " in text and "#ffb300" in text  # the amber of the node at work


def test_backprop_frames_as_dot_show_the_grads_of_each_moment(tmp_path, capsys):
    folder = tmp_path / "frames"
    assert cli.main(["backprop", "single-neuron", "--frames", str(folder), "--format", "dot", "--all"]) == 0
    assert step_numbers(capsys.readouterr().out) == [1, 2, 3, 4]
    first, last = (folder / "step-001.dot").read_text("utf-8"), (folder / "step-004.dot").read_text("utf-8")
    assert "{ w | data 0.5000 | grad 0.0000 }" in first  # w's gradient has not arrived at step 1
    assert "{ w | data 0.5000 | grad -1.0000 }" in last


def test_interactive_enter_back_quit():
    intro, frames = walkthrough.frames(single_neuron())
    keys = iter(["", "b", "", "q"])
    prompts, shown = [], []
    walkthrough.interactive(intro, frames, read=lambda prompt: prompts.append(prompt) or next(keys),
                            write=shown.append)
    assert shown[0] == intro
    assert [int(t.split(":")[0].split()[1]) for t in shown if t.startswith("step ")] == [1, 2, 1, 2]
    assert [p.split("]")[0] for p in prompts] == ["[1/4", "[2/4", "[1/4", "[2/4"]
    assert not any("last step" in t for t in shown)


def test_interactive_back_at_the_start_and_past_the_end():
    intro, frames = walkthrough.frames(single_neuron())
    keys = iter(["b", "", "", "", ""])
    shown: list[str] = []
    walkthrough.interactive(intro, frames, read=lambda prompt: next(keys), write=shown.append)
    assert [t.split(":")[0] for t in shown if t.startswith("step ")] == ["step 1", "step 1", "step 2", "step 3",
                                                                          "step 4"]
    assert "last step" in shown[-1]


def test_interactive_stops_at_end_of_input():
    intro, frames = walkthrough.frames(single_neuron())

    def read(prompt):
        raise EOFError

    shown: list[str] = []
    walkthrough.interactive(intro, frames, read=read, write=shown.append)
    assert [t for t in shown if t.startswith("step ")] == [frames[0].text]


def test_cli_interactive_on_a_terminal(capsys, monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr("sys.stdin", Terminal("\n\nq\n"))
    assert cli.main(["backprop", "single-neuron"]) == 0
    out = capsys.readouterr().out
    assert step_numbers(out) == [1, 2, 3]
    assert "[3/4] Enter next · b back · q quit >" in out


# --- errors ---------------------------------------------------------------------------------------


def one_error_line(capsys, argv: list[str]) -> str:
    assert cli.main(argv) == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("micrograd-mnist backprop: "), lines
    return lines[0]


def test_bad_expression(capsys):
    line = one_error_line(capsys, ["backprop", "--expr", "(a + b", "--set", "a=1", "b=2", "--all"])
    assert "column 1" in line and "⟶(a + b" in line
    line = one_error_line(capsys, ["backprop", "--expr", "a * zz", "--set", "a=1"])
    assert "unknown name 'zz'" in line and "column 5" in line


@pytest.mark.parametrize("item", ["x", "x=", "=3", "x=abc", "2x=1"])
def test_bad_set(capsys, item):
    assert "--set takes NAME=NUMBER" in one_error_line(capsys, ["backprop", "--expr", "x * x", "--set", item])


def test_demo_and_expression_together(capsys):
    line = one_error_line(capsys, ["backprop", "single-neuron", "--expr", "a * a", "--set", "a=1"])
    assert "exactly one of" in line


def test_neither_demo_nor_expression(capsys):
    assert "give exactly one of a DEMO" in one_error_line(capsys, ["backprop", "--all"])
    assert "give exactly one of a DEMO" in one_error_line(capsys, ["backprop"])


def test_a_lone_number_has_nothing_to_step_through(capsys):
    assert "nothing to backpropagate" in one_error_line(capsys, ["backprop", "--expr", "a", "--set", "a=2"])


def test_unknown_backprop_demo_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["backprop", "no-such-graph"])
    assert info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_stepper_leaves_values_untouched():
    root = single_neuron()
    before = [v.data for v in (root, *root.parents)]
    walkthrough.frames(root)
    assert [v.data for v in (root, *root.parents)] == before


# --- once bugs: no dot on the PATH, and the demos' other edges -------------------------------------------


@pytest.fixture
def no_dot(tmp_path, monkeypatch):
    """Graphviz's `dot` is not on the PATH."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))


def test_cli_demo_without_graphviz_is_a_one_line_error(capsys, tmp_path, no_dot):
    assert cli.main(["demo", "two-layer-collapse", "--out", str(tmp_path / "pictures")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("micrograd-mnist demo: ") and "apt-get install graphviz" in err


def test_cli_backprop_html_without_graphviz_is_a_one_line_error(capsys, tmp_path, no_dot):
    line = one_error_line(capsys, ["backprop", "single-neuron", "--html", str(tmp_path / "page.html")])
    assert "apt-get install graphviz" in line
    assert not (tmp_path / "page.html").exists()


def test_cli_backprop_frames_as_dot_need_no_graphviz(capsys, tmp_path, no_dot):
    assert cli.main(["backprop", "single-neuron", "--frames", str(tmp_path / "f"), "--format", "dot"]) == 0
    assert len(list((tmp_path / "f").iterdir())) == SINGLE_NEURON_STEPS


def test_cli_backprop_frames_into_a_file_is_a_one_line_error(capsys, tmp_path):
    existing = tmp_path / "a-file"
    existing.write_text("keep me")
    one_error_line(capsys, ["backprop", "single-neuron", "--frames", str(existing)])
    assert existing.read_text() == "keep me"


def test_cli_backprop_html_onto_a_folder_is_a_one_line_error(capsys, tmp_path):
    folder = tmp_path / "a-folder"
    folder.mkdir()
    one_error_line(capsys, ["backprop", "single-neuron", "--html", str(folder)])
    assert folder.is_dir() and not any(folder.iterdir())


@pytest.mark.parametrize("expr", ["log(x)", "x**0.5"])
def test_an_expression_undefined_at_the_given_values_is_one_line(capsys, expr):
    assert "at these values" in one_error_line(capsys, ["backprop", "--expr", expr, "--set", "x=0"])


def test_repeated_set_options_all_count(capsys):
    assert cli.main(["backprop", "--expr", "x*y", "--set", "x=1", "--set", "y=2", "--all"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert "x = 1.0000" in out and "y = 2.0000" in out
    assert "dL/dx += " in out and "dL/dy += " in out


def test_no_gradient_lines_into_plain_constants(capsys):
    assert cli.main(["backprop", "single-neuron", "--all"]) == 0
    out = capsys.readouterr().out
    for leaf in ("w", "x", "b", "y"):  # labelled leaves keep their lines
        assert f"dL/d{leaf} += " in out, leaf

    assert cli.main(["backprop", "layer-backprop", "--all"]) == 0  # loss (ŷ − 1.0)**2: 1.0 is a plain constant
    lines = [line.strip() for line in capsys.readouterr().out.splitlines()]
    assert "1 = 1.0000" in lines  # the constant is in the graph ...
    assert not [line for line in lines if line.startswith(("dL/d(1)", "dL/d1 +="))]  # ... but gets no line
    for leaf in ("x0", "x1", "W0[0,0]", "b4[0]"):  # indexed names read plainly: dL/dW0[0,0]
        assert any(line.startswith(f"dL/d{leaf} += ") for line in lines), leaf
