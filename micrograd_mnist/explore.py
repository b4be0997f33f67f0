"""`micrograd-mnist explore [RUN_DIR|CKPT]`: a local page where you draw a digit and watch it flow through the
network, as TensorBoard does it: one command starts a small server on 127.0.0.1 and prints its URL.

The server is thin. Every number comes from `inspect` (the Tensor engine); the page, served from the package,
only draws the JSON it gets. As a server it trusts nothing from the client: it binds 127.0.0.1 alone, answers
only requests addressed to that host (a web page elsewhere can't reach it by renaming itself), takes no path
or file name from a request, reads at most MAX_BODY bytes of one, validates every field, and answers a bad
one with a 4xx JSON error; nothing a client sends prints a traceback.

Pointed at a run folder that `train` is writing, it reloads the network whenever checkpoint.npz changes,
and the page follows: the curves and the first layer's weights update epoch by epoch.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import stat
import sys
import threading
import webbrowser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from .files import finite_number

HOST = "127.0.0.1"
DEFAULT_PORT = 7840  # 784 pixels
MAX_BODY = 64 * 1024  # a drawn canvas (56×56 numbers) is under 16 KB
DRAIN = 2**20  # a bigger body than MAX_BODY, up to this, is read (and dropped) before the 413
MAX_METRICS = 2**20
CANVAS_SIDE = (8, 112)  # a drawing's grid: big enough to hold a digit, small enough to fit in MAX_BODY
MAX_LR = 10.0
SHARP = 64  # arrays up to this size go out exactly; bigger ones (weights, pictures) to 4 significant digits


class ExploreError(Exception):
    """Why the explorer can't start; one line for the user."""


