"""The backprop quiz (`micrograd-mnist backprop ... --quiz`, `walkthrough.quiz`): its questions, hints,
worked answers and score, with injected read/write; then the real CLI driven through a pseudo-terminal,
the way a learner types at it (answers, `q`, Ctrl-C, a wrong answer then the right one).

The graph most tests use is `b = a + a; c = b + b` at a = 3. Worked by hand:
  forward:  b = 3 + 3 = 6,  c = 6 + 6 = 12
  step 1 (c = b + b, dc/dc = 1 arrived):
    first b:   ∂c/∂b = 1 (add), adds 1·1 = 1, dc/db 0 → 1
    second b:  ∂c/∂b = 1,       adds 1·1 = 1, dc/db 1 → 2   (second path into b: running total asked)
  step 2 (b = a + a, dc/db = 2 arrived):
    first a:   ∂b/∂a = 1, adds 2·1 = 2, dc/da 0 → 2
    second a:  ∂b/∂a = 1, adds 2·1 = 2, dc/da 2 → 4         (second path into a: running total asked)
So four chain-rule steps (edges) and ten questions: 2 per edge, plus 2 running totals.
"""

from __future__ import annotations

import io
import math
import os
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import scripted

from micrograd_mnist import cli, walkthrough
from micrograd_mnist.backprop import Names, steps, taught
from micrograd_mnist.demos import single_neuron
from micrograd_mnist.expr import graph
from micrograd_mnist.walkthrough import close, parse_number

EXPR = "b = a + a; c = b + b"

# The answers worked out in the module docstring, question by question.
RIGHT = ["1", "1",  # step 1, first b: ∂c/∂b, what it adds
         "1", "1", "2",  # step 1, second b: ∂c/∂b, what it adds, dc/db's running total
         "1", "2",  # step 2, first a: ∂b/∂a, what it adds (dc/db = 2 arrived)
         "1", "2", "4"]  # step 2, second a: ∂b/∂a, what it adds, dc/da's running total
SCORE_LINE = "\nscore: {}/{} chain-rule steps right first time"


def doubled():
    root, _ = graph(EXPR, a=3.0)
    return root


def run_quiz(root, answers: list[str]) -> tuple[tuple[int, int], list[str], list[str]]:
    """Quiz on `root`, typing `answers` in turn, then end of input. Returns (score, prompts, lines written)."""
    names = Names(root)
    intro, fs = walkthrough.frames(root)
    prompts, shown = [], []
    score = walkthrough.quiz(intro, fs, names[root], names, read=scripted(answers, prompts), write=shown.append)
    return score, prompts, shown


# --- the questions and the score ------------------------------------------------------------------------


# ∂node/∂parent for every edge of every step, by hand: 2e at e = -0.25; 1 and -1 for ŷ - y; 1 and 1 for
# w·x + b; x = 2 and w = 0.5 for w * x. What each edge adds is that times dL/dnode (the SINGLE_NEURON_ADDED below).
SINGLE_NEURON_LOCAL = [-0.5, 1.0, -1.0, 1.0, 1.0, 2.0, 0.5]
SINGLE_NEURON_ADDED = [-0.5, -0.5, 0.5, -0.5, -0.5, -1.0, -0.25]  # times dL/dnode: -0.5 everywhere below L
SINGLE_NEURON_ANSWERS = [f"{x:g}" for pair in zip(SINGLE_NEURON_LOCAL, SINGLE_NEURON_ADDED) for x in pair]


def test_quiz_on_the_single_neuron_scores_full_marks():
    score, prompts, shown = run_quiz(single_neuron(), SINGLE_NEURON_ANSWERS)
    assert score == (7, 7)  # no node is reached twice, so no running-total questions
    assert prompts[-2:] == ["  ∂(w·x)/∂x = ? ", "  dL/dx += dL/d(w·x) · ∂(w·x)/∂x = ? "]
    assert sum("✓ right" in line for line in shown) == 14
    assert shown[-1] == "\nscore: 7/7 chain-rule steps right first time"


