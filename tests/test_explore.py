"""`micrograd-mnist explore`: the numbers (inspect, on the Tensor engine), the server as a server (127.0.0.1 only,
bounded and validated requests, 4xx JSON errors, no traceback), the command line (refusals before serving, the
port in use, Ctrl-C), and the page in headless Chromium at a desktop's and a phone's size, used as a learner
uses it: draw a 1, pick test digit 0 (a 7), click a neuron, ask what the digit wants.

The network is trained here, on digit-like glyphs (tests/explore_digits.py), so that a drawn vertical stroke
is a 1.
"""

from __future__ import annotations

import http.client
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest
from explore_digits import write_digit_idx
from hypothesis import given, settings
from hypothesis import strategies as st
from test_browser import CHROMIUM_ARGS, DESKTOP, PHONE, sync_playwright

from micrograd_mnist import checkpoint, data, evaluation, explore, inspect, nn, training
from micrograd_mnist.images import to_mnist
from micrograd_mnist.nn import functional as F

EPOCHS = 6


@pytest.fixture(scope="module")
def digits_dir(tmp_path_factory) -> Path:
    return write_digit_idx(tmp_path_factory.mktemp("digits"))


@pytest.fixture(scope="module")
def digits(digits_dir) -> data.MNIST:
    return data.load("mnist", digits_dir, log=lambda line: None)


@pytest.fixture(scope="module")
def snapshots(digits, tmp_path_factory) -> dict[str, Path]:
    """A 3b1b run on the glyphs: its folder, and a copy of checkpoint.npz as each epoch left it."""
    run = tmp_path_factory.mktemp("run")
    keep = tmp_path_factory.mktemp("snapshots")
    copies = {}

    def log(line: str) -> None:  # train logs each epoch just after saving its checkpoint
        if line.startswith("epoch"):
            copies[f"epoch{len(copies) + 1}"] = keep / f"epoch{len(copies) + 1}.npz"
            shutil.copy(run / "checkpoint.npz", copies[f"epoch{len(copies)}"])

    training.train(training.Config(preset="3b1b", epochs=EPOCHS), digits, run, log=log, progress=False)
    return {"run": run, **copies}


@pytest.fixture(scope="module")
def run_dir(snapshots) -> Path:
    return snapshots["run"]


@pytest.fixture(scope="module")
def model(run_dir) -> nn.MLP:
    return checkpoint.load(run_dir / "model.npz")[0]


