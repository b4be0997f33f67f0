"""The explorer's page (`micrograd-mnist explore`): one HTML file with its style and script inline, served
as it is. It fetches only the server's own JSON and draws it — the 28×28 input, the layers as columns of
neurons, the edges, the output bars, the gradient pictures — and computes nothing of the network."""

from __future__ import annotations

from pathlib import Path

PATH = Path(__file__).with_name("explore_page.html")


def page() -> bytes:
    """The page's bytes (UTF-8)."""
    return PATH.read_bytes()
