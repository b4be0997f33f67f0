"""The seed texts' demos: one neuron, the collapse of stacked linear layers, the layer tables,
and backprop through layers. Each prints what it shows and, given a folder, draws its graphs
(through `viz`, imported only when a picture is asked for)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import nn
from .graph import building, toposort
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


@dataclass
class TensorDemo:
    """A Tensor graph to step through, and the same network and loss built from Values for the mirror."""

    loss: Tensor
    tensors: dict[str, Tensor]  # by the names the steps print: the ones a learner may --mirror
    scalar_loss: Callable[[], Value]


SEED_TARGETS = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]  # each sample's class, one-hot


def seed_layer() -> TensorDemo:
    """The seed texts' layer (4 inputs, 3 neurons) on their 3-sample batch, L = mean((Y − T)²)."""
    layer = nn.Linear(4, 3, dtype=np.float64)
    layer.load_state_dict({"weight": np.array(SEED_WEIGHTS).T, "bias": np.array(SEED_BIASES)})
    X, T = Tensor(np.array(SEED_INPUTS), label="X"), Tensor(np.array(SEED_TARGETS), label="T")
    Y = layer(X)
    Y.label = "Y"
    E = Y - T
    E.label = "E"
    loss = (E ** 2).mean()
    loss.label = "L"

    def scalar_loss() -> Value:  # the same layer from Values (nn.scalar), the same numbers, the same loss
        mirror = scalar.Linear(4, 3)
        for i, row in enumerate(layer.weight.data):
            for j, w in enumerate(row):
                mirror.weight[i][j].data = float(w)
        for j, b in enumerate(layer.bias.data):
            mirror.bias[j].data = float(b)
        squares = []
        for r, (xs, ts) in enumerate(zip(SEED_INPUTS, SEED_TARGETS)):
            ys = mirror([Value(x, f"X[{r},{i}]") for i, x in enumerate(xs)])
            for j, (y, t) in enumerate(zip(ys, ts)):
                y.label = f"Y[{r},{j}]"
                for node in toposort(y):  # name each product by its factors: X[0,2]·W[2,1]
                    if node.op is not None and node.op.name == "mul":
                        node.label = "·".join(p.label for p in node.parents)
                e = y - t
                e.label = f"E[{r},{j}]"
                squares.append(e ** 2)
        total = sum(squares[1:], squares[0]) / len(squares)
        total.label = "L"
        return total

    return TensorDemo(loss, {"X": X, "W": layer.weight, "b": layer.bias, "Y": Y, "E": E}, scalar_loss)


def three_b1b_digit(model: nn.MLP, image: np.ndarray, label: int) -> TensorDemo:
    """3Blue1Brown's 784-16-16-10 sigmoid network on one digit: "what this digit wants" every weight to do.

    The network is copied to float64, so the scalar mirror (the same weights in Values) agrees to the last
    digits; layers are named as 3Blue1Brown names them: Z = A·W + b, A = σ(Z).
    """
    if model.sizes != [784, 16, 16, 10] or model.activation != "sigmoid":
        raise ValueError(f"3b1b-digit needs the 784-16-16-10 sigmoid network (train --preset 3b1b), got a "
                         f"{'-'.join(map(str, model.sizes))} {model.activation} network")
    net = nn.MLP(model.sizes, model.activation, dtype=np.float64)
    net.load_state_dict(model.state_dict())
    tensors: dict[str, Tensor] = {}
    h = Tensor(np.asarray(image, dtype=np.float64)[None], label="X")
    k = 0
    for layer in net:
        if isinstance(layer, nn.Linear):
            k += 1
            layer.weight.label, layer.bias.label = f"W{k}", f"b{k}"
            tensors[f"W{k}"], tensors[f"b{k}"] = layer.weight, layer.bias
        h = layer(h)
        h.label = f"{'Z' if isinstance(layer, nn.Linear) else 'A'}{k}"
    loss = F.cross_entropy(h, np.array([label]))
    loss.label = "L"

    def scalar_loss() -> Value:  # the same weights as Values (nn.scalar), the same digit, the same loss
        with building():  # some 40,000 Values: no cycle collector walking them as they are made
            mirror = scalar.MLP(net.sizes, net.activation)
            mirror.load_state_dict(net.state_dict())
            for k, layer in enumerate([m for m in mirror.layers if isinstance(m, scalar.Linear)], start=1):
                for i, row in enumerate(layer.weight):
                    for j, w in enumerate(row):
                        w.label = f"W{k}[{i},{j}]"
                for j, b in enumerate(layer.bias):
                    b.label = f"b{k}[{j}]"
            pixels = [Value(float(p), f"X[0,{i}]") for i, p in enumerate(np.ravel(image))]
            out = scalar.cross_entropy(mirror(pixels), int(label))
        out.label = "L"
        return out

    return TensorDemo(loss, tensors, scalar_loss)