def test_cli_quiz_reads_stdin(capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("".join(f"{a}\n" for a in SINGLE_NEURON_ANSWERS)))
    assert cli.main(["backprop", "single-neuron", "--quiz"]) == 0
    assert "score: 7/7" in capsys.readouterr().out



def test_right_answers_score_full_marks():
    score, prompts, shown = run_quiz(doubled(), RIGHT)
    assert score == (4, 4)
    assert len(prompts) == 10  # every answer was used, and no question was asked twice
    assert sum(line == "  ✓ right" for line in shown) == 10
    assert shown[-1] == SCORE_LINE.format(4, 4)
    assert not any(line.startswith("to look at again") for line in shown)


def test_the_questions_asked():
    _, prompts, _ = run_quiz(doubled(), RIGHT)
    assert prompts[:2] == ["  ∂c/∂b = ? ", "  dc/db += dc/dc · ∂c/∂b = ? "]
    # the running totals, each asked on the second path only, with the total before it (1, then 2)
    assert prompts[4] == "  dc/db was 1.00 before this path; now dc/db = ? "
    assert prompts[9] == "  dc/da was 2.00 before this path; now dc/da = ? "
    assert sum("before this path" in p for p in prompts) == 2


def test_right_answers_read_from_the_step_records():
    """The same quiz, its answers taken from the step records rather than from the docstring."""
    answers, edges = [], 0
    for step in steps(doubled()):
        for edge in taught(step):
            edges += 1
            answers += [f"{edge.local:g}", f"{edge.added:g}"]
            if edge.arrival > 1:
                answers.append(f"{edge.grad_after:g}")
    assert answers == RIGHT  # the records agree with the hand working
    score, _, _ = run_quiz(doubled(), answers)
    assert score == (edges, edges) == (4, 4)


def test_running_total_for_what_this_path_adds_gets_its_own_message():
    # step 1, second b: this path adds 1, but dc/db's running total is 2 — the learner answers 2
    answers = ["1", "1", "1", "2", "1", "2", *RIGHT[5:]]
    score, prompts, shown = run_quiz(doubled(), answers)
    assert "  ✗ not yet: that is dc/db's running total; this asks what this one path adds" in shown
    assert prompts[3] == prompts[4] == "  dc/db += dc/dc · ∂c/∂b = ? "  # the retry
    assert "  ✓ right (second try)" in shown
    assert score == (3, 4)
    assert shown[-2:] == [SCORE_LINE.format(3, 4), "to look at again: step 1: dc/db through c (path 2)"]


def test_running_total_message_only_when_the_total_differs():
    # on the first path into b the running total *is* what the path adds (0 + 1): a wrong answer there
    # gets the ordinary hint, never the running-total message
    answers = ["1", "5", "1", *RIGHT[2:]]
    _, _, shown = run_quiz(doubled(), answers)
    assert "  ✗ not yet: hint: multiply what arrived (dc/dc = 1.00) by the local derivative (∂c/∂b = 1.00)" \
        in shown
    assert not any("running total" in line for line in shown)


def test_what_this_path_adds_for_the_running_total_is_wrong():
    # the opposite slip: at "now dc/db = ?" the learner gives this path's share (1), not the total (2)
    answers = ["1", "1", "1", "1", "1", "2", *RIGHT[5:]]
    score, _, shown = run_quiz(doubled(), answers)
    assert "  ✗ not yet: hint: gradients from every path into b add up: 1.00 + 1.00" in shown
    assert "  ✓ right (second try)" in shown
    assert score == (3, 4)
    assert shown[-1] == "to look at again: step 1: dc/db through c (path 2)"


