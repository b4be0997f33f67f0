"""The backprop walk-through page (`backprop ... --html FILE`) in a real browser: headless Chromium driven
by Playwright, at a desktop's 1280×800 and a phone's 390×844, used as a learner uses it (keys, buttons,
slider, clicks, wheel, drag, pinch). The page must be self-contained (nothing fetched), follow the current
step so that its text is readable without zooming, and show the numbers the engine computed.

This test fails, rather than skips, without Chromium or Playwright: `make test` installs both.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from PIL import Image

from micrograd_mnist import cli
from micrograd_mnist.backprop import Names, contribution, fmt, steps
from micrograd_mnist.demos import layer_backprop, single_neuron
from micrograd_mnist.expr import graph

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
DESKTOP, PHONE = {"width": 1280, "height": 800}, {"width": 390, "height": 844}
MIN_TEXT_PX = 9


def sync_playwright():
    """Playwright's entry point, or a failure that says how to get it."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: the browser test needs the system Chromium; `make test` installs it "
                    "(apt-get install chromium)", pytrace=False)
    try:
        from playwright.sync_api import sync_playwright as start
    except ImportError:
        pytest.fail("Python's playwright is not installed: `make test` installs it (pip install -e '.[dev]'); "
                    "it drives /usr/bin/chromium and never downloads a browser", pytrace=False)
    return start()


