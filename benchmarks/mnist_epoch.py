"""One MNIST epoch of 784-128-64-10 ReLU, float32, SGD with momentum, five ways, alternating in one run:

  engine  the Tensor engine, as a training loop writes it (batches gathered by `data.Batches`)
  fused   the NumPy calls the engine's step makes, written out by hand with no engine around them: the least
          an engine that runs one NumPy call per operation could take (the same numbers: the report checks)
  numpy   the same arithmetic written by hand in NumPy (the straightforward way: fresh arrays each step)
  torch   PyTorch on the CPU, when installed (`pip install -e '.[bench]'`)
  floor   the GEMM-only floor: the eight matrix products the engine's step does (three forward; two for the
          hidden activations' gradients, none for the image batch's; three for the weights' gradients), on the
          same shapes and threads, into preallocated arrays, nothing else

Same initial weights, batch order and thread count for each; every round times each contender once, in
alternating order, each after a pause that lets the threads of the one before it go to sleep (PAUSE_S), and
a ratio is the median of the per-round ratios (which cancels a shared machine's slow drifts better than a
ratio of medians). Each (threads, batch) cell runs in its own process, because BLAS
reads its thread count when NumPy loads.

First a profile of the engine's step (batch 128): where an epoch goes, by measurement: the batch gather, the
optimizer (zero_grad + step) and forward + backward timed as phases; of forward + backward, the GEMMs are
the floor, Python overhead is the same graph run on 1-wide layers (where arithmetic costs nothing), and the
rest is elementwise work and temporaries.

Each round also times a cross-core write (cross_core_write): the benchmark prints it beside each round's
engine/floor at batch 128 and 2 threads, because on a shared 2-core machine how dear it is to hand data between
cores changes from minute to minute, and the engine's weight updates pay for it where the floor does not.

The BLAS kernel: some machines set OPENBLAS_CORETYPE (and OPENBLAS_L2_SIZE) to force an older kernel on a
processor that old OpenBLAS builds mishandle. That slows every matrix product: on this project's 2-core AMD
EPYC (Zen 5), forced "Haswell" (AVX2) takes 1.25-1.6x as long per product as the "SkylakeX" (AVX-512) kernel
NumPy's OpenBLAS 0.3.31 picks by itself, and the floor, which is nothing but products, slows the most, so the
forced kernel flatters engine/floor (by 0.5-0.8 in two 9-round runs at batch 128, 2 threads; by less than the
noise in three 5-round ones). So each cell runs with those two variables removed, the kernel a user's machine
would run, and first checks that kernel's products against float64 on the benchmark's shapes;
`--blas-env-as-is` keeps them. The report names the kernel.

Goals: engine / floor <= 1.6 (batch 128, 2 threads); engine faster than hand-written NumPy and PyTorch.
Run: `make bench`, or `python benchmarks/mnist_epoch.py [--threads 1,2] [--batches 32,128,512] [--repeats 5]`.
The grid's other cells run `--grid-repeats` (3) epochs each, to keep `make bench` to a few minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--threads", default="1,2", help="BLAS / torch thread counts, comma-separated (default 1,2)")
parser.add_argument("--batches", default="32,128,512", help="batch sizes, comma-separated (default 32,128,512)")
parser.add_argument("--repeats", type=int, default=5, help="epochs per contender at batch 128 (default 5)")
parser.add_argument("--grid-repeats", type=int, default=3, help="epochs per contender at other batches (default 3)")
parser.add_argument("--no-profile", action="store_true", help="skip the profile")
parser.add_argument("--blas-env-as-is", action="store_true",
                    help="keep OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE (default: removed, see above)")
parser.add_argument("--cell", help=argparse.SUPPRESS)  # "threads,batch,repeats,profile": one cell, JSON out
args = parser.parse_args()

if args.cell:
    THREADS = int(args.cell.split(",")[0])
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(THREADS)  # before NumPy loads its BLAS

import statistics  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402

import numpy as np  # noqa: E402

from micrograd_mnist import blas, data, nn, optim  # noqa: E402
from micrograd_mnist.nn import functional as F  # noqa: E402

SIZES, LR, MOMENTUM = [784, 128, 64, 10], 0.05, 0.9
PEAK_STEPS = 30  # peak memory is reached within the first steps: measured over these, not a whole epoch
# After its last call, a BLAS or OpenMP worker thread spins on its core for a while before it sleeps (OpenBLAS
# for up to 2^28 cycles, libgomp for GOMP_SPINCOUNT turns), so whoever runs next shares a core with it: the
# floor timed straight after a PyTorch epoch took 0.143 s, and 0.130 s after a 50 ms pause (PyTorch likewise
# after the others). Each contender waits this long before its epoch, so none pays for the one before it.
PAUSE_S = 0.3
FORCING = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")  # what a machine may set to force a BLAS kernel


def dataset() -> tuple[np.ndarray, np.ndarray, str]:
    """The real training set if it is cached; otherwise random data of the same shape (speed is the same)."""
    try:
        mnist = data.load("mnist", log=lambda *_: None)
        return mnist.train_images, mnist.train_labels, "MNIST (60,000 images)"
    except Exception as e:  # no data here: time the same shapes
        rng = np.random.default_rng(0)
        note = f"random data of MNIST's shape (60,000 × 784): {str(e)[:60]}"
        return rng.random((60000, 784), dtype=np.float32), rng.integers(0, 10, 60000), note


def initial_weights(sizes=SIZES) -> list[np.ndarray]:
    model = nn.MLP(sizes, "relu", rng=np.random.default_rng(0))
    return [p.data.copy() for p in model.parameters()]


def engine_setup(weights, X, y, B):
    model = nn.MLP([w.shape[0] for w in weights[::2]] + [weights[-1].shape[0]], "relu")
    for p, w in zip(model.parameters(), weights):
        p.data = w.copy()
    return model, optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM), data.Batches(X, y, B)


def engine_epoch(weights, X, y, order, B, steps=None) -> float:
    model, opt, batches = engine_setup(weights, X, y, B)
    for x, t in batches.epoch(order[:steps * B] if steps else order):
        loss = F.cross_entropy(model(x), t)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return float(loss.data)


def numpy_epoch(weights, X, y, order, B, steps=None) -> float:
    W1, b1, W2, b2, W3, b3 = params = [w.copy() for w in weights]
    bufs = [None] * 6
    for i in range(0, steps * B if steps else len(order), B):
        batch = order[i:i + B]
        x, t = X[batch], y[batch]
        h1 = x @ W1 + b1
        a1 = np.maximum(h1, 0)
        h2 = a1 @ W2 + b2
        a2 = np.maximum(h2, 0)
        z = a2 @ W3 + b3
        z = z - z.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        loss = -logp[np.arange(len(t)), t].mean()
        dz = np.exp(logp)
        dz[np.arange(len(t)), t] -= 1
        dz /= len(t)
        da2 = dz @ W3.T
        dh2 = da2 * (h2 > 0)
        da1 = dh2 @ W2.T
        dh1 = da1 * (h1 > 0)
        grads = [x.T @ dh1, dh1.sum(0), a1.T @ dh2, dh2.sum(0), a2.T @ dz, dz.sum(0)]
        for k, (p, g) in enumerate(zip(params, grads)):
            if bufs[k] is None:
                bufs[k] = g.copy()
            else:
                bufs[k] *= MOMENTUM
                bufs[k] += g
            p -= LR * bufs[k]
    return float(loss)


def fused_epoch(weights, X, y, order, B, steps=None) -> float:
    """The NumPy calls the engine's step makes (its fused rules in tensor.py, its flat SGD in optim.py, whose
    long in-place updates go through blas.py), in the same order, written out with no graph, no Tensors and
    no checks: what an engine that runs one NumPy call per operation could at best reach, in this run. Same
    numbers as the engine (the report checks)."""
    W1, b1, W2, b2, W3, b3 = params = [w.copy() for w in weights]
    ends = np.cumsum([p.size for p in params]).tolist()
    bounds = list(zip([0] + ends[:-1], ends))
    flat, step = np.empty(ends[-1], np.float32), np.empty(ends[-1], np.float32)
    grads, deltas = ([a[i:j].reshape(p.shape) for (i, j), p in zip(bounds, params)] for a in (flat, step))
    gW1, gb1, gW2, gb2, gW3, gb3 = grads
    buf, zeros, rows = None, np.zeros(B * SIZES[1], np.float32), np.arange(B)
    batches = data.Batches(X, y, B)
    for x, t in batches.epoch(order[:steps * B] if steps else order):
        n = len(t)
        h1 = np.matmul(x, W1)
        np.add(h1, b1, out=h1)
        a1 = np.maximum(h1, zeros[:h1.size].reshape(h1.shape))
        h2 = np.matmul(a1, W2)
        np.add(h2, b2, out=h2)
        a2 = np.maximum(h2, zeros[:h2.size].reshape(h2.shape))
        z = np.matmul(a2, W3)
        np.add(z, b3, out=z)
        shifted = z - np.ascontiguousarray(z.T).max(axis=0)[:, None]
        e = np.exp(shifted)
        total = e.sum(axis=-1, keepdims=True)
        loss = -(shifted[rows[:n], t] - np.log(total[:n, 0])).sum() / n
        dz = np.divide(e, total, out=e)
        dz[rows[:n], t] -= 1
        dz *= np.float32(1) / n
        da2 = dz @ W3.T
        np.matmul(a2.T, dz, out=gW3)
        np.add.reduce(dz, axis=0, out=gb3)
        dh2 = da2 * (h2 > 0)
        da1 = dh2 @ W2.T
        np.matmul(a1.T, dh2, out=gW2)
        np.add.reduce(dh2, axis=0, out=gb2)
        dh1 = da1 * (h1 > 0)
        np.matmul(x.T, dh1, out=gW1)
        np.add.reduce(dh1, axis=0, out=gb1)
        if buf is None:
            buf = flat.copy()
        else:
            np.multiply(buf, MOMENTUM, out=buf)
            blas.add_(buf, flat)
        np.multiply(buf, LR, out=step)
        for p, d in zip(params, deltas):
            blas.subtract_(p, d)
    return float(loss)


class GemmFloor:
    """The engine step's eight matrix products on preallocated operands and outputs, nothing else."""

    def __init__(self, weights, X, B: int, parts: str = "all") -> None:
        rng = np.random.default_rng(1)
        W1, _, W2, _, W3, _ = weights
        x = X[:B].copy()
        h1, h2, z = (rng.standard_normal((B, n)).astype(np.float32) for n in SIZES[1:])
        fwd = [(x, W1, h1.copy()), (h1, W2, h2.copy()), (h2, W3, z.copy())]
        bwd = [(z, W3.T, h2.copy()), (h2, W2.T, h1.copy()),  # dL/d(hidden activations)
               (h2.T, z, W3.copy()), (h1.T, h2, W2.copy()), (x.T, h1, W1.copy())]  # dL/dW
        self.products = {"all": fwd + bwd, "forward": fwd, "backward": bwd}[parts]

    def step(self) -> None:
        for a, b, out in self.products:
            np.matmul(a, b, out=out)