# single_neuron by hand: w = 0.5, x = 2, b = 0.25, y = 1.5; ŷ = w·x + b = 1.25, e = ŷ − y = −0.25, L = e².
#   step 1 L = e²:        ∂L/∂e = 2·e = −0.5,     adds 1 · −0.5 = −0.5
#   step 2 e = ŷ − y:     ∂e/∂ŷ = 1, adds −0.5;    ∂e/∂y = −1, adds −0.5 · −1 = 0.5
#   step 3 ŷ = w·x + b:   ∂ŷ/∂(w·x) = 1, adds −0.5; ∂ŷ/∂b = 1, adds −0.5
#   step 4 w·x = w * x:   ∂(w·x)/∂w = x = 2, adds −0.5 · 2 = −1; ∂(w·x)/∂x = w = 0.5, adds −0.25
NEURON_BEFORE_MUL = ["-0.5", "-0.5", "1", "-0.5", "-1", "0.5", "1", "-0.5", "1", "-0.5"]  # steps 1-3
MUL_HINT = "  ✗ not yet: hint: the rule for mul: ∂(w·x)/∂w = x, with x = 2.00"


def test_wrong_local_derivative_gets_the_rule_as_a_hint_then_a_retry():
    # at ∂(w·x)/∂w the learner gives w (0.5) instead of x, then the right 2
    answers = [*NEURON_BEFORE_MUL, "0.5", "2", "-1", "0.5", "-0.25"]
    score, prompts, shown = run_quiz(single_neuron(), answers)
    assert MUL_HINT in shown
    assert prompts[10] == prompts[11] == "  ∂(w·x)/∂w = ? "
    assert shown[shown.index(MUL_HINT) + 1] == "  ✓ right (second try)"
    assert score == (6, 7)  # right at the second try is not right first time
    assert shown[-1] == "to look at again: step 4: dL/dw through w·x"


def test_two_wrong_answers_give_the_worked_answer():
    answers = [*NEURON_BEFORE_MUL, "0.5", "0.5", "-1", "0.5", "-0.25"]
    score, _, shown = run_quiz(single_neuron(), answers)
    worked = "  ✗ the answer: ∂(w·x)/∂w = x = 2.00 (with x = 2.00)"
    assert shown[shown.index(MUL_HINT) + 1] == worked
    assert shown.count("  ✓ right") == 13  # the quiz goes on: 7 edges × 2 questions, all but this one right
    assert score == (6, 7)
    assert shown[-1] == "to look at again: step 4: dL/dw through w·x"


def test_wrong_contribution_hint_and_worked_answer():
    # ∂(w·x)/∂w right (2), then what it adds wrong twice: −0.5 (forgot the local derivative), then 1 (sign)
    answers = [*NEURON_BEFORE_MUL, "2", "-0.5", "1", "0.5", "-0.25"]
    score, _, shown = run_quiz(single_neuron(), answers)
    assert ("  ✗ not yet: hint: multiply what arrived (dL/d(w·x) = -0.50) by the local derivative "
            "(∂(w·x)/∂w = 2.00)") in shown
    assert "  ✗ the answer: -0.50 · 2.00 = -1.00: what this path adds to dL/dw" in shown
    assert score == (6, 7)


def test_every_step_missed_lists_every_step():
    # a learner who types 9 to everything: each question gets a hint, then the worked answer
    score, prompts, shown = run_quiz(doubled(), ["9"] * 20)
    assert score == (0, 4)
    assert len(prompts) == 20  # ten questions, two tries each
    assert sum(line.startswith("  ✗ the answer: ") for line in shown) == 10
    missed = shown[-1].removeprefix("to look at again: ").split("; ")
    # one entry per edge: both paths from c into b, then both from b into a
    assert missed == ["step 1: dc/db through c", "step 1: dc/db through c (path 2)",
                      "step 2: dc/da through b", "step 2: dc/da through b (path 2)"]


def test_not_a_number_is_asked_again_without_using_a_try():
    answers = ["abc", "nan", "", "1", *RIGHT[1:]]
    score, prompts, shown = run_quiz(doubled(), answers)
    assert shown.count("  please type a number, e.g. -0.5 or 1/2 (q quits)") == 3
    assert prompts[:4] == ["  ∂c/∂b = ? "] * 4
    assert score == (4, 4)  # a non-number is neither right nor wrong


def test_a_number_too_big_for_a_float_is_not_a_crash():
    # "1e400" parses as a Fraction too big for a float: once an OverflowError that escaped parse_number, the
    # quiz and cli.main (a traceback); it is treated like any other answer that is not a number.
    answers = ["1e400", *RIGHT]
    score, _, shown = run_quiz(doubled(), answers)
    assert score[1] == 4
    assert shown[-1].startswith("\nscore: ")


