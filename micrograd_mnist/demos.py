"""The seed texts' demos: one neuron, the collapse of stacked linear layers, the layer tables,
and backprop through layers. Each prints what it shows and, given a folder, draws its graphs
(through `viz`, imported only when a picture is asked for)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from . import nn
from .graph import toposort
from .nn import functional as F
from .nn import scalar
from .tensor import Tensor
from .value import Value

# The seed texts' layer table: one row of weights per neuron, as printed there.
SEED_WEIGHTS = [[0.2, 0.8, -0.5, 1.0], [0.5, -0.91, 0.26, -0.5], [-0.26, -0.27, 0.17, 0.87]]
SEED_BIASES = [2.0, 3.0, 0.5]
SEED_INPUTS = [[1.0, 2.0, 3.0, 2.5], [-0.8, 0.4, 0.1, 1.2], [0.2, 0.9, -0.5, 0.3]]


# --- graphs to step through --------------------------------------------------------------
def single_neuron() -> Value:
    """ŷ = w·x + b, L = (ŷ − y)²: the single neuron of the seed texts."""
    w, x, b, y = Value(0.5, "w"), Value(2.0, "x"), Value(0.25, "b"), Value(1.5, "y")
    wx = w * x
    wx.label = "w·x"
    y_hat = wx + b
    y_hat.label = "ŷ"
    error = y_hat - y
    error.label = "e"
    loss = error ** 2
    loss.label = "L"
    return loss


def two_layer_collapse() -> Value:
    """z = w1·x + b1, ŷ = w2·z + b2 (no activation), L = (ŷ − y)²."""
    x, y = Value(1.5, "x"), Value(1.0, "y")
    w1, b1, w2, b2 = Value(0.8, "w1"), Value(-0.2, "b1"), Value(-1.2, "w2"), Value(0.3, "b2")
    z = w1 * x + b1
    z.label = "z"
    y_hat = w2 * z + b2
    y_hat.label = "ŷ"
    loss = (y_hat - y) ** 2
    loss.label = "L"
    return loss


# Weights for `layer_backprop`, (in, out) like nn.Linear: three of its four ReLUs fire, and the one that
# doesn't (the first, at -1.05) shows a learner what a dead ReLU does to the gradient.
LAYER_BACKPROP_WEIGHTS = {
    "0.weight": [[0.7, 0.7], [0.6, -0.5]], "0.bias": [-0.8, 0.9],
    "2.weight": [[0.2, -1.0], [0.8, 1.0]], "2.bias": [-0.4, 0.6],
    "4.weight": [[-0.8], [-0.1]], "4.bias": [0.6],
}


def layer_backprop() -> Value:
    """Input → Linear → ReLU → Linear → ReLU → Linear → loss, 2-2-2-1, one Value per number."""
    model = scalar.MLP([2, 2, 2, 1], "relu")
    model.load_state_dict({name: np.array(w) for name, w in LAYER_BACKPROP_WEIGHTS.items()})
    h = [Value(0.5, "x0"), Value(-1.0, "x1")]
    for k, layer in enumerate(model.layers):  # name each layer's outputs as the seed texts do: z = xW + b, h = ReLU(z)
        h = layer(h)
        for j, v in enumerate(h):
            v.label = f"{'z' if k % 2 == 0 else 'h'}{k // 2 + 1}[{j}]"
    (y_hat,) = h
    y_hat.label = "ŷ"
    loss = (y_hat - 1.0) ** 2
    loss.label = "L"
    return loss


GRAPHS: dict[str, Callable[[], Value]] = {
    "single-neuron": single_neuron, "two-layer-collapse": two_layer_collapse, "layer-backprop": layer_backprop,
}


# --- demos ---------------------------------------------------------------------------------------
class Demo:
    def __init__(self, out: Path | None, format: str, log: Callable[[str], None]) -> None:
        self.out, self.format, self.log, self.written = out, format, log, []

    def picture(self, name: str, make) -> None:
        """Render `make(viz)` (a graphviz graph) to OUT/name.FORMAT, when an output folder was given."""
        if self.out is None:
            return
        import viz  # only now: printing a demo needs no graphviz

        path = viz.render(make(viz), self.out / f"{name}.{self.format}")
        self.written.append(path)
        self.log(f"  wrote {path}")


def demo_single_neuron(d: Demo, digit: np.ndarray | None = None) -> None:
    loss = single_neuron()
    nodes = {n.label: n for n in toposort(loss)}
    loss.backward()
    w, x, b, y_hat = nodes["w"], nodes["x"], nodes["b"], nodes["ŷ"]
    dl_dyhat = y_hat.grad
    d.log(f"ŷ = w·x + b = {w.data}·{x.data} + {b.data} = {y_hat.data:.4f};  L = (ŷ − y)² = {loss.data:.4f}")
    d.log(f"dL/dŷ = 2(ŷ − y) = {2 * (y_hat.data - nodes['y'].data):.4f}   (autograd: {dl_dyhat:.4f})")
    d.log(f"dL/dw = dL/dŷ · x = {dl_dyhat * x.data:.4f}   autograd: {w.grad:.4f}")
    d.log(f"dL/db = dL/dŷ · 1 = {dl_dyhat:.4f}   autograd: {b.grad:.4f}")
    d.picture("single-neuron", lambda viz: viz.draw(loss, title="ŷ = w·x + b,  L = (ŷ − y)²"))

    # The same neuron with 784 inputs, one per pixel of a digit: its graph folds into a Σ node.
    pixels = digit if digit is not None else _synthetic_digit()
    rng = np.random.default_rng(0)
    ws = [Value(float(v), f"w{i}") for i, v in enumerate(rng.normal(0, 0.05, 784))]
    xs = [Value(float(p), f"x{i}") for i, p in enumerate(pixels)]
    y_hat = sum((wi * xi for wi, xi in zip(ws, xs)), Value(0.1, "b"))
    y_hat.label = "ŷ"
    loss = (y_hat - 1.0) ** 2
    loss.label = "L"
    loss.backward()
    hand = [2 * (y_hat.data - 1.0) * xi.data for xi in xs]
    worst = max(abs(h - wi.grad) for h, wi in zip(hand, ws))
    d.log(f"784 inputs: ŷ = Σ wᵢ·xᵢ + b = {y_hat.data:.4f}; dL/dwᵢ = dL/dŷ · xᵢ for all 784 weights, "
          f"largest difference from autograd {worst:.1e}")
    d.picture("single-neuron-784", lambda viz: viz.draw(loss, max_nodes=60, title="one neuron, 784 inputs"))


def demo_two_layer_collapse(d: Demo) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 4))
    W1, b1, W2, b2 = rng.normal(size=(4, 3)), rng.normal(size=3), rng.normal(size=(3, 2)), rng.normal(size=2)
    def leaf(a, label):  # requires_grad, so the ops are recorded and can be drawn
        return Tensor(a, requires_grad=True, label=label)

    two = (leaf(x, "x") @ leaf(W1, "W1") + leaf(b1, "b1")) @ leaf(W2, "W2") + leaf(b2, "b2")
    W, b = W1 @ W2, b1 @ W2 + b2
    one = leaf(x, "x") @ leaf(W, "W = W1·W2") + leaf(b, "b = b1·W2 + b2")
    d.log("two linear layers  y = (x·W1 + b1)·W2 + b2   vs   one layer  y = x·W + b,  W = W1·W2, b = b1·W2 + b2")
    d.log(f"  max |difference| = {np.abs(two.data - one.data).max():.1e}   (they are the same function)")
    relu = (Tensor(x) @ Tensor(W1) + Tensor(b1)).relu() @ Tensor(W2) + Tensor(b2)
    d.log(f"  with ReLU between the layers: max |difference| = {np.abs(relu.data - one.data).max():.3f}   "
          "(the collapse fails: depth now adds something)")
    d.picture("two-layer", lambda viz: viz.draw(two, show_grad=False, title="two stacked linear layers"))
    d.picture("collapsed", lambda viz: viz.draw(one, show_grad=False, title="the single layer they collapse to"))


def demo_seed_tables(d: Demo) -> None:
    layer = nn.Linear(4, 3, dtype=np.float64)
    layer.load_state_dict({"weight": np.array(SEED_WEIGHTS).T, "bias": np.array(SEED_BIASES)})
    tensor_out = layer(np.array(SEED_INPUTS)).data
    mirror = scalar.Linear(4, 3)
    for i, row in enumerate(SEED_WEIGHTS):
        for j, w in enumerate(row):
            mirror.weight[j][i].data = w
    for j, b in enumerate(SEED_BIASES):
        mirror.bias[j].data = b
    scalar_out = [[v.data for v in mirror([Value(x) for x in row])] for row in SEED_INPUTS]
    d.log("layer table (weights one row per neuron):")
    d.log("        " + "".join(f"{'w·' + str(i + 1):>8}" for i in range(4)) + f"{'bias':>8}{'out(s1)':>9}")
    for n, (row, b) in enumerate(zip(SEED_WEIGHTS, SEED_BIASES)):
        d.log(f"  N{n + 1}    " + "".join(f"{w:8.2f}" for w in row) + f"{b:8.2f}{tensor_out[0][n]:9.3f}")
    d.log("batch table (one row per sample):          Tensor engine            Value engine")
    for s, row in enumerate(SEED_INPUTS):
        d.log(f"  s{s + 1} " + "".join(f"{x:6.2f}" for x in row) + "   "
              + "".join(f"{y:7.3f}" for y in tensor_out[s]) + "   " + "".join(f"{y:7.3f}" for y in scalar_out[s]))
    d.log(f"  engines agree to {np.abs(tensor_out - np.array(scalar_out)).max():.1e}")


def demo_layer_backprop(d: Demo) -> None:
    rng = np.random.default_rng(0)
    model = nn.MLP([4, 5, 3, 2], "relu", rng=rng, dtype=np.float64)
    X = rng.normal(size=(6, 4))
    target = rng.normal(size=(6, 2))
    acts = [Tensor(X, label="X1")]
    for layer in model:
        acts.append(layer(acts[-1]))
    loss = F.mse(acts[-1], target)
    loss.backward()
    # The seed texts' table, by hand, from the loss back to the input.
    linears = [m for m in model if isinstance(m, nn.Linear)]
    dY = 2 * (acts[-1].data - target) / target.size
    d.log("Input → Linear₁ → ReLU → Linear₂ → ReLU → Linear₃ → Loss; gradients arrive in this order:")
    d.log(f"  1. Loss      dL/dY₃ = 2(Y₃ − T)/n                     shape {dY.shape}")
    step = 2
    for k in (3, 2, 1):
        lin = linears[k - 1]
        X_in = acts[2 * (k - 1)].data
        dW, db, dX = X_in.T @ dY, dY.sum(axis=0), dY @ lin.weight.data.T
        err = max(np.abs(dW - lin.weight.grad).max(), np.abs(db - lin.bias.grad).max())
        d.log(f"  {step}. Linear{_sub(k)}   dL/dW = Xᵀ·dL/dY, dL/db = Σ dL/dY, dL/dX = dL/dY·Wᵀ    "
              f"|table − autograd| = {err:.1e}")
        step += 1
        if k > 1:
            pre = acts[2 * (k - 1) - 1].data  # the ReLU's input
            dY = dX * (pre > 0)
            d.log(f"  {step}. ReLU      dL/dX = dL/dY · [input > 0]: {int((pre <= 0).sum())} of {pre.size} "
                  "gradients blocked")
            step += 1
    d.picture("layer-backprop", lambda viz: viz.draw_model(model, X, expand=True, loss=lambda y: F.mse(y, target)))


DEMOS = {
    "single-neuron": demo_single_neuron, "two-layer-collapse": demo_two_layer_collapse,
    "seed-tables": demo_seed_tables, "layer-backprop": demo_layer_backprop,
}


def run(name: str, out: Path | None = None, format: str = "svg", log: Callable[[str], None] = print,
        **kwargs) -> list[Path]:
    d = Demo(out, format, log)
    DEMOS[name](d, **kwargs)
    return d.written


def _sub(k: int) -> str:
    return "₀₁₂₃₄₅₆₇₈₉"[k]


def _synthetic_digit() -> np.ndarray:
    """A ring, drawn like a 0, for when no MNIST is at hand."""
    yy, xx = np.mgrid[:28, :28]
    r = np.hypot(yy - 13.5, (xx - 13.5) * 1.3)
    return np.clip(1 - np.abs(r - 8) / 2, 0, 1).ravel()