def quick_3b1b(images: np.ndarray, labels: np.ndarray, epochs: int = 2, seed: int = 0,
               log: Callable[[str], None] = print) -> nn.MLP:
    """A short built-in run of the 3b1b preset (its rate and batch), for when no checkpoint is given."""
    from . import optim  # the demos need an optimizer only here

    rng = np.random.default_rng(seed)
    model = nn.MLP([784, 16, 16, 10], "sigmoid", rng=rng)
    opt = optim.SGD(model.parameters(), lr=0.3, momentum=0.9)
    for epoch in range(epochs):
        order = rng.permutation(len(images))
        for start in range(0, len(order), 64):
            batch = order[start:start + 64]
            opt.zero_grad()
            F.cross_entropy(model(images[batch]), labels[batch]).backward()
            opt.step()
        log(f"  built-in run: epoch {epoch + 1} of {epochs} done")
    return model


TENSOR_GRAPHS: dict[str, Callable[..., TensorDemo]] = {"seed-layer": seed_layer, "3b1b-digit": three_b1b_digit}

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

    def plot(self, name: str, draw: Callable) -> None:
        """Write `draw(plots, path)` (a viz.plots chart) to OUT/name.FORMAT, when an output folder was given.

        A chart has no graphviz source, so for --format dot it is written as SVG.
        """
        if self.out is None:
            return
        from viz import plots  # only now: printing a demo needs no matplotlib

        suffix = self.format if f".{self.format}" in plots.SUFFIXES else "svg"
        path = draw(plots, self.out / f"{name}.{suffix}")
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
    with building():  # 3,000 Values
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


# The collapse demo's 1 → 3 → 1 network, (in, out) like nn.Linear: x is one number, so W1 is one row.
# Each hidden z[j] = x·W1[j] + b1[j] crosses 0 at x = −b1[j]/W1[j]: −1, 1 and 2, inside the x range drawn,
# and the output weights give the ReLU variant four clearly different slopes there.
COLLAPSE_W1, COLLAPSE_B1 = [[1.0, -1.0, 0.5]], [1.0, 1.0, -1.0]
COLLAPSE_W2, COLLAPSE_B2 = [[0.8], [0.6], [-1.5]], [0.2]
COLLAPSE_X, COLLAPSE_T = 1.5, 2.0  # the input and target whose loss and gradients the demo prints and draws
COLLAPSE_RANGE = (-3.0, 3.0)  # the x range of the y-against-x picture


def collapse_stack(x: Value, relu: bool = False) -> Value:
    """The stacked 1 → 3 → 1 network, one Value per number: z[j] = x·W1[j] + b1[j] (then h[j] = ReLU(z[j])
    if relu), y = Σ_j z[j]·W2[j] + b2."""
    hidden = []
    for j, (w1, b1, (w2,)) in enumerate(zip(COLLAPSE_W1[0], COLLAPSE_B1, COLLAPSE_W2)):
        z = _named(_named(x * Value(w1, f"W1[{j}]"), f"x·W1[{j}]") + Value(b1, f"b1[{j}]"), f"z[{j}]")
        h = _named(z.relu(), f"h[{j}]") if relu else z
        hidden.append(_named(h * Value(w2, f"W2[{j}]"), f"{h.label}·W2[{j}]"))
    return _named(sum(hidden, Value(COLLAPSE_B2[0], "b2")), "y")


def _named(v: Value, label: str) -> Value:
    v.label = label
    return v


