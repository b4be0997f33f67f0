"""One self-contained HTML page for a backprop walk-through: every step's graph inline as SVG,
Prev/Next buttons and the arrow keys; no scripts, styles or fonts fetched from anywhere."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

from micrograd_mnist.files import atomic_write

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>{title}</title>
<style>
  body {{ font-family: system-ui, sans-serif; margin: 1.5rem; color: #222; }}
  header {{ display: flex; gap: 1rem; align-items: center; flex-wrap: wrap; }}
  h1 {{ font-size: 1.3rem; margin: 0; }}
  button {{ font-size: 1rem; padding: .3rem .9rem; }}
  #counter {{ font-weight: 600; min-width: 8rem; }}
  pre {{ background: #f6f8fa; padding: .8rem; border-radius: 6px; white-space: pre-wrap; }}
  #graph svg {{ max-width: 100%; height: auto; }}
</style></head>
<body>
<header><h1>{title}</h1>
  <button id="prev" title="previous step (←)">← Prev</button>
  <span id="counter"></span>
  <button id="next" title="next step (→)">Next →</button></header>
<pre id="forward">{forward}</pre>
<pre id="text"></pre>
<div id="graph"></div>
<script>
const steps = {steps};
let current = 0;
function show(k) {{
  current = Math.max(0, Math.min(steps.length - 1, k));
  document.getElementById("counter").textContent = "Step " + (current + 1) + " of " + steps.length;
  document.getElementById("text").textContent = steps[current].text;
  document.getElementById("graph").innerHTML = steps[current].svg;
  document.getElementById("prev").disabled = current === 0;
  document.getElementById("next").disabled = current === steps.length - 1;
}}
document.getElementById("prev").onclick = () => show(current - 1);
document.getElementById("next").onclick = () => show(current + 1);
document.addEventListener("keydown", e => {{
  if (e.key === "ArrowRight") show(current + 1);
  if (e.key === "ArrowLeft") show(current - 1);
}});
show(0);
</script>
</body></html>
"""


def write(path: str | Path, title: str, forward: str, frames: list[tuple[str, str]]) -> Path:
    """frames: (svg, text) per step, in backprop order."""
    steps = [{"svg": _bare_svg(svg), "text": text} for svg, text in frames]
    data = json.dumps(steps, ensure_ascii=False).replace("</", "<\\/")  # no `</script>` inside the script
    page = _PAGE.format(title=html.escape(title), forward=html.escape(forward), steps=data)
    atomic_write(path, lambda f: f.write(page.encode()))
    return Path(path)


def _bare_svg(svg: str) -> str:
    """Graphviz's SVG without its XML prolog and DOCTYPE, ready to sit inside HTML."""
    match = re.search(r"<svg\b", svg)
    return svg[match.start():] if match else svg
