"""Layers for the Tensor engine, with PyTorch's names: `Linear`, `ReLU`, `Sequential`, `MLP`.

`Linear` stores its weight as (in, out), so `y = x @ W + b` and the seed
texts' backprop table reads directly off the code: dL/dW = Xᵀ · dL/dY.
The scalar mirror of these layers, built from `Value`s, is `nn.scalar`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from .. import ops
from ..graph import display_svg
from ..tensor import Tensor
from . import functional

__all__ = ["Module", "Linear", "Activation", "ReLU", "Sigmoid", "Tanh", "Sequential", "MLP", "ACTIVATIONS",
           "functional"]


class Module:
    """Base class: parameters are found by walking attributes, as in PyTorch."""

    def __call__(self, x) -> Tensor:
        return self.forward(x)

    def forward(self, x) -> Tensor:
        raise NotImplementedError

    def children(self) -> Iterator[tuple[str, Module]]:
        for name, value in vars(self).items():
            if isinstance(value, Module):
                yield name, value

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Tensor]]:
        for name, value in vars(self).items():
            if isinstance(value, Tensor) and value.requires_grad:
                yield prefix + name, value
        for name, child in self.children():
            yield from child.named_parameters(f"{prefix}{name}.")

    def parameters(self) -> list[Tensor]:
        return [p for _, p in self.named_parameters()]

    def num_parameters(self) -> int:
        return sum(p.data.size for p in self.parameters())

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = None

    def state_dict(self) -> dict[str, np.ndarray]:
        return {name: p.data for name, p in self.named_parameters()}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Copy arrays in by name; every name and shape must match exactly."""
        own = dict(self.named_parameters())
        if set(own) != set(state):
            missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
            raise ValueError(f"state dict does not match this {type(self).__name__}'s parameters: "
                             f"missing {missing}, unexpected {unexpected}")
        for name, p in own.items():
            array = np.asarray(state[name])
            if array.shape != p.shape:
                raise ValueError(f"state dict entry {name!r} has shape {array.shape}, the model needs {p.shape}")
            p.data = array.astype(p.dtype, copy=True)

    def _repr_svg_(self) -> str | None:  # Jupyter shows the layers (viz.draw_model, found as a plugin)
        return display_svg(self)


class Linear(Module):
    """y = x @ W + b with W of shape (in_features, out_features)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *,
                 rng: np.random.Generator | None = None, dtype=np.float32) -> None:
        for arg, n in (("in_features", in_features), ("out_features", out_features)):
            if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
                raise TypeError(f"Linear needs {arg} to be a positive int, got {n!r}")
        rng = rng if rng is not None else np.random.default_rng()
        bound = 1.0 / np.sqrt(in_features)  # PyTorch's default init: U(-1/sqrt(in), 1/sqrt(in))
        self.in_features, self.out_features = in_features, out_features
        self.name = ""  # set by Sequential, for error messages
        self.weight = Tensor(rng.uniform(-bound, bound, (in_features, out_features)).astype(dtype),
                             requires_grad=True, label="W")
        self.bias = (Tensor(rng.uniform(-bound, bound, out_features).astype(dtype), requires_grad=True, label="b")
                     if bias else None)

    def forward(self, x) -> Tensor:
        dtype = self.weight._data.dtype
        if not isinstance(x, Tensor) or (x._data.dtype != dtype and not x.requires_grad):
            x = Tensor.from_numpy(np.asarray(x, dtype=dtype))  # data in, in the layer's dtype, no copy
        shape = x._data.shape
        if len(shape) not in (1, 2) or shape[-1] != self.in_features:
            where = f"layer {self.name} " if self.name else ""
            raise ValueError(f"{where}{self!r} expects input of shape (batch, {self.in_features}), got {x.shape}: "
                             f"x @ W would be {x.shape} @ {self.weight.shape}")
        if self.bias is None:
            return x @ self.weight
        return Tensor.apply(ops.linear, x, self.weight, self.bias)

    def __repr__(self) -> str:
        return f"Linear({self.in_features} → {self.out_features})"


class Activation(Module):
    """The op table's elementwise op `name` applied to every number: `Activation("relu")`.

    One class for both engines: a Tensor goes through the op itself (`Tensor.apply`), a list of
    Values (`nn.scalar`'s layers, ours or micrograd's) through each Value's method of that name,
    which is the same row of the table. `ReLU()`, `Sigmoid()`, `Tanh()` are its PyTorch names.
    """

    def __init__(self, name: str) -> None:
        check_activation(name)
        self.name, self.op = name, getattr(ops, name)

    def forward(self, x):
        if isinstance(x, Tensor):
            return Tensor.apply(self.op, x)
        return [getattr(v, self.name)() for v in x]  # by method, so any Value class with these operators works

    def __repr__(self) -> str:
        return f"{type(self).__name__}()" if type(self) is not Activation else f"Activation({self.name!r})"


class ReLU(Activation):
    def __init__(self) -> None:
        super().__init__("relu")


class Sigmoid(Activation):
    def __init__(self) -> None:
        super().__init__("sigmoid")


class Tanh(Activation):
    def __init__(self) -> None:
        super().__init__("tanh")


# the op table's elementwise ops that may stand between layers, by the name a config or checkpoint gives
ACTIVATIONS: dict[str, type[Activation]] = {"relu": ReLU, "sigmoid": Sigmoid, "tanh": Tanh}


def check_activation(name) -> None:
    """ValueError unless `name` is one of ACTIVATIONS (both engines' layers take the same names)."""
    if not isinstance(name, str) or name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}: choose one of {', '.join(ACTIVATIONS)}")


class Sequential(Module):
    """Modules applied in order; parameters are named by position ("0.weight")."""

    def __init__(self, *modules: Module) -> None:
        for i, m in enumerate(modules):
            if not isinstance(m, Module):
                raise TypeError(f"Sequential takes Modules, got {type(m).__name__} at position {i}")
            if isinstance(m, Linear):
                m.name = str(i)
        self.layers = list(modules)

    def children(self) -> Iterator[tuple[str, Module]]:
        yield from ((str(i), m) for i, m in enumerate(self.layers))

    def forward(self, x) -> Tensor:
        for layer in self.layers:
            x = layer(x)
        return x

    def __getitem__(self, i: int) -> Module:
        return self.layers[i]

    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self) -> Iterator[Module]:
        return iter(self.layers)

    def __repr__(self) -> str:
        inner = "".join(f"\n  ({i}): {m!r}" for i, m in enumerate(self.layers))
        return f"{type(self).__name__}({inner}\n)"


class MLP(Sequential):
    """Linear layers of the given sizes with an activation between them (none after the last).

    `MLP([784, 16, 16, 10], "sigmoid")` is 3Blue1Brown's network: 13,002 parameters.
    """

    def __init__(self, sizes: Sequence[int], activation: str = "relu", *,
                 rng: np.random.Generator | None = None, dtype=np.float32) -> None:
        if len(sizes) < 2:
            raise ValueError(f"MLP needs at least an input and an output size, got {list(sizes)}")
        check_activation(activation)
        rng = rng if rng is not None else np.random.default_rng()
        layers: list[Module] = []
        for i, (n_in, n_out) in enumerate(zip(sizes, sizes[1:])):
            layers.append(Linear(n_in, n_out, rng=rng, dtype=dtype))
            if i < len(sizes) - 2:
                layers.append(ACTIVATIONS[activation]())
        super().__init__(*layers)
        self.sizes, self.activation = list(sizes), activation