class RequestError(Exception):
    """A request we refuse: an HTTP status and one line saying what is wrong."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


# --- the network being explored, and its run -------------------------------------------------------------

class Source:
    """The checkpoint being explored. Given a run folder: its model.npz, or while `train` is still writing it,
    its checkpoint.npz, reloaded (with the test set's predictions) whenever the file changes."""

    def __init__(self, target: str | Path, data_dir: str | Path | None = None, log=print) -> None:
        self.target = Path(target)
        self.folder = self.target if self.target.is_dir() else None
        self.lock = threading.RLock()  # one computation at a time: the engine's no_grad switch is global
        self.version, self.stamp, self.note = 0, None, None
        self.log = log
        self._load(self.path())
        self.digits, self.digits_note = self._test_set(data_dir)

    def path(self) -> Path:
        if self.folder is None:
            return self.target
        model = self.folder / "model.npz"
        if model.exists():
            return model
        if (self.folder / "checkpoint.npz").exists():
            return self.folder / "checkpoint.npz"
        raise ExploreError(f"{self.folder} holds no model.npz or checkpoint.npz: train into it with "
                           f"`micrograd-mnist train --out {self.folder}`, or give a checkpoint file")

    def _load(self, path: Path) -> None:
        from . import checkpoint, inspect

        try:
            info = os.stat(path)
        except FileNotFoundError:
            raise ExploreError(f"no checkpoint at {path}: train one with `micrograd-mnist train --out DIR`, "
                               "then explore DIR") from None
        except OSError as e:
            raise ExploreError(f"can't read {path}: {e.strerror or e}") from None
        # the loader refuses anything but a regular file too; this says what to give instead
        if not stat.S_ISREG(info.st_mode) and not stat.S_ISDIR(info.st_mode):
            raise ExploreError(f"{path} is not a regular file; give a model.npz or checkpoint.npz, or a run folder")
        model, meta, _ = checkpoint.load(path)
        try:
            inspect.check(model)
        except inspect.ShapeError as e:
            raise ExploreError(f"can't explore {path}: {e}") from None
        self.model, self.meta, self.loaded = model, meta, path
        self.stamp = _stamp(path, info)
        self.version += 1

    def _test_set(self, data_dir):
        from . import data
        from .config import Config, dataset_of
        from .inspect import TestDigits

        dataset = dataset_of(self.meta)
        if dataset not in data.DATASETS:
            dataset = Config.dataset
        where = data_dir if data_dir is not None else self.config().get("data_dir")
        try:
            found = data.load(dataset, where, log=self.log, download=False)
        except data.DataError as e:
            if data_dir is not None or (where is None and os.environ.get(data.ENV_VAR)):  # named by the user: wrong
                raise
            return None, f"no test digits to pick from ({e})"
        return TestDigits(found.test_images, found.test_labels, self.model), None

    def refresh(self) -> bool:
        """Reload if the run wrote a new checkpoint (or its final model) since; True if it did. A file that
        can't be read now keeps the network we have and says why."""
        with self.lock:
            try:
                path = self.path()
                info = os.stat(path)
            except (ExploreError, OSError):
                return False
            if _stamp(path, info) == self.stamp:
                return False
            from .checkpoint import CheckpointError

            try:
                self._load(path)
            except (ExploreError, CheckpointError, OSError) as e:
                self.stamp = _stamp(path, info)  # don't retry until it changes again
                self.note = f"kept the network from {self.loaded.name}: {e}"
                return False
            self.note = None
            if self.digits is not None:
                from .inspect import TestDigits

                self.digits = TestDigits(self.digits.images, self.digits.labels, self.model)
            return True

    def config(self) -> dict:
        config = self.meta.get("config")
        return config if isinstance(config, dict) else {}

    def lr(self) -> float:
        lr = self.config().get("lr")
        return float(lr) if isinstance(lr, (int, float)) and 0 < lr <= MAX_LR else 0.1

    def metrics(self) -> dict | None:
        """Per-epoch training loss and validation accuracy: from metrics.json once the run is done, from the
        checkpoint's own training state while it runs."""
        from .files import FileError, read_input

        if self.loaded.name == "model.npz" and (self.loaded.parent / "metrics.json").exists():
            path = self.loaded.parent / "metrics.json"
            try:
                found = json.loads(read_input(path, MAX_METRICS, "metrics.json"))
            except (OSError, FileError, ValueError, RecursionError) as e:
                return {"note": f"can't read {path.name}: {e}"}
            done = True
        else:
            state = self.meta.get("resume")
            if not isinstance(state, dict) or not isinstance(state.get("metrics"), dict):
                return None
            found, done = state["metrics"], False
        if not isinstance(found, dict):
            return {"note": "metrics.json is not a run's metrics"}
        out = {"done": done, "epochs": self.config().get("epochs")}
        for key in ("train_loss", "val_accuracy"):
            values = found.get(key)
            out[key] = [v if finite_number(v) else None for v in values] if isinstance(values, list) else []
        test = found.get("test_accuracy")
        out["test_accuracy"] = test if finite_number(test) else None
        return out

    def describe(self) -> str:
        arch = "-".join(map(str, self.model.sizes))
        return f"{self.loaded} ({arch} {self.model.activation})"


def _stamp(path: Path, info: os.stat_result) -> tuple:
    """What tells a checkpoint file apart from the one loaded before: its path, modification time and size."""
    return str(path), info.st_mtime_ns, info.st_size


# --- requests ---------------------------------------------------------------------------------------------

def parse_body(body: bytes) -> dict:
    """A JSON object, or RequestError 400: NaN and Infinity are not numbers here (JSON has none)."""
    def no_constant(name: str):
        raise RequestError(400, f"{name} is not a number: send finite numbers")

    try:
        obj = json.loads(body, parse_constant=no_constant)
    except RequestError:
        raise
    except (ValueError, RecursionError) as e:  # JSONDecodeError, bad UTF-8, an integer of thousands of digits
        raise RequestError(400, f"the body is not valid JSON ({' '.join(str(e).split())[:120]})") from None
    if not isinstance(obj, dict):
        raise RequestError(400, "the body must be a JSON object")
    return obj


def numbers(values, what: str, count: int | None = None):
    """A list of finite numbers in [0, 1] as a float64 array, or RequestError 400 saying which rule it breaks."""
    import numpy as np

    if not isinstance(values, list):
        raise RequestError(400, f"{what} must be a list of numbers")
    if count is not None and len(values) != count:
        raise RequestError(400, f"{what} must be {count} numbers (28×28 pixels), got {len(values)}")
    if not all(type(v) in (int, float) for v in values):
        raise RequestError(400, f"{what} must hold only numbers")
    try:
        a = np.array(values, dtype=np.float64)
    except OverflowError:
        raise RequestError(400, f"{what} must lie in [0, 1]") from None
    if not np.isfinite(a).all():
        raise RequestError(400, f"{what} must be finite numbers (no infinity)")
    if a.size and (a.min() < 0 or a.max() > 1):
        raise RequestError(400, f"{what} must lie in [0, 1] (0 black, 1 white ink), got {a.min():g} to {a.max():g}")
    return a


def pixels(body: dict):
    """The digit a request is about, as the network sees it: `pixels`, 784 numbers in [0, 1] already in MNIST's
    form, or `canvas`, rows of numbers in [0, 1] (a drawing), brought to MNIST's form as `predict` brings a
    picture (images.to_mnist)."""
    import numpy as np

    from .images import to_mnist

    if "pixels" in body:
        return numbers(body["pixels"], "pixels", 784)
    if "canvas" in body:
        rows = body["canvas"]
        low, high = CANVAS_SIDE
        if not isinstance(rows, list) or not low <= len(rows) <= high:
            raise RequestError(400, f"canvas must be a list of {low} to {high} rows")
        grid = [numbers(row, f"canvas row {i}") for i, row in enumerate(rows)]
        if len({len(row) for row in grid}) != 1 or not low <= len(grid[0]) <= high:
            raise RequestError(400, f"canvas rows must all have the same length, {low} to {high}")
        return to_mnist(np.stack(grid).astype(np.float32)).astype(np.float64)
    raise RequestError(400, "give pixels (784 numbers in [0, 1]) or canvas (rows of numbers in [0, 1])")


def integer(body: dict, key: str, low: int, high: int, what: str) -> int:
    value = body.get(key)
    if type(value) is not int or not low <= value <= high:
        raise RequestError(400, f"{key} must be a whole number from {low} to {high} ({what}), got {value!r:.40}")
    return value


# --- answers: plain data from `inspect`, as JSON ---------------------------------------------------------

def to_json(obj) -> bytes:
    """JSON of inspect's answers: arrays as lists (big ones to 4 significant digits), never NaN."""
    return json.dumps(_plain(obj), allow_nan=False, separators=(",", ":")).encode()


def _plain(obj):
    import numpy as np

    if isinstance(obj, np.ndarray):
        values = obj.astype(np.float64).ravel().tolist()
        return values if len(values) <= SHARP else [float(f"{v:.4g}") for v in values]
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


class Explorer:
    """The answers, one per route, each computed under the source's lock."""

    def __init__(self, source: Source) -> None:
        self.source = source

    def model(self) -> dict:
        from . import inspect

        src = self.source
        src.refresh()
        with src.lock:
            digits = src.digits
            return {"sizes": src.model.sizes, "activation": src.model.activation, "source": str(src.loaded),
                    "version": src.version, "edges": inspect.edges(src.model), "lr": src.lr(),
                    "digits": {"count": len(digits) if digits else 0,
                               "mistakes": len(digits.mistakes) if digits else 0, "note": src.digits_note}}

    def predict(self, body: dict) -> dict:
        x = pixels(body)
        with self.source.lock:
            return self._forward(x)

    def _forward(self, x) -> dict:
        from . import inspect

        fw = inspect.forward(self.source.model, x)
        return {"input": x, "activations": fw.a[1:-1], "logits": fw.a[-1], "probs": fw.probs,
                "prediction": fw.prediction, "version": self.source.version}

    def digit(self, body: dict) -> dict:
        src = self.source
        with src.lock:
            if src.digits is None:
                raise RequestError(409, src.digits_note or "no test digits")
            n = len(src.digits)
            how = body.get("pick")
            if how == "index":
                index = integer(body, "index", 0, n - 1, "a test image")
            elif how in ("next", "random", "mistake"):
                current = body.get("current")
                current = integer(body, "current", 0, n - 1, "a test image") if current is not None else None
                index = src.digits.pick(how, current)
                if index is None:
                    raise RequestError(409, f"the network gets all {n:,} test digits right: no mistakes to show")
            else:
                raise RequestError(400, "pick must be one of next, random, mistake, index")
            x = src.digits.images[index].astype("float64")
            return {"digit": src.digits.describe(index)} | self._forward(x)

    def neuron(self, body: dict) -> dict:
        from . import inspect

        x = pixels(body)
        with self.source.lock:
            sizes = self.source.model.sizes
            layer = integer(body, "layer", 1, len(sizes) - 1, "1 is the first hidden layer")
            index = integer(body, "index", 0, sizes[layer] - 1, f"a neuron of layer {layer}")
            return inspect.neuron(self.source.model, x, layer, index)

    def wants(self, body: dict) -> dict:
        from . import inspect

        x = pixels(body)
        label = integer(body, "label", 0, 9, "the digit it should be")
        lr = body.get("lr", None)
        with self.source.lock:
            if lr is None:
                lr = self.source.lr()
            elif not finite_number(lr) or not 0 < lr <= MAX_LR:
                raise RequestError(400, f"lr must be a number above 0 and at most {MAX_LR:g}")
            return inspect.wants(self.source.model, x, label, float(lr))

    def train(self) -> dict:
        from . import inspect

        src = self.source
        src.refresh()
        with src.lock:
            return {"version": src.version, "watching": src.folder is not None, "source": src.loaded.name,
                    "metrics": src.metrics(), "weights": inspect.first_layer_weights(src.model), "note": src.note}


GETS = {"/api/model": Explorer.model, "/api/train": Explorer.train}
POSTS = {"/api/predict": Explorer.predict, "/api/digit": Explorer.digit, "/api/neuron": Explorer.neuron,
         "/api/wants": Explorer.wants}
PAGE_SECURITY = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data: blob:; "
                 "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


class Handler(BaseHTTPRequestHandler):
    server: ExploreServer
    server_version = "micrograd-mnist-explore"
    sys_version = ""
    timeout = 30  # a client that announces a body and never sends it frees its thread

    def log_message(self, format: str, *args) -> None:
        pass  # requests are the page's business; the terminal keeps the URL and errors

    def do_GET(self) -> None:
        self._answer("GET")

    def do_POST(self) -> None:
        self._answer("POST")

    def do_HEAD(self) -> None:
        self._reply(405, {"error": "use GET or POST"}, head=True)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own refusals (a malformed request line, an unknown method) as JSON too."""
        self.close_connection = True
        if code == 501:  # a method we don't serve is the client's mistake
            code, message = 405, f"{self.command} is not served here: use GET or POST"
        try:
            self._reply(code, {"error": message or self.responses.get(code, ("error",))[0]})
        except OSError:
            pass

    def _answer(self, method: str) -> None:
        try:
            status, body, kind = self._route(method)
        except RequestError as e:
            status, body, kind = e.status, to_json({"error": str(e)}), "application/json"
        except Exception as e:  # noqa: BLE001 - a bug of ours: one line in the terminal, a 500 to the page
            self.server.complain(f"{self.command} {urlsplit(self.path).path}: {type(e).__name__}: {e}")
            status, body, kind = 500, to_json({"error": f"the explorer failed on this request "
                                                        f"({type(e).__name__}); see its terminal"}), "application/json"
        try:
            self._send(status, body, kind)
        except OSError:  # the page went away while we answered
            self.close_connection = True

    def _route(self, method: str) -> tuple[int, bytes, str]:
        self._check_host()
        path = urlsplit(self.path).path
        explorer = self.server.explorer
        if method == "GET" and path in ("/", "/index.html"):
            from viz.explore_page import page

            return 200, page(), "text/html; charset=utf-8"
        if path in GETS and method == "GET":
            return 200, to_json(GETS[path](explorer)), "application/json"
        if path in POSTS and method == "POST":
            return 200, to_json(POSTS[path](explorer, self._body())), "application/json"
        if path in GETS or path in POSTS or path == "/":
            raise RequestError(405, f"{path} takes {'GET' if path in GETS or path == '/' else 'POST'}")
        raise RequestError(404, f"no such page: {path[:80]}; the explorer is at /")

    def _check_host(self) -> None:
        """Only requests addressed to this server by its own name: a page on another site that points its
        name at 127.0.0.1 (DNS rebinding) sends its own Host and is refused."""
        port = self.server.server_port
        mine = {f"127.0.0.1:{port}", f"localhost:{port}"}
        if self.headers.get("Host", "") not in mine:
            raise RequestError(403, f"this server answers only at http://127.0.0.1:{port}/")
        origin = self.headers.get("Origin")
        if origin is not None and origin not in {f"http://{h}" for h in mine}:
            raise RequestError(403, "requests from other sites are refused")

    def _body(self) -> dict:
        kind = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if kind != "application/json":
            raise RequestError(415, "send the body as application/json")
        length = self.headers.get("Content-Length")
        if length is None:
            raise RequestError(411, "a Content-Length is needed")
        length = length.strip()
        # "²".isdigit() is True and int("²") fails; int() refuses more than 4,300 digits
        if not (length.isascii() and length.isdigit() and len(length) <= 12):
            raise RequestError(400, "Content-Length must be a whole number of bytes")
        n = int(length)
        if n > MAX_BODY:
            self.close_connection = True  # the unread body must not be taken for the next request
            left = n if n <= DRAIN else 0  # read it away unkept, so the client hears the answer, not a reset
            while left > 0:
                chunk = self.rfile.read(min(MAX_BODY, left))
                if not chunk:
                    break
                left -= len(chunk)
            raise RequestError(413, f"the body is {n:,} bytes; the explorer takes at most {MAX_BODY:,}")
        body = self.rfile.read(n)
        if len(body) < n:
            raise RequestError(400, f"the body ended after {len(body):,} of its {n:,} bytes")
        return parse_body(body)

    def _send(self, status: int, body: bytes, kind: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        if kind.startswith("text/html"):
            self.send_header("Content-Security-Policy", PAGE_SECURITY)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _reply(self, status: int, obj: dict, head: bool = False) -> None:
        self._send(status, b"" if head else to_json(obj), "application/json")


class ExploreServer(ThreadingHTTPServer):
    daemon_threads = True  # Ctrl-C stops the server without waiting for an open connection

    def __init__(self, source: Source, port: int, err=None) -> None:
        self.explorer = Explorer(source)
        self.err = err if err is not None else sys.stderr
        try:
            super().__init__((HOST, port), Handler)
        except OSError as e:
            raise ExploreError(_bind_problem(e, port)) from None

    def complain(self, line: str) -> None:
        print(f"micrograd-mnist explore: {line}", file=self.err, flush=True)

    def handle_error(self, request, client_address) -> None:
        """Whatever escaped a request's thread: one line, never a traceback; a page that left is no error."""
        error = sys.exc_info()[1]
        if not isinstance(error, (ConnectionError, TimeoutError)):
            self.complain(f"a request failed: {type(error).__name__}: {error}")

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.server_port}/"