def cross_core_write(reps: int = 60) -> tuple[float, float]:
    """Microseconds to write a first-layer-sized array (784 × 128 float32, as the optimizer's update does) that
    BLAS has just read in a product, and to write it again, once only this core holds it: how dear this
    machine makes handing data between its cores right now (at one thread the two are the same)."""
    rng = np.random.default_rng(2)
    W, x = rng.random((784, 128), dtype=np.float32), rng.random((128, 784), dtype=np.float32)
    step, out = np.full_like(W, 1e-7), np.empty((128, 128), np.float32)
    shared, local = [], []
    clock = time.perf_counter
    for _ in range(reps):
        np.matmul(x, W, out=out)
        t0 = clock()
        np.subtract(W, step, out=W)
        t1 = clock()
        np.subtract(W, step, out=W)
        shared.append(t1 - t0)
        local.append(clock() - t1)
    return 1e6 * statistics.median(shared), 1e6 * statistics.median(local)


def floor_epoch(weights, X, y, order, B, steps=None) -> float:
    floor = GemmFloor(weights, X, B)
    for _ in range(steps or -(-len(order) // B)):
        floor.step()
    return float("nan")


def torch_epoch_factory(threads: int):
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)

    def torch_epoch(weights, X, y, order, B, steps=None) -> float:
        Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
        params = [torch.tensor(w, requires_grad=True) for w in weights]
        opt = torch.optim.SGD(params, lr=LR, momentum=MOMENTUM)
        W1, b1, W2, b2, W3, b3 = params
        order_t = torch.from_numpy(order)
        for i in range(0, steps * B if steps else len(order), B):
            batch = order_t[i:i + B]
            h = torch.relu(Xt[batch] @ W1 + b1)
            h = torch.relu(h @ W2 + b2)
            loss = torch.nn.functional.cross_entropy(h @ W3 + b3, yt[batch])
            opt.zero_grad()
            loss.backward()
            opt.step()
        return loss.item()
    return torch_epoch


# --- the profile -------------------------------------------------------------------------------------------------

def phase_times(weights, X, y, order, B) -> dict[str, float]:
    """Seconds per epoch in each phase of the engine's loop: gather, forward, backward, optimizer."""
    model, opt, batches = engine_setup(weights, X, y, B)
    total = dict.fromkeys(("gather", "forward", "backward", "optimizer"), 0.0)
    clock = time.perf_counter
    for i in range(0, len(order), B):
        t0 = clock()
        x, t = batches(order[i:i + B])
        t1 = clock()
        loss = F.cross_entropy(model(x), t)
        t2 = clock()
        opt.zero_grad()
        loss.backward()
        t3 = clock()
        opt.step()
        t4 = clock()
        total["gather"] += t1 - t0
        total["forward"] += t2 - t1
        total["backward"] += t3 - t2
        total["optimizer"] += t4 - t3
    return total


def overhead_time(X, y, order, B) -> float:
    """Seconds per epoch of forward + backward through the same graph on 1-wide layers: the engine's Python
    (and NumPy's per-call dispatch), with arithmetic that costs next to nothing."""
    tiny = initial_weights([1, 1, 1, 10])
    model, opt, _ = engine_setup(tiny, X, y, B)
    x = np.ones((B, 1), np.float32)
    total = 0.0
    for i in range(0, len(order), B):
        t = y[order[i:i + B]]
        t0 = time.perf_counter()
        loss = F.cross_entropy(model(x[:len(t)]), t)
        opt.zero_grad()
        loss.backward()
        total += time.perf_counter() - t0
    return total


def profile(weights, X, y, B: int, rounds: int = 3) -> dict[str, float]:
    order = np.random.default_rng(0).permutation(len(X))
    steps = -(-len(order) // B)
    phases, overheads, gemms = [], [], []
    for _ in range(rounds):  # interleaved, as the contenders are; the medians are kept
        phases.append(phase_times(weights, X, y, order, B))
        overheads.append(overhead_time(X, y, order, B))
        floor = GemmFloor(weights, X, B)
        t0 = time.perf_counter()
        for _ in range(steps):
            floor.step()
        gemms.append(time.perf_counter() - t0)
    phase = {k: statistics.median(p[k] for p in phases) for k in phases[0]}
    gemm, python = statistics.median(gemms), statistics.median(overheads)
    fwd_bwd = phase.pop("forward") + phase.pop("backward")
    return {"GEMM (the floor's eight products)": gemm,
            # what is left of forward + backward; not clamped at 0, so that the parts still sum to the epoch
            "elementwise + temporaries (forward + backward)": fwd_bwd - gemm - python,
            "Python overhead (graph, backward loop, dispatch)": python,
            "optimizer (zero_grad + step)": phase["optimizer"],
            "batch gather": phase["gather"]}


# --- one cell of the grid ---------------------------------------------------------------------------------------

def peak_memory(fn, weights, X, y, order, B) -> float:
    tracemalloc.start()
    fn(weights, X, y, order, B, steps=PEAK_STEPS)
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return peak


def kernel_error(weights, X, B: int) -> float:
    """The largest error of the floor's products, relative to the largest number in each product's float64
    answer: about 1e-7 where the kernel is sound (float32 rounding), far more where it is not."""
    worst = 0.0
    for a, b, _ in GemmFloor(weights, X, B).products:
        exact = a.astype(np.float64) @ b.astype(np.float64)
        worst = max(worst, float(np.abs(a @ b - exact).max() / max(np.abs(exact).max(), 1e-30)))
    return worst


def cell(threads: int, B: int, repeats: int, with_profile: bool) -> dict:
    X, y, source = dataset()
    weights = initial_weights()
    error = kernel_error(weights, X, B)
    if not error < 1e-4:
        sys.exit(f"OpenBLAS's {blas.corename()} kernel computes wrong products here (relative error {error:.1e}): "
                 f"run with --blas-env-as-is, setting OPENBLAS_CORETYPE to a kernel that works")
    contenders = {"engine": engine_epoch, "fused": fused_epoch, "numpy": numpy_epoch, "floor": floor_epoch}
    torch_epoch = torch_epoch_factory(threads)
    if torch_epoch:
        contenders["torch"] = torch_epoch
    order = np.random.default_rng(0).permutation(len(X))
    for fn in contenders.values():  # warm up allocators, thread pools and caches (PyTorch's first epoch is 4x slower)
        fn(weights, X, y, order, B, steps=20)
    times: dict[str, list[float]] = {name: [] for name in contenders}
    losses: dict[str, float] = {}
    gauges = []
    for r in range(repeats):
        order = np.random.default_rng(r).permutation(len(X))
        gauges.append(cross_core_write())
        names = list(contenders) if r % 2 == 0 else list(reversed(contenders))
        for name in names:
            time.sleep(PAUSE_S)
            start = time.perf_counter()
            losses[name] = contenders[name](weights, X, y, order, B)
            times[name].append(time.perf_counter() - start)
    # the two the report prints
    peaks = {name: peak_memory(contenders[name], weights, X, y, order, B) for name in ("engine", "numpy")}
    out = {"threads": threads, "batch": B, "repeats": repeats, "source": source, "times": times,
           "losses": losses, "peaks": peaks, "gauges": gauges, "kernel": blas.corename(), "kernel_error": error,
           "forcing": {var: os.environ[var] for var in FORCING if var in os.environ}}
    if with_profile:
        out["profile"] = profile(weights, X, y, B)
    return out


def ratio(result: dict, a: str, b: str) -> float:
    return statistics.median(x / y for x, y in zip(result["times"][a], result["times"][b]))


def report(results: list[dict], removed: dict[str, str]) -> None:
    """The tables and verdicts; removed: the forcing variables taken out of the cells' environment."""
    first = results[0]
    print(f"data: {first['source']}; float32; 784-128-64-10 ReLU; SGD momentum {MOMENTUM}")
    kernels = sorted({str(r["kernel"]) for r in results})
    def settings(env: dict[str, str]) -> str:
        return ", ".join(f"{k}={v}" for k, v in env.items())
    how = f"forced by {settings(first['forcing'])}" if first["forcing"] else "OpenBLAS's own choice for this processor"
    if removed:
        how += f" ({settings(removed)} removed from the cells' environment; --blas-env-as-is keeps it)"
    print(f"BLAS kernel: OpenBLAS {' / '.join(kernels)}, {how}; its products agree with float64 to "
          f"{max(r['kernel_error'] for r in results):.1e} (relative)")
    for r in results:
        if "profile" not in r:
            continue
        total = sum(r["profile"].values())
        print(f"\nprofile of the engine's epoch, batch {r['batch']}, {r['threads']} thread(s): "
              f"{total:.3f} s in all (median of 3)")
        for name, seconds in r["profile"].items():
            print(f"  {name:50s} {seconds:6.3f} s  {100 * seconds / total:5.1f} %")
        if min(r["profile"].values()) < 0:
            print("  (a part below zero: the estimates overlap, since the Python overhead, timed on 1-wide layers, "
                  "includes each product's call, which GEMM counts too)")
    print("\n| threads | batch | engine s/epoch | the engine's calls | NumPy by hand | PyTorch | GEMM floor "
          "| engine/floor | engine's calls/floor | engine/NumPy | engine/PyTorch | peak MiB engine / NumPy |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        med = {name: statistics.median(ts) for name, ts in r["times"].items()}
        has_torch = "torch" in med
        torch_s = f"{med['torch']:.3f}" if has_torch else "n/a"
        torch_r = f"{ratio(r, 'engine', 'torch'):.2f}" if has_torch else "n/a"
        print(f"| {r['threads']} | {r['batch']} | {med['engine']:.3f} | {med['fused']:.3f} | {med['numpy']:.3f} "
              f"| {torch_s} | {med['floor']:.3f} | **{ratio(r, 'engine', 'floor'):.2f}** "
              f"| {ratio(r, 'fused', 'floor'):.2f} | {ratio(r, 'engine', 'numpy'):.2f} | {torch_r} "
              f"| {r['peaks']['engine']:.1f} / {r['peaks']['numpy']:.1f} |")
    print("\nmedians of per-round ratios; epochs per contender: " +
          ", ".join(sorted({f"batch {r['batch']}: {r['repeats']}" for r in results})) +
          f"; peak traced memory (tracemalloc, NumPy's allocations) over the first {PEAK_STEPS} steps; "
          "PyTorch's own allocator is not traced")
    print("goals: engine/floor <= 1.6 at batch 128 and 2 threads; engine/NumPy < 1; engine/PyTorch <= 0.7")
    for r in results:
        if r["batch"] == 128 and r["threads"] == 2:
            value = ratio(r, "engine", "floor")
            print(f"  engine/floor at batch 128, 2 threads: {value:.2f}, {'met' if value <= 1.6 else 'NOT met'} "
                  f"(NumPy by hand/floor there: {ratio(r, 'numpy', 'floor'):.2f}; the engine's own NumPy calls "
                  f"with no engine around them: {ratio(r, 'fused', 'floor'):.2f}, the least an engine making "
                  f"one NumPy call per operation could take in this run; engine/those calls: "
                  f"{ratio(r, 'engine', 'fused'):.2f})")
            rounds = zip(r["gauges"], r["times"]["engine"], r["times"]["floor"])
            print("    round by round, the cross-core write (µs to update a 784×128 array that BLAS's threads "
                  "have just read; again, once only this core holds it) and engine/floor: " +
                  "; ".join(f"{shared:.0f} ({local:.0f}) {e / f:.2f}" for (shared, local), e, f in rounds) +
                  "  [a write many times its second one: the cores hand data over slowly right now, which the "
                  "engine's updates pay and the floor's fixed operands do not: see README, Speed]")
    same = all(r["losses"]["engine"] == r["losses"]["fused"] for r in results)
    agreement = "exactly, in every cell" if same else "NOT exactly: the two have drifted apart (fix fused_epoch)"
    print(f"  the engine's calls written out end on the engine's last loss {agreement}")
    numpy_r = [ratio(r, "engine", "numpy") for r in results]
    print(f"  engine/NumPy: {min(numpy_r):.2f} to {max(numpy_r):.2f}, "
          f"below 1 in {sum(v < 1 for v in numpy_r)} of {len(numpy_r)} cells")
    torch_r = [ratio(r, "engine", "torch") for r in results if "torch" in r["times"]]
    if torch_r:
        print(f"  engine/PyTorch: {min(torch_r):.2f} to {max(torch_r):.2f}, "
              f"at most 0.7 in {sum(v <= 0.7 for v in torch_r)} of {len(torch_r)} cells")
    if all("torch" not in r["times"] for r in results):
        print("PyTorch not installed (pip install -e '.[bench]'): no torch comparison", file=sys.stderr)


def main() -> None:
    if args.cell:
        threads, B, repeats, with_profile = (int(v) for v in args.cell.split(","))
        print(json.dumps(cell(threads, B, repeats, bool(with_profile))))
        return
    results = []
    env = dict(os.environ)
    removed = {} if args.blas_env_as_is else {var: env.pop(var) for var in FORCING if var in env}
    for threads in (int(t) for t in args.threads.split(",")):
        for B in (int(b) for b in args.batches.split(",")):
            repeats = args.repeats if B == 128 else args.grid_repeats
            spec = f"{threads},{B},{repeats},{int(B == 128 and not args.no_profile)}"
            print(f"running threads {threads}, batch {B} ({repeats} epochs each) ...", file=sys.stderr, flush=True)
            run = subprocess.run([sys.executable, __file__, "--cell", spec], capture_output=True, text=True, env=env)
            if run.returncode:
                sys.exit(f"cell {spec} failed:\n{run.stderr}")
            results.append(json.loads(run.stdout.splitlines()[-1]))
    report(results, removed)


if __name__ == "__main__":
    main()
