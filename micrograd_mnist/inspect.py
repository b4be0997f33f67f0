"""What `micrograd-mnist explore` shows, computed by the Tensor engine: one digit's activations layer by
layer, one neuron's incoming weights and the inputs that pushed it most, and "what this digit wants" —
the backward pass of cross-entropy for a chosen label (the tensor walk-through's own steps), every weight's
nudge, and the prediction after one SGD step taken on a copy of the network.

Everything here takes and returns plain NumPy arrays and numbers; the server turns them into JSON and the
page only draws them. Any 784-in, 10-out MLP works: for wide layers the picture keeps the strongest edges
into each neuron, and the first layer's 16 most telling neurons.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import nn, tensor_steps
from .backprop import Names, describe
from .nn import functional as F
from .tensor import Tensor, no_grad

ALL_EDGES = 784 * 16  # up to this many weights in a layer, the picture draws every edge (3Blue1Brown's network)
TOP_EDGES = 8  # beyond it, the strongest this many into each neuron
TILES = 16  # first-layer pictures shown at once: all of 3Blue1Brown's 16 neurons, or 16 of a wider layer
SMALL = 400  # a weight matrix up to this many entries is sent whole (a heat map); bigger ones as a summary
TOP_INPUTS = 6  # the inputs that pushed a neuron most, shown when it is clicked


class ShapeError(ValueError):
    """A network the explorer can't show; the message is one line for the user."""


def check(model: nn.MLP) -> None:
    """Refuse anything but a 784-in, 10-out MLP with finite weights."""
    arch = "-".join(map(str, model.sizes))
    if model.sizes[0] != 784 or model.sizes[-1] != 10:
        raise ShapeError(f"it is a {arch} {model.activation} network; explore shows a network with 784 inputs "
                         "(28×28 pixels) and 10 outputs (one per digit), such as `micrograd-mnist train` writes")
    if not all(np.isfinite(p.data).all() for p in model.parameters()):
        raise ShapeError(f"its {arch} network holds NaN or infinite weights (the run diverged); "
                         "train it again with a smaller --lr")


def linears(model: nn.MLP) -> list[nn.Linear]:
    return [m for m in model if isinstance(m, nn.Linear)]


@dataclass(frozen=True)
class Forward:
    """One digit through the network: per layer k = 1..L the weighted sums z_k and the activations a_k
    (a_0 is the input; the last layer's a is its logits), and the softmax probabilities."""

    z: list[np.ndarray]
    a: list[np.ndarray]
    probs: np.ndarray

    @property
    def prediction(self) -> int:
        return int(self.probs.argmax())


def forward(model: nn.MLP, pixels: np.ndarray) -> Forward:
    """Run the model one layer at a time on one (784,) input, keeping what each layer made."""
    z, a = [], [np.asarray(pixels, dtype=np.float64)]
    with no_grad():
        h = Tensor(np.asarray(pixels, dtype=model[0].weight.dtype)[None])
        for layer in model:
            h = layer(h)
            if isinstance(layer, nn.Linear):
                z.append(h.data[0].astype(np.float64))
                a.append(z[-1])  # replaced by the activation's output, if one follows
            else:
                a[-1] = h.data[0].astype(np.float64)
        logits = h.data[0].astype(np.float64)
    return Forward(z, a, _softmax(logits))


def edges(model: nn.MLP) -> list[dict]:
    """Per layer, the weights the picture draws as edges: all of them (`dense`, in × out) when the layer is
    no bigger than 3Blue1Brown's first, else the TOP_EDGES strongest into each neuron as (input, neuron, w)."""
    out = []
    for layer in linears(model):
        w = layer.weight.data.astype(np.float64)
        n_in, n_out = w.shape
        entry = {"n_in": n_in, "n_out": n_out, "max": float(np.abs(w).max())}
        if w.size <= ALL_EDGES:
            entry["dense"] = w.ravel()
        else:
            strongest = np.argsort(-np.abs(w), axis=0, kind="stable")[:TOP_EDGES]  # per column: the inputs
            entry["top"] = [(int(i), j, float(w[i, j])) for j in range(n_out) for i in strongest[:, j]]
        out.append(entry)
    return out


def neuron(model: nn.MLP, pixels: np.ndarray, layer: int, j: int) -> dict:
    """Neuron j of layer `layer` (1 = the first hidden layer, L = the outputs) for this digit: its weighted sum
    z = Σ w_i·a_i + b and activation, its incoming weights, and the inputs whose w_i·a_i pushed it most."""
    fw = forward(model, pixels)
    lin = linears(model)[layer - 1]
    w = lin.weight.data[:, j].astype(np.float64)
    bias = float(lin.bias.data[j]) if lin.bias is not None else 0.0
    before = fw.a[layer - 1]
    pushes = w * before  # each input's share of z, before the bias
    order = np.argsort(-np.abs(pushes), kind="stable")[:TOP_INPUTS]
    last = layer == len(fw.z)
    return {
        "layer": layer, "index": j, "z": float(fw.z[layer - 1][j]), "bias": float(bias),
        "activation": float(fw.a[layer][j]), "probability": float(fw.probs[j]) if last else None,
        "weights": w, "n_in": len(w),
        "top": [{"input": int(i), "weight": float(w[i]), "activation": float(before[i]), "push": float(pushes[i])}
                for i in order if pushes[i] != 0],
    }