def collapsed_weights() -> tuple[np.ndarray, np.ndarray]:
    """W = W1·W2 and b = b1·W2 + b2: the one layer the two linear layers are."""
    W1, b1, W2, b2 = (np.array(a) for a in (COLLAPSE_W1, COLLAPSE_B1, COLLAPSE_W2, COLLAPSE_B2))
    return W1 @ W2, b1 @ W2 + b2


def collapse_single(x: Value) -> Value:
    """y = x·W + b with the collapsed W and b, as Values."""
    W, b = collapsed_weights()
    return _named(_named(x * Value(float(W[0, 0]), "W = W1·W2"), "x·W") + Value(float(b[0]), "b = b1·W2 + b2"), "y")


def collapse_loss(y: Value, t: float = COLLAPSE_T) -> Value:
    return _named(_named(y - Value(t, "t"), "y − t") ** 2, "L")


def demo_two_layer_collapse(d: Demo) -> None:
    W, b = collapsed_weights()
    d.log("two linear layers on one number x (1 → 3 → 1):  z = x·W1 + b1,  y = z·W2 + b2,  L = (y − t)²")
    d.log(_beside(_matrix("  W1", COLLAPSE_W1), _matrix("b1", [COLLAPSE_B1]), _matrix("W2", COLLAPSE_W2),
                  _matrix("b2", [COLLAPSE_B2])))
    d.log("collapse into one layer:  y = (x·W1 + b1)·W2 + b2 = x·(W1·W2) + (b1·W2 + b2) = x·W + b")
    d.log(_beside(_matrix("  W", W, "W1·W2"), _matrix("b", [b], "b1·W2 + b2")))

    # The same loss through both graphs, each backpropagated on its own.
    x0, t = COLLAPSE_X, COLLAPSE_T
    graphs = {}
    for name, make in (("two-layer", collapse_stack), ("collapsed", collapse_single)):
        x = Value(x0, "x")
        y = make(x)
        loss = collapse_loss(y, t)
        loss.backward()
        graphs[name] = (x, y, loss)
    (x2, y2, loss2), (x1, y1, loss1) = graphs["two-layer"], graphs["collapsed"]
    d.log(f"the same x = {_num(x0)} and target t = {_num(t)} through both graphs, each backpropagated by .backward():")
    d.log(f"{'':<16}{'two layers':>12}{'one layer':>12}{'difference':>12}")
    for what, two, one in (("y", y2.data, y1.data), ("L = (y − t)²", loss2.data, loss1.data),
                           ("dL/dy", y2.grad, y1.grad), ("dL/dx", x2.grad, x1.grad)):
        d.log(f"  {what:<14}{_num(two, 4):>12}{_num(one, 4):>12}{abs(two - one):>12.1e}")

    # y against x, every y by a forward pass through the Value graphs; 121 points put one on every bend.
    xs = np.linspace(*COLLAPSE_RANGE, 121)
    lines = {name: np.array([make(Value(float(x))).data for x in xs]) for name, make in
             (("two-layer", collapse_stack), ("collapsed", collapse_single),
              ("relu", lambda x: collapse_stack(x, relu=True)))}
    # With a ReLU between the layers the network bends where a hidden z crosses 0, and no W, b can follow it.
    bends = sorted(-bj / wj for wj, bj in zip(COLLAPSE_W1[0], COLLAPSE_B1) if wj != 0)
    bends = [k for k in bends if COLLAPSE_RANGE[0] < k < COLLAPSE_RANGE[1]]
    edges = [COLLAPSE_RANGE[0], *bends, COLLAPSE_RANGE[1]]
    slopes = [_slope(0.5 * (lo + hi)) for lo, hi in zip(edges, edges[1:])]
    a, c = _closest_line(xs, lines["relu"])
    misses = np.abs(lines["relu"] - (a * xs + c))
    where = [f"the bend x = {_num(x, 1)}" if np.isclose(bends, x).any() else f"x = {_num(x, 1)}"
             for x in xs[misses > misses.max() - 1e-9]]
    d.log("with ReLU between the layers, y = ReLU(x·W1 + b1)·W2 + b2 bends where a z[j] crosses 0: "
          f"at x = {', '.join(_num(k, 1) for k in bends)}")
    d.log(f"  its slope dy/dx (by .backward()) between the bends: {', '.join(_num(s) for s in slopes)}; "
          f"x·W + b has one slope, {_num(W[0, 0])}")
    d.log(f"  so no W, b can match it: the closest straight line on [{_num(xs[0], 0)}, {_num(xs[-1], 0)}] is "
          f"y = {_num(a)}·x + {_num(c)},")
    d.log(f"  and it still misses by {_num(misses.max())}: at {', at '.join(where[:-1])} and at {where[-1]}")

    relu_graph = collapse_loss(collapse_stack(Value(x0, "x"), relu=True), t)
    relu_graph.backward()
    titles = {"two-layer": "two stacked linear layers, 1 → 3 → 1:  z = x·W1 + b1,  y = z·W2 + b2,  L = (y − t)²",
              "collapsed": "the one layer they collapse to:  y = x·W + b,  W = W1·W2,  b = b1·W2 + b2  "
                           "(y and dL/dx as the two layers)",
              "two-layer-relu": "the same layers with ReLU between them:  h = ReLU(x·W1 + b1),  y = h·W2 + b2"}
    for name, root in (("two-layer", loss2), ("collapsed", loss1), ("two-layer-relu", relu_graph)):
        d.picture(name, lambda viz, root=root, name=name: viz.draw(root, stacked=True, title=titles[name]))
    points = [(k, float(collapse_stack(Value(k), relu=True).data)) for k in bends]
    d.plot("collapse-lines", lambda plots, path: plots.collapse_lines(
        xs, lines["two-layer"], lines["collapsed"], lines["relu"], path, bends=points, closest=a * xs + c,
        title=f"Two linear layers are one: y = {_num(W[0, 0])}·x + {_num(b[0])}; with ReLU, y bends"))