def _bind_problem(e: OSError, port: int) -> str:
    if e.errno == errno.EADDRINUSE:
        other = port + 1 if 0 < port < 65535 else DEFAULT_PORT
        return (f"port {port} is in use (another explore, or another program); give another with --port, "
                f"e.g. --port {other}, or --port 0 for any free port")
    if e.errno == errno.EACCES:
        return f"port {port} needs privileges this user lacks; give a port above 1023 with --port"
    return f"can't listen on {HOST}:{port}: {e.strerror or e}; give another with --port"


def make_server(target: str | Path, port: int = DEFAULT_PORT, data_dir: str | Path | None = None,
                log=print, err=None) -> ExploreServer:
    """Load and check the checkpoint, then bind 127.0.0.1:port (0: any free port); ExploreError,
    CheckpointError or FileError in one line if either can't be done. Serve with serve_forever()."""
    return ExploreServer(Source(target, data_dir, log), port, err)


# --- the command line --------------------------------------------------------------------------------------

def _port(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"a port is a whole number from 0 to 65535, got {text!r}")
    return int(text)


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register `explore` on an argparse subparsers object; the parser back."""
    from .arguments import path_arg

    parser = subparsers.add_parser(
        "explore", help="a local page: draw a digit and watch it flow through the network",
        description="Serve a page on 127.0.0.1 where you draw a digit or pick a test digit and see every layer's "
                    "activations, click a neuron for its weights, and ask what one digit wants every weight to "
                    "do. Given a run folder that `train` is writing, the page follows the training.")
    parser.add_argument("path", nargs="?", type=path_arg, default=Path("runs/latest"), metavar="RUN_DIR|CKPT",
                        help="a run folder (its model.npz, else its checkpoint.npz) or a .npz checkpoint "
                             "(default runs/latest)")
    parser.add_argument("--port", type=_port, default=DEFAULT_PORT,
                        help=f"the port on 127.0.0.1 (default {DEFAULT_PORT}; 0: any free port)")
    parser.add_argument("--no-browser", dest="browser", action="store_false",
                        help="only print the URL; don't open a browser")
    parser.add_argument("--data-dir", type=path_arg, metavar="DIR",
                        help="the IDX files to pick test digits from (default: where the run read them)")
    return parser


def run(args: argparse.Namespace) -> int:
    """Serve until Ctrl-C (exit 0, with a line). Anything that keeps it from starting is one line, exit 2."""
    from .checkpoint import CheckpointError
    from .data import DataError
    from .files import FileError

    try:
        server = make_server(args.path, args.port, args.data_dir,
                             log=lambda line: print(line, file=sys.stderr))
    except (ExploreError, CheckpointError, DataError, FileError) as e:
        print(f"micrograd-mnist explore: {e}", file=sys.stderr)
        return 2
    with server:
        print(f"exploring {server.explorer.source.describe()}\n  {server.url}   (Ctrl-C to stop)", flush=True)
        if server.explorer.source.digits_note:  # the page says so too, beside its test-digit buttons
            print(f"  ({server.explorer.source.digits_note})", file=sys.stderr, flush=True)
        if args.browser:
            _open_browser(server.url)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            print("\nmicrograd-mnist explore: stopped", file=sys.stderr)
    return 0


def _open_browser(url: str) -> None:
    # On Linux without a display, webbrowser would start a text browser in this terminal.
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        print("  (no display here: open the URL in a browser)", flush=True)
        return
    threading.Thread(target=webbrowser.open, args=(url,), daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    """`python -m micrograd_mnist.explore ARGS` (what `micrograd-mnist explore ARGS` runs)."""
    from .arguments import Parser

    parser = Parser(prog="micrograd-mnist")
    add_parser(parser.add_subparsers(dest="command"))
    return run(parser.parse_args(["explore", *(sys.argv[1:] if argv is None else argv)]))


if __name__ == "__main__":
    sys.exit(main())
