"""One MNIST epoch of 784-128-64-10 ReLU, batch 128, float32, SGD with momentum:
(a) the Tensor engine, (b) the same arithmetic written by hand in NumPy, (c) PyTorch on the
CPU when installed. Same initial weights, same batch order, same thread count, alternating in
one run; prints seconds per epoch, the ratios, and each one's peak memory during an epoch.

Goals: engine / hand-written NumPy <= 1.15, and faster than PyTorch.
Run: `make bench` or `python benchmarks/mnist_epoch.py [--threads 2] [--repeats 5]`.
"""

from __future__ import annotations

import argparse
import os
import sys

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--threads", type=int, default=2, help="BLAS / torch threads (default 2)")
parser.add_argument("--repeats", type=int, default=9, help="epochs per contender (default 9)")
args = parser.parse_args()
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(args.threads)  # before NumPy loads its BLAS

import statistics  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402

import numpy as np  # noqa: E402

from micrograd_mnist import nn, optim  # noqa: E402
from micrograd_mnist.nn import functional as F  # noqa: E402

SIZES, BATCH, LR, MOMENTUM = [784, 128, 64, 10], 128, 0.05, 0.9


def dataset() -> tuple[np.ndarray, np.ndarray, str]:
    """The real training set if it is cached; otherwise random data of the same shape (speed is the same)."""
    try:
        from micrograd_mnist import data

        mnist = data.load("mnist", log=lambda *_: None)
        return mnist.train_images, mnist.train_labels, "MNIST (60,000 images)"
    except Exception as e:  # no data here: time the same shapes
        rng = np.random.default_rng(0)
        note = f"random data of MNIST's shape (60,000 × 784): {str(e)[:60]}"
        return rng.random((60000, 784), dtype=np.float32), rng.integers(0, 10, 60000), note


def initial_weights() -> list[np.ndarray]:
    model = nn.MLP(SIZES, "relu", rng=np.random.default_rng(0))
    return [p.data.copy() for p in model.parameters()]


def engine_epoch(weights, X, y, order) -> float:
    model = nn.MLP(SIZES, "relu")
    for p, w in zip(model.parameters(), weights):
        p.data = w.copy()
    opt = optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    for i in range(0, len(order), BATCH):
        batch = order[i:i + BATCH]
        loss = F.cross_entropy(model(X[batch]), y[batch])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return float(loss.data)


def numpy_epoch(weights, X, y, order) -> float:
    W1, b1, W2, b2, W3, b3 = params = [w.copy() for w in weights]
    bufs = [None] * 6
    for i in range(0, len(order), BATCH):
        batch = order[i:i + BATCH]
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


def torch_epoch_factory():
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(args.threads)

    def torch_epoch(weights, X, y, order) -> float:
        Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
        params = [torch.tensor(w, requires_grad=True) for w in weights]
        opt = torch.optim.SGD(params, lr=LR, momentum=MOMENTUM)
        W1, b1, W2, b2, W3, b3 = params
        order_t = torch.from_numpy(order)
        for i in range(0, len(order), BATCH):
            batch = order_t[i:i + BATCH]
            h = torch.relu(Xt[batch] @ W1 + b1)
            h = torch.relu(h @ W2 + b2)
            loss = torch.nn.functional.cross_entropy(h @ W3 + b3, yt[batch])
            opt.zero_grad()
            loss.backward()
            opt.step()
        return loss.item()
    return torch_epoch


def main() -> None:
    X, y, source = dataset()
    weights = initial_weights()
    contenders = {"engine": engine_epoch, "numpy": numpy_epoch}
    torch_epoch = torch_epoch_factory()
    if torch_epoch:
        contenders["torch"] = torch_epoch
    print(f"data: {source}; threads {args.threads}; batch {BATCH}; float32; {args.repeats} epochs each")
    times: dict[str, list[float]] = {name: [] for name in contenders}
    losses: dict[str, float] = {}
    for r in range(args.repeats):
        order = np.random.default_rng(r).permutation(len(X))
        names = list(contenders) if r % 2 == 0 else list(reversed(contenders))
        for name in names:
            start = time.perf_counter()
            losses[name] = contenders[name](weights, X, y, order)
            times[name].append(time.perf_counter() - start)
    peaks = {}
    order = np.random.default_rng(0).permutation(len(X))
    for name, fn in contenders.items():
        tracemalloc.start()
        fn(weights, X, y, order)
        peaks[name] = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    median = {name: statistics.median(ts) for name, ts in times.items()}
    for name in contenders:
        # tracemalloc sees NumPy's allocations but not PyTorch's own allocator
        peak = "n/a (own allocator)" if name == "torch" else f"{peaks[name]:.1f} MiB"
        print(f"  {name:7s} {median[name]:.3f} s/epoch (min {min(times[name]):.3f})  "
              f"final batch loss {losses[name]:.4f}  peak traced memory {peak}")
    # Each round times every contender back to back, so the median of the per-round ratios cancels
    # the slow drifts of a shared machine better than a ratio of medians would.
    def ratio(other: str) -> float:
        return statistics.median(e / o for e, o in zip(times["engine"], times[other]))

    print(f"engine / hand-written NumPy = {ratio('numpy'):.3f} (median of per-round ratios; goal <= 1.15)")
    if "torch" in median:
        print(f"engine / PyTorch CPU        = {ratio('torch'):.3f} (goal < 1)")
    else:
        print("PyTorch not installed (pip install -e '.[bench]'): no torch comparison", file=sys.stderr)


if __name__ == "__main__":
    main()