def first_layer_weights(model: nn.MLP) -> dict:
    """The first TILES neurons' incoming weights, each a 28×28 picture: what each neuron looks for."""
    w = linears(model)[0].weight.data.astype(np.float64)
    return _tiles(w, list(range(min(TILES, w.shape[1]))))


def _tiles(w: np.ndarray, shown: list[int]) -> dict:
    """Columns `shown` of a (784, n) matrix, each a 28×28 tile for the page, with their common scale."""
    return {"neurons": shown, "tiles": [w[:, j] for j in shown], "max": float(np.abs(w[:, shown]).max()),
            "of": w.shape[1]}


# --- what this digit wants ------------------------------------------------------------------------------

def wants(model: nn.MLP, pixels: np.ndarray, label: int, lr: float) -> dict:
    """Backward of the cross-entropy of `label` for this digit, step by step as the tensor walk-through runs it,
    and the nudge −dL/dW every weight gets; then the prediction after one SGD step of size `lr` taken on a
    float64 copy (the served model is untouched)."""
    net = nn.MLP(model.sizes, model.activation, dtype=np.float64)
    net.load_state_dict(model.state_dict())
    params: list[tuple[Tensor, Tensor | None]] = []
    h = Tensor(np.asarray(pixels, dtype=np.float64)[None], label="X")
    k = 0
    for layer in net:  # names as 3Blue1Brown's: Z = A·W + b, A = σ(Z)
        if isinstance(layer, nn.Linear):
            k += 1
            layer.weight.label = f"W{k}"
            if layer.bias is not None:
                layer.bias.label = f"b{k}"
            params.append((layer.weight, layer.bias))
        h = layer(h)
        h.label = f"{'Z' if isinstance(layer, nn.Linear) else 'A'}{k}"
    before = _softmax(h.data[0])
    loss = F.cross_entropy(h, np.array([label]))
    loss.label = "L"
    names = Names(loss)
    walk = [_step_lines(s, names) for s in tensor_steps.steps(loss)]  # exactly backward()'s work, in its order

    layers = []
    for k, (w, b) in enumerate(params, start=1):
        nudge_w = -w.grad
        nudge_b = -b.grad if b is not None else np.zeros(w.shape[1])
        entry = {"name": f"W{k}", "shape": list(w.shape), "norm": float(np.linalg.norm(nudge_w)),
                 "max": float(np.abs(nudge_w).max()), "bias": nudge_b, "bias_max": float(np.abs(nudge_b).max())}
        if nudge_w.size <= SMALL:
            entry["dense"] = nudge_w.ravel()
        layers.append(entry)
    g1 = -params[0][0].grad
    # a wide first layer: the neurons this digit asks most of (biggest nudge), in neuron order
    shown = sorted(np.argsort(-np.linalg.norm(g1, axis=0), kind="stable")[:TILES].tolist())
    tiles = _tiles(g1, shown)

    with no_grad():
        for w, b in params:
            w.data = w.data - lr * w.grad
            if b is not None:
                b.data = b.data - lr * b.grad
        after = _softmax(net(np.asarray(pixels, dtype=np.float64)[None]).data[0])
    return {"label": label, "lr": lr, "loss": float(loss.data), "steps": walk, "layers": layers,
            "first": tiles, "before": before, "after": after,
            "loss_after": float(-np.log(max(after[label], 1e-300)))}


def _step_lines(step, names: Names) -> dict:
    """One walk-through step as the terminal names it: the node, then per input its rule and shapes."""
    return {"index": step.index, "node": describe(step, names),
            "edges": [f"dL/d{names[e.parent]} += {tensor_steps.rule_text(step, e, names)}   "
                      f"({tensor_steps.shapes_text(step, e, names)})" for e in step.edges]}


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max())
    return e / e.sum()


# --- test digits ----------------------------------------------------------------------------------------

class TestDigits:
    """The test set and the model's prediction for every image of it, for next / random / "its mistakes"."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, model: nn.MLP, seed: int = 0) -> None:
        from .evaluation import predict_proba

        self.images, self.labels = images, labels
        self.predicted = predict_proba(model, images).argmax(axis=1)
        self.mistakes = np.nonzero(self.predicted != labels)[0]
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.labels)

    def pick(self, how: str, current: int | None) -> int | None:
        """The next image after `current`, a random one, or the next mistake after `current` (wrapping round);
        None when there is no mistake to show."""
        n = len(self.labels)
        start = -1 if current is None else current
        if how == "next":
            return (start + 1) % n
        if how == "random":
            return int(self.rng.integers(n))
        if not len(self.mistakes):
            return None
        later = self.mistakes[self.mistakes > start]
        return int(later[0] if len(later) else self.mistakes[0])

    def describe(self, index: int) -> dict:
        return {"index": index, "label": int(self.labels[index]), "predicted": int(self.predicted[index]),
                "mistakes": len(self.mistakes), "count": len(self.labels)}
