"""The backprop walk-through page (`backprop ... --html FILE`) in a real browser: headless Chromium
driven by Playwright. The page must be self-contained (nothing fetched) and step with buttons and keys.

This test fails, rather than skips, without Chromium or Playwright: `make test` installs both.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from PIL import Image

from micrograd_mnist import cli

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
STEPS = 4  # the single neuron: L = e², e = ŷ − y, ŷ = w·x + b, w·x


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
def page_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("html") / "walkthrough.html"
    assert cli.main(["backprop", "single-neuron", "--html", str(path)]) == 0
    return path


def test_the_page_is_self_contained(page_file):
    html = page_file.read_text(encoding="utf-8")
    assert html.count("<svg") == STEPS  # every step's graph inline
    remote = re.findall(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", html, flags=re.I)
    assert remote == []
    assert not re.search(r"url\(\s*['\"]?\s*(?:https?:)?//", html, flags=re.I)
    assert not re.search(r"@import", html)
    assert "<title>backprop: single-neuron</title>" in html


def test_the_page_steps_through_backprop_in_chromium(page_file, tmp_path):
    url = page_file.resolve().as_uri()
    requests: list[str] = []
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.on("request", lambda request: requests.append(request.url) if request.url != url else None)
            page.on("pageerror", lambda error: errors.append(str(error)))
            # anything other than the page itself is refused as well as recorded: nothing may leave the machine
            page.route(re.compile(r"^(?!file:).*"), lambda route: route.abort())
            page.goto(url)

            counter, text, prev, nxt = (page.locator(s) for s in ("#counter", "#text", "#prev", "#next"))
            assert counter.text_content() == f"Step 1 of {STEPS}"
            assert "step 1:" in text.text_content()
            assert "L = e ** 2" in text.text_content()
            assert page.locator("#graph svg").is_visible()
            assert "forward pass:" in page.locator("#forward").text_content()
            assert prev.is_disabled() and nxt.is_enabled()

            nxt.click()
            assert counter.text_content() == f"Step 2 of {STEPS}"
            assert "step 2:" in text.text_content() and "step 1:" not in text.text_content()
            assert prev.is_enabled()

            page.keyboard.press("ArrowLeft")
            assert counter.text_content() == f"Step 1 of {STEPS}"
            assert "step 1:" in text.text_content()
            assert prev.is_disabled()
            page.keyboard.press("ArrowLeft")  # already at the start: stays
            assert counter.text_content() == f"Step 1 of {STEPS}"

            for _ in range(STEPS + 2):
                page.keyboard.press("ArrowRight")
            assert counter.text_content() == f"Step {STEPS} of {STEPS}"
            assert "dL/dw += dL/d(w·x) · ∂(w·x)/∂w = -0.50 · 2.00 = -1.00" in text.text_content()
            assert nxt.is_disabled()
            assert page.locator("#graph svg text").filter(has_text="grad -1.0000").count() >= 1

            page.keyboard.press("Home")  # not bound: nothing happens
            page.keyboard.press("ArrowLeft")
            assert counter.text_content() == f"Step {STEPS - 1} of {STEPS}"

            shot = tmp_path / "page.png"
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()

    assert requests == [], f"the page fetched {requests}"
    assert errors == [], errors
    png = shot.read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    image = Image.open(io.BytesIO(png)).convert("L")
    assert image.width >= 1200
    low, high = image.getextrema()
    assert high - low > 100, "the screenshot is blank"
    assert len(image.getcolors(maxcolors=1 << 16) or range(1 << 16)) > 16
