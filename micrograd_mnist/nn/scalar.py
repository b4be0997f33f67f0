"""The scalar mirror of `nn`: the same layers built from `Value`s, one number per node.

It loads a Tensor model's `state_dict()`, so one network can run in both
engines and every gradient can be compared number by number.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Integral

import numpy as np

from ..value import Value
from . import Activation, check_activation

__all__ = ["Linear", "Activation", "MLP", "cross_entropy"]


class Linear:
    """y_j = Σ_i x_i · W[i][j] + b_j, with W stored (in, out) like `nn.Linear`.

    Initialised like micrograd's neurons: weights uniform in [−1, 1], biases 0.
    """

    def __init__(self, in_features: int, out_features: int, name: str = "", value: type = Value,
                 rng: np.random.Generator | None = None) -> None:
        self.in_features, self.out_features, self.name = in_features, out_features, name
        rng = rng if rng is not None else np.random.default_rng()
        w = rng.uniform(-1, 1, (in_features, out_features))
        self.weight = [[_leaf(value, w[i, j], f"W{name}[{i},{j}]") for j in range(out_features)]
                       for i in range(in_features)]
        self.bias = [_leaf(value, 0.0, f"b{name}[{j}]") for j in range(out_features)]

    def __call__(self, x: Sequence) -> list[Value]:
        if len(x) != self.in_features:
            raise ValueError(f"layer {self.name} {self!r} expects {self.in_features} inputs, got {len(x)}")
        return [sum((xi * row[j] for xi, row in zip(x, self.weight)), self.bias[j]) for j in range(self.out_features)]

    def named_parameters(self) -> dict[str, list]:
        return {"weight": self.weight, "bias": self.bias}

    def __repr__(self) -> str:
        return f"Linear({self.in_features} → {self.out_features})"


def _leaf(value: type, data: float, label: str):
    v = value(float(data))  # a plain float: numpy scalars would slow every op and leak into micrograd's Value
    v.label = label  # set afterwards so any Value class with a `label` slot or dict works (micrograd's too)
    return v


class MLP:
    """`nn.MLP(sizes, activation)` in Values; parameter names match its state dict.

    `MLP([2, 16, 16, 1], "relu")` as `nn.MLP`, or micrograd's own `MLP(2, [16, 16, 1])`
    (inputs, then each layer's outputs; ReLU between layers, as there). Weights start
    uniform in [−1, 1] and biases at 0, as in micrograd: `seed` makes that repeatable,
    and `load_state_dict` replaces it. The output is a list, one Value per output
    neuron, even when there is one (micrograd unwraps that one: here take `[0]`).

    `value` picks the scalar class: ours by default, or any class with the same
    operators (the speed benchmark drives micrograd's through this very code).

    A training loop of your own builds a big graph every step: run it inside
    `with micrograd_mnist.graph.building():` so the cycle collector does not keep
    walking it (four times faster per node at a million nodes; see `graph.building`).
    """

    def __init__(self, sizes: int | Sequence[int], activation: str | Sequence[int] = "relu", value: type = Value,
                 *, seed: int | None = None) -> None:
        if isinstance(sizes, (int, np.integer)):  # micrograd's MLP(nin, nouts)
            if isinstance(activation, str):
                raise TypeError(f"MLP({sizes}, ...) is micrograd's MLP(nin, nouts): give the layer sizes as a list, "
                                f"e.g. MLP({sizes}, [16, 16, 1])")
            sizes, activation = [sizes, *activation], "relu"
        check_activation(activation)
        self.sizes, self.activation = list(sizes), activation
        rng = np.random.default_rng(seed)  # one generator for all layers, so a seed fixes the whole network
        self.layers: list = []
        for i, (n_in, n_out) in enumerate(zip(sizes, sizes[1:])):
            self.layers.append(Linear(n_in, n_out, name=str(len(self.layers)), value=value, rng=rng))
            if i < len(sizes) - 2:
                self.layers.append(Activation(activation))

    def __call__(self, x: Sequence) -> list[Value]:
        for layer in self.layers:
            x = layer(x)
        return x

    def zero_grad(self) -> None:
        """Reset every parameter's gradient before the next backward: `.backward()` adds to `.grad`."""
        for p in self.parameters():
            p.grad = 0.0

    def named_parameters(self) -> dict[str, list]:
        return {f"{i}.{name}": p for i, layer in enumerate(self.layers)
                for name, p in dict(layer.named_parameters()).items()}  # a Linear's dict, an Activation's none

    def parameters(self) -> list[Value]:
        return [v for p in self.named_parameters().values() for v in np.ravel(np.array(p, dtype=object))]

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        own = self.named_parameters()
        if set(own) != set(state):
            missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
            raise ValueError(f"state dict does not match this MLP: missing {missing}, unexpected {unexpected}")
        for name, nested in own.items():
            array = np.asarray(state[name], dtype=np.float64)
            holders = np.array(nested, dtype=object)
            if array.shape != holders.shape:
                raise ValueError(f"state dict entry {name!r} has shape {array.shape}, the model needs {holders.shape}")
            for v, x in zip(holders.ravel(), array.ravel()):
                v.data = float(x)

    def state_dict(self) -> dict[str, np.ndarray]:
        """Every parameter's value, shaped like the Tensor model's: `nn.MLP(...).load_state_dict` takes it."""
        return {name: np.vectorize(lambda v: v.data, otypes=[float])(np.array(p, dtype=object))
                for name, p in self.named_parameters().items()}

    def grads(self) -> dict[str, np.ndarray]:
        """Every parameter's gradient, shaped like the Tensor model's parameters."""
        return {name: np.vectorize(lambda v: v.grad, otypes=[float])(np.array(p, dtype=object))
                for name, p in self.named_parameters().items()}


def cross_entropy(logits: Sequence[Value], label: int) -> Value:
    """−log softmax(logits)[label], built from exp, log and sums.

    Shifting by the max is a constant (no gradient flows through it), which is
    exactly why the fused Tensor op may use it too.
    """
    if isinstance(label, bool) or not isinstance(label, Integral) or not 0 <= label < len(logits):
        raise ValueError(f"cross_entropy's label must be a class index, an integer in [0, {len(logits)}), "
                         f"got {label!r:.40}")
    shift = max(z.data for z in logits)
    if not math.isfinite(shift):  # shifting by ±inf would give inf − inf = nan
        shift = 0.0
    return sum((z - shift).exp() for z in logits).log() + shift - logits[label]
