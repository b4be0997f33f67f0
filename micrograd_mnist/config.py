"""A training run's settings: the presets and `Config`, in a module of their own so that the checkpoint
loader can check a saved config against them without importing the training loop that writes it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

# The two networks of the seed texts, with settings measured to reach their accuracy goals.
PRESETS = {
    "seed": dict(sizes=[784, 128, 64, 10], activation="relu", epochs=10, batch_size=128, lr=0.1, weight_decay=0.0),
    "3b1b": dict(sizes=[784, 16, 16, 10], activation="sigmoid", epochs=20, batch_size=64, lr=0.3, weight_decay=2e-4),
}
ADAM_LR = 1e-3  # Adam's usual rate, used when Adam is chosen and no --lr given (the presets' rates are SGD's)
DATASETS = ("mnist", "fashion-mnist")  # what data.load can read (here, so a checkpoint is checked without it)
PRODUCTS = ("checkpoint.npz", "model.npz", "metrics.json")  # what a run writes into its --out folder


@dataclass
class Config:
    preset: str = "seed"
    epochs: int | None = None  # None: the preset's
    batch_size: int | None = None
    lr: float | None = None
    weight_decay: float | None = None
    optimizer: str = "sgd"
    momentum: float = 0.9
    seed: int = 0
    dataset: str = "mnist"
    data_dir: str | None = None  # the folder the data came from (absolute), None for the usual places
    sizes: list[int] = field(default_factory=list)
    activation: str = ""

    def resolved(self) -> Config:
        """Fill every None from the preset (and Adam's usual rate when Adam is chosen)."""
        preset = PRESETS[self.preset]
        out = Config(**asdict(self))
        for key in ("epochs", "batch_size", "weight_decay"):
            if getattr(out, key) is None:
                setattr(out, key, preset[key])
        if out.lr is None:
            out.lr = preset["lr"] if out.optimizer == "sgd" else ADAM_LR
        out.sizes, out.activation = out.sizes or preset["sizes"], out.activation or preset["activation"]
        return out


def dataset_of(meta: dict) -> str:
    """The dataset a checkpoint's network was trained on: its config's, or Config's default for a file that
    does not say (weights saved without a training config)."""
    config = meta.get("config") if isinstance(meta, dict) else None
    dataset = config.get("dataset") if isinstance(config, dict) else None
    return dataset if isinstance(dataset, str) else Config.dataset
