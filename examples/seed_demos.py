"""Run the seed texts' four demos and draw their pictures (graphs, and one chart) into ./demo-pictures.

    python examples/seed_demos.py        (one at a time: micrograd-mnist demo NAME --out DIR)
"""

from pathlib import Path

from micrograd_mnist import demos

for name in demos.DEMOS:
    print(f"\n=== {name}")
    demos.run(name, Path("demo-pictures"), "svg")