@pytest.fixture(scope="module")
def pages(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("html")
    made = {}
    for name, argv in {"layer": ["backprop", "layer-backprop"], "neuron": ["backprop", "single-neuron"],
                       "reuse": ["backprop", "--expr", "b = a + a; c = b + b", "--set", "a=3"]}.items():
        made[name] = folder / f"{name}.html"
        assert cli.main([*argv, "--html", str(made[name])]) == 0
    return made


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


class Learner:
    """One page in one viewport; records every request and script error, and refuses any request that
    is not the page itself (nothing may leave the machine)."""

    def __init__(self, browser, path: Path, viewport: dict, touch: bool = False) -> None:
        self.url = path.resolve().as_uri()
        self.context = browser.new_context(viewport=viewport, has_touch=touch, is_mobile=touch)
        self.page = self.context.new_page()
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.page.on("request", lambda r: self.requests.append(r.url) if r.url != self.url else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.route(re.compile(r"^(?!file:).*"), lambda route: route.abort())
        self.page.goto(self.url)
        self.settle()

    def settle(self) -> None:
        """Wait for the view to finish following the step (a short pan/zoom animation)."""
        self.page.wait_for_function("!document.getElementById('graph').dataset.moving", timeout=5000)

    def key(self, key: str) -> None:
        self.page.keyboard.press(key)
        self.settle()

    def counter(self) -> str:
        return self.page.locator("#counter").text_content()

    def view_box(self) -> list[float]:
        return [float(v) for v in self.page.locator("#graph svg").get_attribute("viewBox").split()]

    def text_boxes(self, ids: list[str]) -> list[dict]:
        """Every text of these SVG groups: its on-screen height, and whether it lies inside the graph pane."""
        return self.page.evaluate("""ids => {
            const pane = document.getElementById('graph').getBoundingClientRect();
            return ids.flatMap(id => [...document.getElementById(id).querySelectorAll('text')].map(t => {
                const r = t.getBoundingClientRect();
                return {id, text: t.textContent, height: r.height,
                        inside: r.left >= pane.left - 0.5 && r.right <= pane.right + 0.5 &&
                                r.top >= pane.top - 0.5 && r.bottom <= pane.bottom + 0.5};
            }));
        }""", ids)

    def ids(self) -> dict[str, str]:
        """The page's SVG id of each node, by the node's name (names are unique in these graphs)."""
        return self.page.evaluate("Object.fromEntries(Object.entries(nodes).map(([id, n]) => [n.name, id]))")

    def close(self) -> None:
        self.context.close()
        assert self.requests == [], f"the page fetched {self.requests}"
        assert self.errors == [], self.errors


def test_the_page_is_self_contained_and_made_for_small_screens(pages):
    for path in pages.values():
        html = path.read_text(encoding="utf-8")
        assert html.count("<svg") == 2  # one drawing per screen shape (wide, tall); the steps only recolour it
        assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
        assert not re.findall(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", html, flags=re.I)
        assert not re.search(r"url\(\s*['\"]?\s*(?:https?:)?//", html, flags=re.I)
        assert "@import" not in html and "<script src" not in html
    assert "<title>backprop: layer-backprop</title>" in pages["layer"].read_text(encoding="utf-8")


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_every_step_is_followed_and_readable(browser, pages, viewport):
    """layer-backprop, step by step with the keyboard: the current node and its inputs are in view with
    text at least 9 px tall, coloured by their part, the edges carrying gradient are labelled with what
    the engine added, and every gradient shown is the one the step left."""
    # the same graph, stepped here in Python: the numbers the page must show
    root = layer_backprop()
    names = Names(root)
    learner = Learner(browser, pages["layer"], viewport)
    page = learner.page
    ids = learner.ids()
    assert len(ids) == len(names.names)

    def key(node) -> str:
        return ids[names[node]]

    expected = []
    for s in steps(root):
        expected.append((s, {key(e.parent): fmt(e.grad_after, 4) for e in s.edges},
                         sorted(f"adds {fmt(e.added)}" for e in s.edges if e.parent.op is not None or e.parent.label)))
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]  # no sideways scrolling
    assert not page.locator("#forward").is_visible()  # the 44-line forward pass is folded away
    for k, (s, grads, flow_labels) in enumerate(expected, start=1):
        if k > 1:
            learner.key("ArrowRight")
        assert learner.counter() == f"Step {k} of {len(expected)}"
        text = page.locator("#text").text_content()
        assert text.startswith(f"step {k}: {names[s.node]} = ")
        parents = sorted({key(p) for p in s.node.parents})
        boxes = learner.text_boxes([key(s.node), "o" + key(s.node)[1:], *parents])
        assert {b["id"] for b in boxes} == {key(s.node), "o" + key(s.node)[1:], *parents}
        small = [b for b in boxes if b["height"] < MIN_TEXT_PX]
        assert not small, f"step {k}: text too small to read: {small}"
        hidden = [b for b in boxes if not b["inside"]]
        assert not hidden, f"step {k}: not in view: {hidden}"
        classes = page.evaluate("""([node, parents]) => ({
            node: document.getElementById(node).classList.value,
            op: document.getElementById('o' + node.slice(1)).classList.value,
            parents: parents.map(p => document.getElementById(p).classList.value),
            current: [...document.querySelectorAll('g.node.current')].map(g => g.id),
        })""", [key(s.node), parents])
        assert "current" in classes["node"] and "current" in classes["op"]
        assert all("receiving" in c for c in classes["parents"])
        assert sorted(classes["current"]) == sorted([key(s.node), "o" + key(s.node)[1:]])  # nothing else
        shown = page.evaluate("ids => ids.map(id => [...document.getElementById(id).querySelectorAll('text')]"
                              ".map(t => t.textContent).find(t => t.startsWith('grad ')))", list(grads))
        assert shown == [f"grad {g}" for g in grads.values()]
        labels = sorted(page.locator(".flowlabel text").all_text_contents())
        assert labels == flow_labels
        assert page.locator("g.edge.flow").count() == len(flow_labels)
    # the three colours differ, so "processing", "receiving" and "done" can be told apart
    fills = page.evaluate("""() => ['current', 'receiving', 'done'].map(c =>
        getComputedStyle(document.querySelector('g.node.' + c + ' polygon')).fill)""")
    assert len(set(fills)) == 3, fills
    learner.close()


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_keys_buttons_and_slider(browser, pages, viewport):
    learner = Learner(browser, pages["neuron"], viewport)
    page = learner.page
    prev, nxt = page.locator("#prev"), page.locator("#next")
    assert learner.counter() == "Step 1 of 4" and prev.is_disabled() and nxt.is_enabled()
    assert "L = e ** 2" in page.locator("#text").text_content()
    nxt.click()
    learner.settle()
    assert learner.counter() == "Step 2 of 4" and prev.is_enabled()
    learner.key("End")
    assert learner.counter() == "Step 4 of 4" and nxt.is_disabled()
    text = page.locator("#text").text_content()
    assert "dL/dw += dL/d(w·x) · ∂(w·x)/∂w = dL/d(w·x) · x = -0.50 · 2.00 = -1.00" in text
    learner.key("ArrowRight")  # past the end: stays
    assert learner.counter() == "Step 4 of 4"
    learner.key("Home")
    assert learner.counter() == "Step 1 of 4"
    learner.key("ArrowLeft")  # before the start: stays
    assert learner.counter() == "Step 1 of 4"
    page.locator("#slider").fill("3")
    learner.settle()
    assert learner.counter() == "Step 3 of 4"
    assert page.locator("#text").text_content().startswith("step 3: ŷ = w·x + b")
    learner.close()


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_clicking_a_node_shows_its_whole_chain_rule(browser, pages, viewport):
    """a = 3, b = a + a, c = b + b: a's gradient is the sum over both uses, and the page says so with numbers."""
    root, named = graph("b = a + a; c = b + b", a=3.0)
    walk = list(steps(root))
    names = Names(root)
    learner = Learner(browser, pages["reuse"], viewport)
    page = learner.page
    page.locator("#fit").click()  # at step 1 the view follows c and b; the whole graph shows a too
    learner.settle()
    a = page.locator("#" + learner.ids()["a"])
    a.click()
    detail = page.locator("#detail")
    assert detail.is_visible()
    body = page.locator("#detail-body").text_content()
    terms = [contribution(walk[1], e, names, "c") for e in walk[1].edges]
    assert terms[0] in body and "dc/db · ∂b/∂a = dc/db · 1 = 2.00 · 1.00 = 2.00" in body
    assert "dc/da = 2.00 + 2.00 = 4.00" in body
    # at step 1 the terms into a have not been added yet, and the page marks them
    assert page.locator("#detail .later").count() == 2
    learner.key("End")
    assert page.locator("#detail .later").count() == 0
    assert "picked" in a.get_attribute("class")
    learner.close()


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_wheel_zooms_drag_pans_and_fit_shows_everything(browser, pages, viewport):
    learner = Learner(browser, pages["layer"], viewport)
    page = learner.page
    pane = page.locator("#graph").bounding_box()
    cx, cy = pane["x"] + pane["width"] / 2, pane["y"] + pane["height"] / 2
    before = learner.view_box()
    page.mouse.move(cx, cy)
    page.mouse.wheel(0, -400)  # zoom in: fewer drawing units across the pane
    page.wait_for_timeout(100)
    zoomed = learner.view_box()
    assert zoomed[2] < before[2] * 0.8
    page.mouse.wheel(0, 800)
    page.wait_for_timeout(100)
    assert learner.view_box()[2] > zoomed[2] * 1.5
    x0 = learner.view_box()[0]
    page.mouse.move(cx, cy)
    page.mouse.down()
    page.mouse.move(cx + 80, cy, steps=5)
    page.mouse.up()
    assert learner.view_box()[0] < x0 - 1  # dragging right shows what lies to the left
    assert not page.locator("#detail").is_visible()  # a drag is not a click
    page.locator("#fit").click()
    learner.settle()
    every = page.evaluate("[...document.querySelectorAll('g.node')].map(g => g.id)")
    outside = [b for b in learner.text_boxes(every) if not b["inside"]]
    assert not outside, outside[:3]
    learner.close()


def test_pinch_zooms_on_a_touch_screen(browser, pages):
    learner = Learner(browser, pages["layer"], PHONE, touch=True)
    page = learner.page
    pane = page.locator("#graph").bounding_box()
    cx, cy = pane["x"] + pane["width"] / 2, pane["y"] + pane["height"] / 2
    before = learner.view_box()[2]
    cdp = learner.context.new_cdp_session(page)

    def touch(kind: str, spread: float) -> None:
        fingers = [{"x": cx - spread, "y": cy, "id": 0}, {"x": cx + spread, "y": cy, "id": 1}]
        points = [] if kind == "touchEnd" else fingers
        cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": points})

    touch("touchStart", 20)
    for spread in (30, 45, 60, 80):  # fingers apart: zoom in
        touch("touchMove", spread)
    touch("touchEnd", 0)
    page.wait_for_timeout(100)
    assert learner.view_box()[2] < before / 2
    learner.close()


def test_a_screenshot_is_a_picture(browser, pages, tmp_path):
    learner = Learner(browser, pages["layer"], DESKTOP)
    shot = tmp_path / "page.png"
    learner.page.screenshot(path=str(shot))
    learner.close()
    image = Image.open(io.BytesIO(shot.read_bytes())).convert("RGB")
    assert image.size == (1280, 800)
    assert len(image.getcolors(maxcolors=1 << 16) or range(1 << 16)) > 16, "the screenshot is nearly blank"
    # the amber of the node being processed is on screen
    assert any(abs(r - 0xff) < 8 and abs(g - 0xb3) < 8 and b < 30 for _, (r, g, b) in image.getcolors(1 << 20))


def test_frames_colour_each_step(tmp_path):
    folder = tmp_path / "frames"
    assert cli.main(["backprop", "single-neuron", "--frames", str(folder), "--format", "dot", "--all"]) == 0
    first, last = (folder / "step-001.dot").read_text("utf-8"), (folder / "step-004.dot").read_text("utf-8")
    root = single_neuron()
    list(steps(root))
    assert "{ w | data 0.5000 | grad 0.0000 }" in first  # w's gradient has not arrived at step 1
    assert "{ w | data 0.5000 | grad -1.0000 }" in last
    assert "adds -1.00" in last and "adds -0.50" in first  # the edges carrying gradient, labelled
    assert "#ffb300" in first and "#9ccc65" in first  # processing and receiving


# --- the Tensor walk-through: whole matrices, and the scalar mirror under any entry -----------------------


@pytest.fixture(scope="module")
def tensor_pages(tmp_path_factory, data_dir) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("tensor-html")
    made = {"seed": folder / "seed.html", "digit": folder / "digit.html"}
    assert cli.main(["backprop", "seed-layer", "--html", str(made["seed"])]) == 0
    assert cli.main(["backprop", "3b1b-digit", "--data-dir", str(data_dir), "--html", str(made["digit"])]) == 0
    return made


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_tensor_page_shows_matrices_and_mirrors_a_clicked_cell(browser, tensor_pages, viewport):
    from micrograd_mnist.demos import seed_layer
    from micrograd_mnist.tensor_steps import mirror, steps

    demo = seed_layer()
    list(steps(demo.loss))
    learner = Learner(browser, tensor_pages["seed"], viewport)
    page = learner.page
    learner.key("End")
    assert learner.counter() == "Step 4 of 4"
    assert "dL/dW += Xᵀ · dL/dY" in page.locator("#text").text_content()
    cells = page.locator('td[data-m^="W["]')
    assert cells.count() == 12  # every entry of dL/dW, coloured and clickable
    cell = page.locator('td[data-m="W[2,1]"]')
    cell.scroll_into_view_if_needed()
    cell.click()
    body = page.locator("#detail-body").text_content()
    m = mirror(demo.tensors["W"].grad, "W", (2, 1), demo.scalar_loss())
    assert f"dL/dW[2,1] = {m.cell:.4f}" in body
    assert body.count("∂(X[") == 3 and f"= {m.total:.4f}" in body  # three rows' terms and their sum
    learner.close()


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_first_layer_gradient_is_sixteen_digit_pictures(browser, tensor_pages, viewport):
    learner = Learner(browser, tensor_pages["digit"], viewport)
    page = learner.page
    learner.key("End")
    assert learner.counter() == "Step 6 of 6"
    tiles = page.locator('img[data-tile="W1"]')
    assert tiles.count() == 16
    sizes = page.evaluate("[...document.querySelectorAll('img[data-tile]')]"
                          ".map(i => [i.naturalWidth, i.naturalHeight])")
    assert sizes == [[28, 28]] * 16
    tile = page.locator('img[data-tile="W1"][data-j="5"]')
    tile.scroll_into_view_if_needed()
    box = tile.bounding_box()
    page.mouse.click(box["x"] + box["width"] * 20.5 / 28, box["y"] + box["height"] * 10.5 / 28)  # row 10, col 20
    assert page.locator("#detail-title").text_content() == "the scalar mirror of W1[300,5]"
    body = page.locator("#detail-body").text_content()
    cell = re.search(r"dL/dW1\[300,5\] = (\S+) ", body)[1]
    total = re.search(r"sum of the 1 scalar term = (\S+)", body)[1]
    assert float(cell) == pytest.approx(float(total), abs=1e-12)
    learner.close()