# --- quitting: q, end of input, Ctrl-C --------------------------------------------------------------------


@pytest.mark.parametrize("quit_word", ["q", "Q", " quit ", "exit"])
def test_q_stops_and_prints_the_score_so_far(quit_word):
    # step 1, first b answered right (2 questions); at the first question of the second b the learner quits
    score, prompts, shown = run_quiz(doubled(), ["1", "1", quit_word])
    assert score == (1, 1)
    assert len(prompts) == 3  # nothing asked after q
    assert shown[-1] == SCORE_LINE.format(1, 1)


def test_q_after_a_miss_lists_it():
    # first b: ∂c/∂b wrong twice (missed), what it adds right; then q
    score, _, shown = run_quiz(doubled(), ["0", "0", "1", "q"])
    assert score == (0, 1)
    assert shown[-2:] == [SCORE_LINE.format(0, 1), "to look at again: step 1: dc/db through c"]


def test_end_of_input_stops_and_prints_the_score_so_far():
    score, prompts, shown = run_quiz(doubled(), RIGHT[:7])  # through step 2's first a
    assert score == (3, 3)
    assert len(prompts) == 8  # the eighth read met the end of input
    assert shown[-2:] == ["", SCORE_LINE.format(3, 3)]


def test_ctrl_c_prints_the_score_so_far_and_is_raised_again():
    root = doubled()
    names = Names(root)
    intro, fs = walkthrough.frames(root)
    queue, shown = iter(RIGHT[:2]), []

    def read(prompt: str) -> str:
        answer = next(queue, None)
        if answer is None:
            raise KeyboardInterrupt
        return answer

    with pytest.raises(KeyboardInterrupt):
        walkthrough.quiz(intro, fs, names[root], names, read=read, write=shown.append)
    assert shown[-2:] == ["\n(interrupted)", SCORE_LINE.format(1, 1)]