class Served:
    """A server on a free port, serving in a thread, and what it wrote to its terminal."""

    def __init__(self, target: Path, data_dir: Path | None) -> None:
        self.err = io.StringIO()
        self.server = explore.make_server(target, 0, data_dir, log=lambda line: None, err=self.err)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url, self.port = self.server.url, self.server.server_port

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        """(status, JSON answer) of one raw request; the Host header is the server's own unless given."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        headers = {"Host": f"127.0.0.1:{self.port}", **(headers or {})}
        if body is not None:
            headers.setdefault("Content-Type", "application/json")
            headers.setdefault("Content-Length", str(len(body)))
        for k, v in headers.items():
            conn.putheader(k, v)
        conn.endheaders(body)
        response = conn.getresponse()
        status, kind, text = response.status, response.getheader("Content-Type"), response.read()
        conn.close()
        return status, (json.loads(text) if kind == "application/json" else text)

    def post(self, path: str, obj) -> tuple[int, dict]:
        return self.request("POST", path, json.dumps(obj).encode())

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def served(run_dir, digits_dir):
    s = Served(run_dir, digits_dir)
    yield s
    s.close()
    assert s.err.getvalue() == ""  # no request, however bad, printed anything in the terminal


def stroke(side: int = 56) -> np.ndarray:
    """A vertical stroke, as someone draws a 1."""
    grid = np.zeros((side, side), dtype=np.float32)
    grid[side // 8: side - side // 8, side // 2 - 2: side // 2 + 2] = 1
    return grid


# --- the numbers ------------------------------------------------------------------------------------------

def test_forward_is_the_engines_and_a_neuron_is_its_weighted_sum(model, digits):
    x = digits.test_images[0]
    fw = inspect.forward(model, x)
    assert fw.probs == pytest.approx(evaluation.predict_proba(model, x[None])[0], abs=1e-6)
    assert fw.prediction == 7 and [len(a) for a in fw.a] == [784, 16, 16, 10]
    for layer in (1, 2, 3):
        n = inspect.neuron(model, x, layer, 5)
        w, b = model[2 * (layer - 1)].weight.data[:, 5], model[2 * (layer - 1)].bias.data[5]
        assert n["weights"] == pytest.approx(w) and n["z"] == pytest.approx(fw.z[layer - 1][5])
        assert n["z"] == pytest.approx(float(w.astype(np.float64) @ fw.a[layer - 1] + b), abs=1e-5)
        assert n["activation"] == pytest.approx(1 / (1 + np.exp(-n["z"])) if layer < 3 else n["z"], abs=1e-6)
        pushes = [t["push"] for t in n["top"]]
        everything = np.abs(w.astype(np.float64) * fw.a[layer - 1])
        assert [abs(p) for p in pushes] == pytest.approx(np.sort(everything)[::-1][:len(pushes)])
    assert inspect.neuron(model, x, 3, 7)["probability"] == pytest.approx(fw.probs[7])


def test_what_a_digit_wants_is_backward_and_one_sgd_step_on_a_copy(model, digits):
    x, label = digits.test_images[1], 3
    before = {k: v.copy() for k, v in model.state_dict().items()}
    w = inspect.wants(model, x, label, lr=0.3)
    assert all(np.array_equal(v, model.state_dict()[k]) for k, v in before.items())  # the served model is untouched
    # the same, by hand: backward on a float64 copy, one SGD step, forward again
    net = nn.MLP(model.sizes, model.activation, dtype=np.float64)
    net.load_state_dict(model.state_dict())
    loss = F.cross_entropy(net(x[None].astype(np.float64)), np.array([label]))
    loss.backward()
    grads = [layer.weight.grad for layer in inspect.linears(net)]
    assert len(w["first"]["tiles"]) == 16 and w["first"]["neurons"] == list(range(16))
    assert np.array_equal(np.stack(w["first"]["tiles"], axis=1), -grads[0])
    assert np.array_equal(w["layers"][1]["dense"], -grads[1].ravel())
    assert w["loss"] == pytest.approx(float(loss.data))
    for p in net.parameters():
        p.data = p.data - 0.3 * p.grad
    assert w["after"] == pytest.approx(evaluation.predict_proba(net, x[None])[0], abs=1e-9)
    assert w["after"][label] > w["before"][label]
    # the walk-through's steps, named as 3Blue1Brown names them
    assert w["steps"][0]["node"].startswith("L = CE(Z3)")
    assert any("dL/dW1 += Xᵀ · dL/dZ1" in e for s in w["steps"] for e in s["edges"])


def test_a_wide_network_keeps_the_strongest_edges_and_the_most_telling_neurons(digits):
    wide = nn.MLP([784, 40, 10], "relu", rng=np.random.default_rng(1))
    first, second = inspect.edges(wide)
    assert "dense" not in first and "dense" in second  # 31,360 weights: too many to draw; 400: all
    w = wide[0].weight.data
    for j in (0, 17, 39):
        kept = sorted(i for i, jj, _ in first["top"] if jj == j)
        assert kept == sorted(np.argsort(-np.abs(w[:, j]))[:inspect.TOP_EDGES].tolist())
    wanted = inspect.wants(wide, digits.test_images[0], 7, 0.1)["first"]
    grad = np.stack(wanted["tiles"], axis=1)
    assert wanted["of"] == 40 and len(wanted["neurons"]) == 16 and wanted["neurons"] == sorted(wanted["neurons"])
    full = inspect.wants(wide, digits.test_images[0], 7, 0.1)["layers"][0]
    assert full["norm"] >= np.linalg.norm(grad) - 1e-9


def test_test_digits_next_random_and_its_mistakes(model, digits):
    d = inspect.TestDigits(digits.test_images, digits.test_labels, model)
    assert d.pick("next", None) == 0 and d.pick("next", 0) == 1 and d.pick("next", len(d) - 1) == 0
    assert 0 <= d.pick("random", None) < len(d)
    assert 2 in d.mistakes  # test image 2 is a drawn 1 labelled 4
    first = d.pick("mistake", None)
    assert d.predicted[first] != d.labels[first] and d.pick("mistake", d.mistakes[-1]) == first


# --- the server -------------------------------------------------------------------------------------------

def test_it_binds_127_0_0_1_only(served):
    assert served.server.server_address[0] == "127.0.0.1"
    assert served.server.socket.getsockname()[0] == "127.0.0.1"
    assert served.url == f"http://127.0.0.1:{served.port}/"


def test_a_drawing_is_brought_to_mnist_form_as_predict_does(served, model):
    status, answer = served.post("/api/predict", {"canvas": stroke().tolist()})
    assert status == 200
    assert answer["input"] == pytest.approx(to_mnist(stroke()), abs=1e-3)
    assert answer["prediction"] == 1
    assert answer["probs"] == pytest.approx(evaluation.predict_proba(model, to_mnist(stroke())[None])[0], abs=1e-6)


def test_digit_picking_over_http(served, model, digits):
    status, answer = served.post("/api/digit", {"pick": "next", "current": None})
    assert status == 200 and answer["digit"]["index"] == 0 and answer["prediction"] == 7
    status, answer = served.post("/api/digit", {"pick": "mistake", "current": 0})
    mistakes = inspect.TestDigits(digits.test_images, digits.test_labels, model).mistakes  # the same model's
    # test image 2 is a drawn 1 labelled 4 (explore_digits.FIRST_TEST): the first mistake after image 0
    assert status == 200 and answer["digit"] == {"index": 2, "label": 4, "predicted": 1, "mistakes": len(mistakes),
                                                 "count": 300}


BAD = [  # (body, status, what the message says)
    (b"{", 400, "not valid JSON"),
    (b"[1, 2]", 400, "must be a JSON object"),
    (b'{"pixels": [0.5, 0.5]}', 400, "must be 784 numbers"),
    (b'{"pixels": [' + b",".join([b"0.5"] * 783 + [b"NaN"]) + b"]}", 400, "NaN is not a number"),
    (b'{"pixels": [' + b",".join([b"0.5"] * 783 + [b"Infinity"]) + b"]}", 400, "Infinity is not a number"),
    (b'{"pixels": [' + b",".join([b"0.5"] * 783 + [b"1e999"]) + b"]}", 400, "finite"),
    (b'{"pixels": [' + b",".join([b"0.5"] * 783 + [b"1.5"]) + b"]}", 400, r"must lie in \[0, 1\]"),
    (b'{"pixels": [' + b",".join([b"0.5"] * 783 + [b"-0.1"]) + b"]}", 400, r"must lie in \[0, 1\]"),
    (b'{"pixels": [' + b",".join([b"0.5"] * 783 + [b"1" + b"0" * 400]) + b"]}", 400, r"must lie in \[0, 1\]"),
    (b'{"pixels": [' + b",".join([b"true"] * 784) + b"]}", 400, "only numbers"),
    (b'{"pixels": "' + b"0" * 784 + b'"}', 400, "must be a list"),
    (b'{"canvas": [[0.5, 0.5], [0.5]]}', 400, "canvas must be a list of 8 to 112 rows"),
    (b'{"canvas": ' + json.dumps([[0.0] * 8] * 7 + [[0.0] * 9]).encode() + b"}", 400, "same length"),
    (b'{"nothing": 1}', 400, "give pixels"),
    (b"[" * 100_000 + b"]" * 100, 413, "at most 65,536"),  # as deep as it can be and still fit the limit: too big
    (b"[" * 60_000, 400, "not valid JSON"),
]


@pytest.mark.parametrize(("body", "status", "message"), BAD, ids=range(len(BAD)))
def test_bad_requests_get_a_4xx_json_error(served, body, status, message):
    got, answer = served.request("POST", "/api/predict", body)
    assert got == status
    assert re.search(message, answer["error"]), answer


def test_an_oversized_body_is_refused_before_it_is_read(served):
    # declared 10 MB, nothing sent: the answer comes from the header alone
    status, answer = served.request("POST", "/api/predict", b"", {"Content-Length": str(10 * 2**20)})
    assert status == 413 and "10,485,760 bytes" in answer["error"]
    status, answer = served.request("POST", "/api/predict", b" " * (explore.MAX_BODY + 1))
    assert status == 413 and "at most 65,536" in answer["error"]


@pytest.mark.parametrize(("method", "path", "body", "headers", "status", "message"), [
    ("GET", "/nothing/here", None, {}, 404, "no such page: /nothing/here"),
    ("GET", "/../../etc/passwd", None, {}, 404, "no such page"),
    ("POST", "/api/model", b"{}", {}, 405, "takes GET"),
    ("GET", "/api/predict", None, {}, 405, "takes POST"),
    ("PUT", "/api/predict", b"{}", {}, 405, "use GET or POST"),
    ("GET", "/", None, {"Host": "evil.example:80"}, 403, "answers only at http://127.0.0.1"),
    ("POST", "/api/predict", b"{}", {"Origin": "http://evil.example"}, 403, "other sites"),
    ("POST", "/api/predict", b"{}", {"Content-Type": "text/plain"}, 415, "application/json"),
    ("POST", "/api/predict", b"{}", {"Content-Length": "-5"}, 400, "whole number of bytes"),
    ("POST", "/api/predict", b"{}", {"Content-Length": "²"}, 400, "whole number of bytes"),  # a digit to isdigit()
    ("POST", "/api/predict", b"{}", {"Content-Length": "9" * 5000}, 400, "whole number of bytes"),  # int() refuses
])
def test_wrong_paths_methods_hosts_and_headers(served, method, path, body, headers, status, message):
    got, answer = served.request(method, path, body, headers)
    assert got == status and message in answer["error"]


def test_neuron_and_wants_check_their_numbers(served):
    x = [0.0] * 784
    for body, message in [({"pixels": x, "layer": 0, "index": 0}, "layer must be a whole number from 1 to 3"),
                          ({"pixels": x, "layer": 1, "index": 16}, "index must be a whole number from 0 to 15"),
                          ({"pixels": x, "layer": 1.0, "index": 0}, "layer must be a whole number"),
                          ({"pixels": x, "layer": True, "index": 0}, "layer must be a whole number")]:
        status, answer = served.post("/api/neuron", body)
        assert status == 400 and message in answer["error"]
    for body, message in [({"pixels": x, "label": 10}, "label must be a whole number from 0 to 9"),
                          ({"pixels": x, "label": 3, "lr": -1}, "lr must be a number above 0"),
                          ({"pixels": x, "label": 3, "lr": 1e9}, "at most 10"),
                          ({"pixels": x, "label": 3, "lr": 10**400}, "lr must be a number")]:  # too big for a float
        status, answer = served.post("/api/wants", body)
        assert status == 400 and message in answer["error"]
    for body, message in [({"pick": "all"}, "pick must be one of"), ({"pick": "index", "index": 300}, "0 to 299"),
                          ({"pick": "next", "current": "../x"}, "current must be a whole number")]:
        status, answer = served.post("/api/digit", body)
        assert status == 400 and message in answer["error"]


@settings(max_examples=40)
@given(body=st.binary(max_size=300) | st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(
        ["pixels", "canvas", "label", "layer", "index", "pick", "current", "lr"]), inner, max_size=4),
    max_leaves=20).map(lambda obj: json.dumps(obj).encode()))
def test_any_body_gets_an_answer_never_a_failure(served, body):
    for path in ("/api/predict", "/api/neuron", "/api/wants", "/api/digit"):
        status, answer = served.request("POST", path, body)
        assert status in (200, 400, 409, 413), (path, body, answer)
        assert isinstance(answer, dict)


def test_without_test_digits_the_page_still_explores(run_dir):
    s = Served(run_dir, None)  # the offline fixture: no MNIST anywhere
    try:
        assert s.request("GET", "/api/model")[1]["digits"]["count"] == 0
        status, answer = s.post("/api/digit", {"pick": "next"})
        assert status == 409 and "no test digits to pick from" in answer["error"]
        assert s.post("/api/predict", {"canvas": stroke().tolist()})[1]["prediction"] == 1
    finally:
        s.close()


def test_watching_a_run_follows_its_checkpoints(snapshots, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(snapshots["epoch1"], run / "checkpoint.npz")
    s = Served(run, None)
    try:
        t = s.request("GET", "/api/train")[1]
        assert t["watching"] and t["source"] == "checkpoint.npz" and t["version"] == 1
        assert len(t["metrics"]["val_accuracy"]) == 1 and not t["metrics"]["done"]
        assert t["metrics"]["epochs"] == EPOCHS

        def replace(source: Path, name: str, stamp: int) -> None:
            shutil.copy(source, run / f".{name}.new")
            os.utime(run / f".{name}.new", ns=(stamp, stamp))  # a new mtime even on a coarse clock
            os.replace(run / f".{name}.new", run / name)

        replace(snapshots["epoch2"], "checkpoint.npz", 2 * 10**18)
        t = s.request("GET", "/api/train")[1]
        assert t["version"] == 2 and len(t["metrics"]["val_accuracy"]) == 2
        w1 = checkpoint.load(snapshots["epoch2"])[0][0].weight.data
        assert np.stack(t["weights"]["tiles"], axis=1) == pytest.approx(w1[:, :16], rel=1e-3, abs=1e-7)
        # a damaged checkpoint keeps the network we have and says why
        (run / "checkpoint.npz").write_bytes(b"PK\x03\x04 not really")
        t = s.request("GET", "/api/train")[1]
        assert t["version"] == 2 and "kept the network from checkpoint.npz" in t["note"]
        # the run ends: its model and metrics.json
        replace(snapshots["run"] / "metrics.json", "metrics.json", 3 * 10**18)
        replace(snapshots["run"] / "model.npz", "model.npz", 3 * 10**18)
        t = s.request("GET", "/api/train")[1]
        assert t["source"] == "model.npz" and t["version"] == 3 and t["note"] is None
        assert t["metrics"]["done"] and len(t["metrics"]["val_accuracy"]) == EPOCHS
        assert t["metrics"]["test_accuracy"] == json.loads((snapshots["run"] / "metrics.json").read_text())[
            "test_accuracy"]
    finally:
        s.close()
    assert s.err.getvalue() == ""


# --- the command line -------------------------------------------------------------------------------------

@pytest.fixture
def no_serving(monkeypatch):
    """A refusal must come before serving: serving here would fail the test instead of blocking it."""
    def serve(self, poll_interval=0.5):
        raise AssertionError("the server started")

    monkeypatch.setattr(explore.ExploreServer, "serve_forever", serve)


def one_line(capsys) -> str:
    out = capsys.readouterr()
    assert "Traceback" not in out.err
    lines = out.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("micrograd-mnist explore: "), out.err
    return lines[0]


def test_a_network_that_is_not_784_in_10_out_is_refused_in_one_line(tmp_path, capsys, no_serving):
    for sizes, arch in (([10, 5, 3], "10-5-3 relu"), ([784, 16, 3], "784-16-3 relu"), ([2, 10], "2-10 relu")):
        path = tmp_path / f"{arch.split()[0]}.npz"
        checkpoint.save(path, nn.MLP(sizes, rng=np.random.default_rng(0)), {})
        assert explore.main([str(path), "--no-browser", "--port", "0"]) == 2
        line = one_line(capsys)
        assert f"it is a {arch} network; explore shows a network with 784 inputs (28×28 pixels) and 10 " in line


@pytest.mark.parametrize(("make", "message"), [
    (lambda p: p.write_bytes(b"\x80\x04 pickle"), "is a Python pickle"),
    (lambda p: p.write_bytes(b"hello"), "not an .npz archive"),
    (lambda p: p.mkdir(), "holds no model.npz or checkpoint.npz"),
    (lambda p: None, "no checkpoint at"),
    (lambda p: os.mkfifo(p), "is not a regular file"),
])
def test_other_unusable_paths_are_refused_in_one_line(tmp_path, capsys, no_serving, make, message):
    path = tmp_path / "thing"
    make(path)
    assert explore.main([str(path), "--no-browser", "--port", "0"]) == 2
    assert message in one_line(capsys)


def test_nan_weights_are_refused(tmp_path, capsys, no_serving):
    net = nn.MLP([784, 16, 10], rng=np.random.default_rng(0))
    net[0].weight.data[3, 4] = np.nan
    checkpoint.save(tmp_path / "nan.npz", net, {})
    assert explore.main([str(tmp_path / "nan.npz"), "--no-browser"]) == 2
    assert "NaN or infinite" in one_line(capsys)  # checkpoint.load's words, or inspect.check's


def test_a_port_in_use_is_one_line_suggesting_port(run_dir, capsys, no_serving):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert explore.main([str(run_dir), "--no-browser", "--port", str(port)]) == 2
    line = one_line(capsys)
    assert f"port {port} is in use" in line and "--port" in line


def test_it_prints_the_url_and_opens_a_browser_unless_told_not_to(run_dir, monkeypatch, capsys):
    opened = threading.Event()
    urls = []
    monkeypatch.setattr(explore.webbrowser, "open", lambda url: (urls.append(url), opened.set()))
    monkeypatch.setenv("DISPLAY", ":0")

    def serve(self, poll_interval=0.5):
        raise KeyboardInterrupt  # Ctrl-C at once

    monkeypatch.setattr(explore.ExploreServer, "serve_forever", serve)
    assert explore.main([str(run_dir), "--port", "0"]) == 0
    assert opened.wait(10)
    out = capsys.readouterr()
    assert urls[0].startswith("http://127.0.0.1:") and urls[0] in out.out
    assert out.err.strip().endswith("micrograd-mnist explore: stopped")
    urls.clear()
    assert explore.main([str(run_dir), "--port", "0", "--no-browser"]) == 0
    assert urls == []


def test_ctrl_c_stops_it_cleanly(run_dir, digits_dir):
    proc = subprocess.Popen([sys.executable, "-m", "micrograd_mnist.explore", str(run_dir), "--port", "0",
                             "--no-browser", "--data-dir", str(digits_dir)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=Path(__file__).parents[1])
    try:
        lines = [proc.stdout.readline(), proc.stdout.readline()]
        url = re.search(r"http://127\.0\.0\.1:\d+/", lines[1])[0]
        conn = http.client.HTTPConnection(urlsplit(url).hostname, urlsplit(url).port, timeout=30)
        conn.request("GET", "/api/model")
        assert json.loads(conn.getresponse().read())["sizes"] == [784, 16, 16, 10]
        conn.close()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0
    assert lines[0].startswith("exploring ") and "784-16-16-10 sigmoid" in lines[0]
    assert "Traceback" not in err and err.strip().splitlines()[-1] == "micrograd-mnist explore: stopped"


# --- the page, in a browser --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


class Learner:
    """The page in one viewport; every request it makes is recorded, and any to another host is refused."""

    def __init__(self, browser, served: Served, viewport: dict, touch: bool = False) -> None:
        self.context = browser.new_context(viewport=viewport, has_touch=touch, is_mobile=touch)
        self.page = self.context.new_page()
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.route(re.compile(r"^(?!http://127\.0\.0\.1:\d+/).*"), lambda route: route.abort())
        self.page.goto(served.url)
        self.page.wait_for_selector("body[data-ready]")
        self.touch, self.viewport = touch, viewport

    def top(self) -> str:
        self.page.wait_for_selector("#top")
        return self.page.locator("#top").text_content()

    def draw_stroke(self, x0: float, y0: float, x1: float, y1: float) -> None:
        """A stroke on the canvas, by mouse or, on a touch screen, by finger; fractions of the canvas's size."""
        pad = self.page.locator("#draw")
        pad.scroll_into_view_if_needed()
        box = pad.bounding_box()
        points = [(box["x"] + box["width"] * (x0 + (x1 - x0) * t / 12),
                   box["y"] + box["height"] * (y0 + (y1 - y0) * t / 12)) for t in range(13)]
        if self.touch:
            cdp = self.context.new_cdp_session(self.page)
            for k, (x, y) in enumerate(points):
                kind = "touchStart" if k == 0 else "touchMove"
                cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": [{"x": x, "y": y, "id": 0}]})
            cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
        else:
            self.page.mouse.move(*points[0])
            self.page.mouse.down()
            for x, y in points[1:]:
                self.page.mouse.move(x, y)
            self.page.mouse.up()

    def close(self) -> None:
        self.context.close()
        elsewhere = [u for u in self.requests if urlsplit(u).hostname != "127.0.0.1"]
        assert elsewhere == [], f"the page asked for {elsewhere}"
        assert self.requests and self.errors == [], self.errors


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_drawing_a_one(browser, served, viewport):
    learner = Learner(browser, served, viewport, touch=viewport is PHONE)
    page = learner.page
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]  # no sideways scrolling
    learner.draw_stroke(0.5, 0.15, 0.5, 0.85)
    page.wait_for_function("() => document.querySelector('#top')")
    page.wait_for_function("() => document.querySelector('#top').textContent === '1'", timeout=10_000)
    bar = page.locator('g.out[data-digit="1"]')
    assert "top" in bar.get_attribute("class")
    shown = float(bar.locator("text.p").text_content().rstrip("%"))
    expected = evaluation.predict_proba(served.server.explorer.source.model, to_mnist(stroke())[None])[0][1]
    assert shown == pytest.approx(100 * expected, abs=10)  # a drawing by hand is not our 56×56 stroke, but near
    # the input grid shows ink where the stroke is: the network's 28×28 view, drawn from the server's numbers
    lit = page.evaluate("[...document.querySelectorAll('#grid rect')].filter(r => r.getAttribute('fill') !== "
                        "'rgb(0,0,0)').map(r => [...r.parentNode.children].indexOf(r) % 28)")
    assert lit and 11 <= min(lit) and max(lit) <= 17  # a column in the middle
    ink = "document.getElementById('draw').getContext('2d').getImageData(140, 70, 1, 1).data[0]"
    assert page.evaluate(ink) == 255  # the stroke, white on black
    page.locator("#undo").click()
    assert page.evaluate(ink) == 0  # taken back
    learner.close()


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_picking_a_digit_does_not_redraw_the_network(browser, served, viewport):
    """The first prediction fills the line above the picture and the legend's note; neither may change the
    picture's size, or it is drawn again (a flash, and a neuron a learner is about to click is replaced)."""
    learner = Learner(browser, served, viewport, touch=viewport is PHONE)
    page = learner.page
    neuron = page.locator('circle.neuron[data-layer="1"][data-j="5"]').element_handle()
    size = "(b => [b.width, b.height])(document.getElementById('netbox').getBoundingClientRect())"
    before = page.evaluate(size)
    page.locator("#next").click()
    assert learner.top() == "7"
    page.wait_for_timeout(400)  # past the page's 80 ms wait before a redraw
    assert page.evaluate(size) == before  # it may move down (a phone's prediction takes two lines), not shrink
    assert neuron.evaluate("e => e.isConnected")
    learner.close()


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_a_test_digit_a_neuron_and_what_the_digit_wants(browser, served, viewport, model, digits):
    learner = Learner(browser, served, viewport, touch=viewport is PHONE)
    page = learner.page
    page.locator("#next").click()
    assert learner.top() == "7"
    assert "test digit 0 of 300: labelled 7, the network says 7" in page.locator("#digit-info").text_content()

    neuron = page.locator('circle.neuron[data-layer="1"][data-j="5"]')
    neuron.scroll_into_view_if_needed()
    neuron.click()
    pattern = page.locator("#neuron-pattern")
    pattern.wait_for()
    assert page.locator("#neuron-title").text_content() == "layer 1, neuron 5"
    assert page.evaluate("[document.getElementById('neuron-pattern').width, "
                         "document.getElementById('neuron-pattern').height]") == [28, 28]
    colours = page.evaluate("""() => { const c = document.getElementById('neuron-pattern');
        const d = c.getContext('2d').getImageData(0, 0, 28, 28).data, out = [];
        for (let i = 0; i < d.length; i += 4) out.push([d[i], d[i + 1], d[i + 2]]);
        return out; }""")
    w = model[0].weight.data[:, 5]
    blue = [b > r for r, _, b in colours]
    strong = np.abs(w) > 0.3 * np.abs(w).max()
    assert np.array_equal(np.array(blue)[strong], (w > 0)[strong])  # blue where the weight excites, red inhibits
    n = inspect.neuron(model, digits.test_images[0], 1, 5)
    assert f"activation = σ(z) = {n['activation']:.3f}" in page.locator("#neuron-body").text_content()
    assert page.locator("ol.pushes li").count() == len(n["top"])
    neuron.click()  # again: let go of it
    assert page.locator("#neuron-title").text_content() == "Click a neuron" and not pattern.is_visible()
    neuron.click()
    pattern.wait_for()

    page.locator("#want-label").select_option("3")
    page.locator("#wants").click()
    page.locator("canvas.grad-tile").first.wait_for()
    assert page.locator("canvas.grad-tile").count() == 16
    sizes = page.evaluate("[...document.querySelectorAll('canvas.grad-tile')].map(c => [c.width, c.height])")
    assert sizes == [[28, 28]] * 16
    w = inspect.wants(model, digits.test_images[0], 3, served.server.explorer.source.lr())
    text = page.locator("#wants-out").text_content()
    before, after = map(float, re.search(r"p\(3\) ([\d.]+)% → ([\d.]+)%", text).groups())
    assert before == pytest.approx(100 * w["before"][3], abs=0.05)
    assert after == pytest.approx(100 * w["after"][3], abs=0.05)
    assert after > before  # one step towards a 3
    assert page.locator("canvas.grad-layer").count() == 2  # W2 16×16 and W3 16×10 as heat maps

    page.locator("#mistakes").click()
    page.wait_for_function("() => document.getElementById('digit-info').textContent.startsWith('test digit 2 ')")
    assert learner.top() == "1" and "labelled 4, the network says 1" in page.locator("#digit-info").text_content()
    learner.close()


def test_the_page_follows_a_run_as_it_trains(browser, snapshots, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(snapshots["epoch1"], run / "checkpoint.npz")
    s = Served(run, None)
    try:
        learner = Learner(browser, s, DESKTOP)
        page = learner.page
        page.wait_for_function("() => document.getElementById('train-status').textContent.includes('1 of 6 epochs')")
        assert page.locator("canvas.weight-tile").count() == 16
        assert page.locator("#curves circle").count() == 2  # one epoch: a point per curve
        shutil.copy(snapshots["epoch3"], run / ".next")
        os.utime(run / ".next", ns=(4 * 10**18, 4 * 10**18))
        os.replace(run / ".next", run / "checkpoint.npz")
        page.wait_for_function("() => document.getElementById('train-status').textContent.includes('3 of 6 epochs')",
                               timeout=15_000)
        assert page.locator("#curves circle").count() == 6
        learner.close()
    finally:
        s.close()


def test_the_page_is_served_from_the_package_with_nothing_from_elsewhere(served):
    status, html = served.request("GET", "/")
    assert status == 200
    text = html.decode("utf-8")
    assert not re.findall(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", text, flags=re.I)
    assert "@import" not in text and "<script src" not in text and "url(" not in text
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in text
