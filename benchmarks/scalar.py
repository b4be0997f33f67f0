"""Scalar engine speed: our `Value` against micrograd 0.1.0's, in one run.

1. micrograd's demo step (2-16-16-1 ReLU MLP, 100 two-moons points, max-margin
   loss + 1e-4·L2, backward, SGD update), the same code driving both Value
   classes, alternating step by step, each engine in a process of its own.
   Prints ms per step and the speed-up. The loop is the user's, as
   micrograd's README writes it: forward, zero_grad, backward, update; no gc
   calls and no `building()` around it, so whatever the cycle collector costs
   while the graph is built counts (goal: >= 8x). A process each, because
   micrograd's graphs are cycles (each node's `_backward` closure holds the
   node) that only the collector frees: in one shared process, a collection
   that our step's allocations trigger walks micrograd's garbage too, and
   costs our step up to 0.7 s.
2. Backward through a long chain: per-node cost at 1,000,000 nodes against
   10,000 nodes (recursion-free and linear if the ratio stays near 1).
3. Building and backpropagating a chain, per node, at 10,000 and 1,000,000
   nodes, with the cycle collector running and inside `graph.building()`.

Run: `make bench` or `python benchmarks/scalar.py [--steps N]`.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import importlib
import multiprocessing
import statistics
import time

from micrograd_mnist import Value
from micrograd_mnist.graph import building
from micrograd_mnist.moons import make_model, make_moons, step

ENGINES = {"micrograd": "micrograd.engine", "ours": "micrograd_mnist"}


def demo_worker(name: str, steps: int, conn) -> None:
    """One engine's demo, a step each time the parent asks: its heap holds that engine's graphs alone."""
    value = importlib.import_module(ENGINES[name]).Value
    X, y = make_moons(100, seed=1)
    model = make_model(value=value, seed=1)
    conn.send("ready")
    while (k := conn.recv()) is not None:
        t = time.perf_counter()
        loss, _ = step(model, X, y, k, steps, value=value)
        conn.send((time.perf_counter() - t, loss))


def demo_steps(steps: int) -> None:
    try:
        import micrograd.engine  # noqa: F401
    except ImportError:
        raise SystemExit("micrograd is not installed: pip install -e '.[dev]' (micrograd==0.1.0)") from None
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: nothing of this one's heap
    conns, workers = {}, []
    for name in ENGINES:
        conns[name], child = context.Pipe()
        workers.append(context.Process(target=demo_worker, args=(name, steps, child), daemon=True))
        workers[-1].start()
        child.close()  # the worker's end is the worker's alone: if it dies, recv() here raises, not hangs
    for conn in conns.values():
        conn.recv()  # both loaded before the first step is timed
    times = {name: [] for name in ENGINES}
    losses = {name: [] for name in ENGINES}
    for k in range(steps):
        order = list(ENGINES) if k % 2 == 0 else list(reversed(ENGINES))
        for name in order:  # one at a time: the other waits on its pipe, using no core
            conns[name].send(k)
            seconds, loss = conns[name].recv()
            times[name].append(seconds)
            losses[name].append(loss)
    for conn in conns.values():
        conn.send(None)
    for worker in workers:
        worker.join()
    ms = {name: 1000 * statistics.median(ts) for name, ts in times.items()}
    diff = max(abs(a - b) for a, b in zip(losses["micrograd"], losses["ours"]))
    print(f"demo step ({steps} steps, median, each engine in its own process): micrograd {ms['micrograd']:.1f} ms, "
          f"ours {ms['ours']:.1f} ms -> ours is {ms['micrograd'] / ms['ours']:.2f}x faster (goal >= 8)")
    print(f"  losses: first {losses['ours'][0]:.6f}, last {losses['ours'][-1]:.6f}, "
          f"max |ours - micrograd| over all steps {diff:.1e}")


def chain_backward(n: int) -> float:
    """Seconds per node to backprop through v = v * c, n times."""
    c = Value(1.0000001, label="c")
    v = x = Value(1.0, label="x")
    for _ in range(n):
        v = v * c
    gc.collect()
    t = time.perf_counter()
    v.backward()
    seconds = time.perf_counter() - t
    assert abs(x.grad - 1.0000001 ** n) < 1e-6 * x.grad
    return seconds / n


# The two sizes take turns, ROUNDS times, each ratio taken within a round and the median reported (as in
# mnist_epoch.py), so that both sizes of a ratio see the same spell of a noisy machine. In each round the
# small chain runs SMALL_PER_ROUND times (the best counts) and the big one, whose seconds average out the
# machine's moods, once.
ROUNDS, SMALL_PER_ROUND = 5, 5


def in_turns(measure, key=None) -> list[tuple]:
    """ROUNDS pairs (the best of SMALL_PER_ROUND `measure(10_000)`, one `measure(1_000_000)`), round by round."""
    return [(min((measure(10_000) for _ in range(SMALL_PER_ROUND)), key=key), measure(1_000_000))
            for _ in range(ROUNDS)]


def chains() -> None:
    rounds = in_turns(chain_backward)
    small, big = (statistics.median(r[i] for r in rounds) for i in (0, 1))
    ratio = statistics.median(b / s for s, b in rounds)
    print(f"chain backward: 10,000 nodes {small * 1e9:.0f} ns/node, 1,000,000 nodes {big * 1e9:.0f} ns/node "
          f"-> ratio {ratio:.2f} (goal <= 2; medians over {ROUNDS} rounds)")


def chain_build_and_backward(n: int, paused: bool) -> tuple[float, float]:
    """Seconds per node to build v = v * c, n times, and to backprop through it; inside building() if paused."""
    gc.collect()
    with building() if paused else contextlib.nullcontext():
        t = time.perf_counter()
        c = Value(1.0000001, label="c")
        v = Value(1.0, label="x")
        for _ in range(n):
            v = v * c
        built = time.perf_counter()
        v.backward()
        done = time.perf_counter()
        del v  # freed here, inside the block, as in a training step
    return (built - t) / n, (done - built) / n


def building_chains() -> None:
    rounds = {paused: in_turns(functools.partial(chain_build_and_backward, paused=paused), key=sum)
              for paused in (False, True)}
    for i, n in enumerate((10_000, 1_000_000)):
        for paused in (False, True):
            build, backward = (statistics.median(r[i][k] for r in rounds[paused]) for k in (0, 1))
            state = "paused" if paused else "running"
            ns = [round(t * 1e9) for t in (build, backward, build + backward)]
            print(f"chain build + backward, {n:>9,} nodes, collector {state}: "
                  f"build {ns[0]:4d} + backward {ns[1]:4d} = {ns[2]:4d} ns/node")
    for paused in (True, False):
        state = "paused (graph.building)" if paused else "running"
        ratios = sorted(sum(big) / sum(small) for small, big in rounds[paused])
        print(f"  per node, 1,000,000 / 10,000 nodes, collector {state}: {statistics.median(ratios):.2f} "
              f"(goal <= 1.3; median of {ROUNDS} rounds: {', '.join(f'{r:.2f}' for r in ratios)})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20, help="demo steps per engine (default 20)")
    args = parser.parse_args()
    demo_steps(args.steps)
    chains()
    building_chains()