def _closest_line(xs: np.ndarray, ys: np.ndarray) -> tuple[float, float]:
    """The line a·x + c whose largest miss of ys is the smallest: every other straight line misses by more.

    For a slope a, the best c is the middle of ys − a·x, and the miss is half its spread, a convex function
    of a, lowest between the steepest and the flattest stretch of ys: a ternary search finds it.
    """
    def spread(a: float) -> float:
        return float(np.ptp(ys - a * xs))

    steepness = np.diff(ys) / np.diff(xs)
    lo, hi = steepness.min(), steepness.max()
    for _ in range(100):
        m1, m2 = lo + (hi - lo) / 3, hi - (hi - lo) / 3
        lo, hi = (lo, m2) if spread(m1) < spread(m2) else (m1, hi)
    a = (lo + hi) / 2
    rest = ys - a * xs
    return a, (rest.max() + rest.min()) / 2


def _slope(x: float) -> float:
    """dy/dx of the ReLU network at x, by backpropagation."""
    leaf = Value(x)
    collapse_stack(leaf, relu=True).backward()
    return leaf.grad


def _num(v: float, decimals: int = 2) -> str:
    text = f"{v:.{decimals}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text  # "-0.00" shows a sign that isn't there


def _matrix(name: str, rows, formula: str = "") -> list[str]:
    """`name (rows×columns) = formula = [ … ]` with one line per row, the numbers right-aligned in columns."""
    cells = [[_num(v) for v in row] for row in np.atleast_2d(rows)]
    width = max(len(c) for row in cells for c in row)
    name = f"{name} ({len(cells)}×{len(cells[0])})" + (f" = {formula}" if formula else "")
    pad = " " * len(f"{name} = ")
    return [f"{f'{name} = ' if i == 0 else pad}[ {'  '.join(c.rjust(width) for c in row)} ]"
            for i, row in enumerate(cells)]


def _beside(*blocks: list[str], gap: int = 4) -> str:
    """Text blocks side by side, top-aligned."""
    widths = [max(map(len, block)) for block in blocks]
    rows = range(max(map(len, blocks)))
    return "\n".join("".join((block[i] if i < len(block) else "").ljust(w + gap)
                             for block, w in zip(blocks, widths)).rstrip() for i in rows)


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