class InterruptedStdin:
    """stdin for `input()` that gives some lines, then is interrupted (Ctrl-C)."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = iter(lines)

    def readline(self) -> str:
        line = next(self.lines, None)
        if line is None:
            raise KeyboardInterrupt
        return line + "\n"

    def isatty(self) -> bool:
        return False


def test_cli_ctrl_c_prints_the_score_and_returns_130(capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", InterruptedStdin(RIGHT[:2]))
    assert cli.main(["backprop", "--expr", EXPR, "--set", "a=3", "--quiz"]) == 130
    out = capsys.readouterr().out
    assert "(interrupted)" in out and "score: 1/1 chain-rule steps right first time" in out


# --- what a learner may type -----------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "number"), [
    ("-0.5", -0.5), ("-.5", -0.5), (".5", 0.5), ("+.5", 0.5),
    ("−0.50", -0.5),  # U+2212, a typographic minus
    ("–0.5", -0.5),  # U+2013, an en dash
    ("1/2", 0.5), ("-1/2", -0.5), ("−1/2", -0.5),
    ("  2 ", 2.0), ("- 0.5", -0.5), (" 1 / 2 ", 0.5), ("3e-2", 0.03), ("4", 4.0),
])
def test_what_parses(text, number):
    assert parse_number(text) == number


@pytest.mark.parametrize("text", ["abc", "", "  ", "1/0", "0/0", "nan", "NaN", "inf", "-inf", "infinity",
                                  "1/2/3", "q", "1..5", "-", "0x10", "two"])
def test_what_does_not_parse(text):
    assert parse_number(text) is None


@pytest.mark.parametrize("text", ["1e400", "9" * 400])
def test_huge_numbers_do_not_raise(text):
    # Fraction parses them and float() overflows: None (not a usable answer) or an infinity, which `close`
    # rejects; never an OverflowError, as once.
    number = parse_number(text)
    assert number is None or math.isinf(number)


def test_close_is_the_two_decimals_shown():
    assert close(-0.501, -0.5) and close(0.995, 1.0)  # within 0.006
    assert not close(0.99, 1.0)  # 0.01 off at 1: outside both 0.006 and 1%
    assert close(101, 100) and not close(102, 100)  # 1% for big numbers
    assert not close(math.nan, math.nan) and not close(math.inf, 1.0)


# --- the real CLI in a pseudo-terminal --------------------------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent
WAIT = 20.0  # seconds any one read may take before the test fails (a hang fails instead of blocking)
PROMPT = "= ? "

pty_only = pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pseudo-terminal")


def _take_terminal() -> None:  # in the child, after setsid(): make its stdin (the pty) the controlling tty
    import fcntl
    import termios

    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class Learner:
    """The quiz in a subprocess whose stdin/stdout/stderr are a pty and whose controlling terminal it is,
    so the line discipline echoes typing and turns Ctrl-C into SIGINT, as in a real terminal."""

    def __init__(self) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        self.master, slave = os.openpty()
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "micrograd_mnist.cli", "backprop", "--expr", EXPR, "--set", "a=3", "--quiz"],
                stdin=slave, stdout=slave, stderr=slave, cwd=ROOT, env=env,
                start_new_session=True, preexec_fn=_take_terminal)
        except BaseException:
            os.close(self.master)
            raise
        finally:
            os.close(slave)  # only the child holds the slave: its exit then reads as EOF here
        self.out = b""
        self.seen = 0  # how much of `out` the learner has read so far

    def _read_some(self, deadline: float) -> bool:
        """Read what the terminal shows next; False at end of output. Fails the test at the deadline."""
        left = deadline - time.monotonic()
        ready, _, _ = select.select([self.master], [], [], max(left, 0))
        if not ready:
            pytest.fail(f"nothing more from the quiz in {WAIT:.0f} s; it showed:\n{self.text}")
        try:
            chunk = os.read(self.master, 4096)
        except OSError:  # EIO: the child has gone and closed the terminal
            return False
        self.out += chunk
        return bool(chunk)

    def expect(self, text: str) -> str:
        """Wait until `text` appears after what was read before; return what came up to and including it."""
        want, deadline = text.encode(), time.monotonic() + WAIT
        while (at := self.out.find(want, self.seen)) < 0:
            if not self._read_some(deadline):
                pytest.fail(f"the quiz ended before showing {text!r}; it showed:\n{self.text}")
        start, self.seen = self.seen, at + len(want)
        return self.out[start:self.seen].decode("utf-8")

    def type(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    def interrupt(self) -> None:
        """Ctrl-C, once the quiz is waiting in `input()`. (Sent the instant a prompt shows, the SIGINT can land
        between CPython's prompt and its read(): the handler notes it, then read() blocks with the
        KeyboardInterrupt still pending — a race in `input()` itself that no human is quick enough to hit.)"""
        stat, deadline = Path(f"/proc/{self.proc.pid}/stat"), time.monotonic() + WAIT
        if stat.exists():  # Linux: wait until the child sleeps (S), i.e. is blocked reading the terminal
            while stat.read_text().rpartition(")")[2].split()[0] != "S":
                if time.monotonic() > deadline:
                    pytest.fail(f"the quiz did not wait for input; it showed:\n{self.text}")
                time.sleep(0.005)
        else:  # elsewhere: give it a moment to reach read()
            time.sleep(0.5)
        self.type("\x03")  # the terminal turns Ctrl-C into SIGINT for the quiz

    def answer(self, text: str, enter: str = "\r") -> str:
        """At the next prompt, type `text` and Enter; return what the quiz showed up to that prompt."""
        shown = self.expect(PROMPT)
        self.type(text + enter)
        return shown

    def finish(self) -> tuple[int, str]:
        """Read to the end of output, then the exit status."""
        deadline = time.monotonic() + WAIT
        while self._read_some(deadline):
            pass
        return self.proc.wait(timeout=WAIT), self.text

    @property
    def text(self) -> str:
        return self.out.decode("utf-8", errors="replace").replace("\r\n", "\n")

    def close(self) -> None:
        try:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait(timeout=WAIT)
        finally:
            os.close(self.master)


@pytest.fixture
def learner():
    person = Learner()
    try:
        yield person
    finally:
        person.close()


def assert_clean(text: str) -> None:
    """No traceback, and no mangled characters (the ∂ and ✓ came through as UTF-8)."""
    assert "Traceback" not in text and "\ufffd" not in text, text


@pty_only
def test_tty_all_right(learner):
    for i, answer in enumerate(RIGHT):
        learner.answer(answer, enter="\r" if i % 2 else "\n")  # Enter sends \r; \n works too
    code, text = learner.finish()
    assert code == 0, text
    assert "score: 4/4 chain-rule steps right first time" in text
    assert text.count("✓ right") == 10
    assert "∂c/∂b = ? 1\n" in text  # the prompt, the answer echoed by the terminal, a newline
    assert_clean(text)


@pytest.mark.parametrize("answers", [RIGHT[:2], RIGHT[:5]])
@pty_only
def test_tty_q_prints_the_score_so_far(learner, answers):
    for answer in answers:
        learner.answer(answer)
    learner.answer("q")
    code, text = learner.finish()
    assert code == 0, text
    done = 1 if len(answers) == 2 else 2  # edges finished: the first b, then (with its total) the second b
    assert f"score: {done}/{done} chain-rule steps right first time" in text
    assert text.count(PROMPT) == len(answers) + 1  # nothing asked after q
    assert_clean(text)


@pty_only
def test_tty_ctrl_c_prints_the_score_so_far_and_exits_130(learner):
    for answer in RIGHT[:2]:
        learner.answer(answer)
    learner.expect(PROMPT)
    learner.interrupt()
    code, text = learner.finish()
    assert code == 130, text
    assert "(interrupted)" in text
    assert "score: 1/1 chain-rule steps right first time" in text
    assert_clean(text)


@pty_only
def test_tty_ctrl_c_halfway_through_typing_an_answer(learner):
    # a half-typed answer is thrown away by Ctrl-C: the score is that of the finished steps
    for answer in RIGHT[:5]:
        learner.answer(answer)
    learner.expect(PROMPT)
    learner.type("0.")
    learner.interrupt()
    code, text = learner.finish()
    assert code == 130, text
    assert "score: 2/2 chain-rule steps right first time" in text
    assert_clean(text)


@pty_only
def test_tty_ctrl_d_ends_the_quiz_with_the_score(learner):
    for answer in RIGHT[:2]:
        learner.answer(answer)
    learner.expect(PROMPT)
    learner.type("\x04")  # Ctrl-D at the start of a line: end of input
    code, text = learner.finish()
    assert code == 0, text
    assert "score: 1/1 chain-rule steps right first time" in text
    assert_clean(text)


@pty_only
def test_tty_wrong_then_right(learner):
    learner.answer("2")  # ∂c/∂b is 1 (the rule for add), not 2
    shown = learner.answer("1")
    assert "✗ not yet: hint: the rule for add: ∂c/∂b = 1" in shown
    shown = learner.answer("1")
    assert "✓ right (second try)" in shown
    for answer in RIGHT[2:]:
        learner.answer(answer)
    code, text = learner.finish()
    assert code == 0, text
    assert "score: 3/4 chain-rule steps right first time" in text
    assert "to look at again: step 1: dc/db through c" in text
    assert_clean(text)


@pty_only
def test_tty_typographic_minus_and_fractions(learner):
    # typed as a learner might: a U+2212 minus (read through the terminal as UTF-8: a number, just a wrong
    # one, so a hint rather than "please type a number"), then fractions and spaces for the right answers
    learner.answer("−1")
    shown = learner.answer("2/2")
    assert "✗ not yet: hint: the rule for add" in shown and "please type a number" not in shown
    for answer in ["1.00", "1", " 1 ", "4/2", "1", "2", "1", "2", "8/2"]:
        learner.answer(answer)
    code, text = learner.finish()
    assert code == 0, text
    assert "score: 3/4 chain-rule steps right first time" in text
    assert "−1" in text  # echoed back intact
    assert_clean(text)
