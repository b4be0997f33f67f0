"""Training an MLP on MNIST with the Tensor engine: the loop, evaluation, checkpoints.

Deterministic by construction: the initial weights come from `seed`, and each
epoch's batch order from (seed, epoch), so a resumed run replays exactly the
batches the interrupted one would have seen.
"""

from __future__ import annotations

import json
import math
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from . import checkpoint, optim
from .data import MNIST
from .files import atomic_write
from .nn import MLP
from .nn import functional as F
from .tensor import no_grad

# The two networks of the seed texts, with settings measured to reach their accuracy goals.
PRESETS = {
    "seed": dict(sizes=[784, 128, 64, 10], activation="relu", epochs=10, batch_size=128, lr=0.1, weight_decay=0.0),
    "3b1b": dict(sizes=[784, 16, 16, 10], activation="sigmoid", epochs=20, batch_size=64, lr=0.3, weight_decay=2e-4),
}
VAL_SIZE = 5000


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
            out.lr = preset["lr"] if out.optimizer == "sgd" else 1e-3
        out.sizes, out.activation = out.sizes or preset["sizes"], out.activation or preset["activation"]
        return out


class Diverged(Exception):
    """The loss became NaN or infinite."""


def split(n: int, val_size: int = VAL_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """Train and validation indices: a fixed split, the same for every seed."""
    order = np.random.default_rng(0).permutation(n)
    return np.sort(order[val_size:]), np.sort(order[:val_size])


def predict_proba(model: MLP, images: np.ndarray, batch_size: int = 2000) -> np.ndarray:
    with no_grad():
        logits = np.concatenate([model(images[i:i + batch_size]).data for i in range(0, len(images), batch_size)])
    z = np.exp(logits - logits.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def accuracy(model: MLP, images: np.ndarray, labels: np.ndarray) -> float:
    return float((predict_proba(model, images).argmax(axis=1) == labels).mean())


def confusion_matrix(predicted: np.ndarray, labels: np.ndarray, classes: int = 10) -> np.ndarray:
    """counts[true, predicted]."""
    counts = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(counts, (labels, predicted), 1)
    return counts


def make_optimizer(cfg: Config, model: MLP) -> optim.Optimizer:
    if cfg.optimizer == "sgd":
        return optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    return optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)


def cosine_lr(base: float, epoch: int, epochs: int) -> float:
    return base * 0.5 * (1 + math.cos(math.pi * epoch / epochs))


class Progress:
    """A tqdm bar on a terminal; nothing per batch otherwise (the epoch line says it all)."""

    def __init__(self, total: int, desc: str, enabled: bool) -> None:
        self.bar, self.batches = None, 0
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=desc, unit="img", unit_scale=True, leave=False, file=sys.stderr)

    def update(self, n: int, loss: float) -> None:
        if self.bar is not None:
            self.bar.update(n)
            self.batches += 1
            if self.batches % 50 == 1:  # formatting the loss every batch would cost more than the batch
                self.bar.set_postfix(loss=f"{loss:.4f}", refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def train(cfg: Config, data: MNIST, out: Path, resume: Path | None = None,
          log: Callable[[str], None] = print, progress: bool = True) -> dict:
    """Train, writing OUT/checkpoint.npz each epoch, OUT/model.npz and OUT/metrics.json at the end.

    Ctrl-C saves a checkpoint at the next batch boundary and re-raises KeyboardInterrupt;
    a NaN/inf loss raises Diverged without touching the last good checkpoint.
    """
    out.mkdir(parents=True, exist_ok=True)
    train_idx, val_idx = split(len(data.train_images))
    if resume is not None:
        model, meta, optimizer_state = checkpoint.load(resume)
        if "resume" not in meta:
            raise checkpoint.CheckpointError(f"{resume} holds final weights, not a training state: resume from "
                                             "OUT/checkpoint.npz")
        try:
            cfg = Config(**meta["config"])
            opt = make_optimizer(cfg, model)
            opt.load_state_dict(optimizer_state)
            state = meta["resume"]
            state["metrics"]["train_loss"], state["epoch"], state["step"]  # noqa: B018 (all must be present)
        except (KeyError, TypeError, ValueError) as e:
            raise checkpoint.CheckpointError(f"{resume} has a damaged training state ({e}); start a new run "
                                             "without --resume") from None
        log(f"resuming at epoch {state['epoch'] + 1}, batch {state['step']} from {resume}")
    else:
        cfg = cfg.resolved()
        model = MLP(cfg.sizes, cfg.activation, rng=np.random.default_rng(cfg.seed))
        opt = make_optimizer(cfg, model)
        state = {"epoch": 0, "step": 0, "loss_sum": 0.0, "seconds": 0.0,
                 "metrics": {"train_loss": [], "val_accuracy": [], "epoch_seconds": []}}
    metrics = state["metrics"]
    B, n = cfg.batch_size, len(train_idx)
    steps = math.ceil(n / B)

    def save_state(path: Path) -> None:
        checkpoint.save(path, model, {"config": asdict(cfg), "resume": state}, opt.state_dict())

    # One Ctrl-C handler for the whole run, so a Ctrl-C during validation or saving is not lost either;
    # overflow warnings are silenced because a diverging loss is caught, and explained, below.
    with ctrl_c_at_batch_boundaries() as stop, np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for epoch in range(state["epoch"], cfg.epochs):
            order = train_idx[np.random.default_rng([cfg.seed, epoch]).permutation(n)]
            opt.lr = cosine_lr(cfg.lr, epoch, cfg.epochs)
            bar = Progress(n, f"epoch {epoch + 1}/{cfg.epochs}", progress)
            bar.update(min(state["step"] * B, n), 0.0)
            start = time.perf_counter()
            updating = False
            try:
                for step in range(state["step"], steps):
                    if stop.requested:
                        raise KeyboardInterrupt
                    batch = order[step * B:(step + 1) * B]
                    loss = F.cross_entropy(model(data.train_images[batch]), data.train_labels[batch])
                    value = float(loss.data)
                    if not math.isfinite(value):
                        kept = (f"{out / 'checkpoint.npz'} (the last good state) is kept"
                                if (out / "checkpoint.npz").exists() else "nothing was saved")
                        raise Diverged(f"loss became {value} at epoch {epoch + 1}, batch {step + 1}; stopped, {kept}. "
                                       f"Try a smaller --lr (this run used {cfg.lr:g})")
                    opt.zero_grad()
                    loss.backward()
                    updating = True  # weights and the batch counter must change together
                    opt.step()
                    state["loss_sum"] += value * len(batch)
                    state["step"] = step + 1
                    updating = False
                    bar.update(len(batch), value)
            except KeyboardInterrupt:
                bar.close()
                if updating:  # a second Ctrl-C mid-update: this state is torn, keep the last good checkpoint
                    log("interrupted during an update: not saved; the last epoch's checkpoint is kept")
                    raise
                state["seconds"] += time.perf_counter() - start
                save_state(out / "checkpoint.npz")
                log(f"interrupted: saved {out / 'checkpoint.npz'} at epoch {epoch + 1}, batch {state['step']}; "
                    f"continue with --resume {out / 'checkpoint.npz'}")
                raise
            bar.close()
            seconds = state["seconds"] + time.perf_counter() - start
            metrics["train_loss"].append(state["loss_sum"] / n)
            metrics["val_accuracy"].append(accuracy(model, data.train_images[val_idx], data.train_labels[val_idx]))
            metrics["epoch_seconds"].append(seconds)
            state.update(epoch=epoch + 1, step=0, loss_sum=0.0, seconds=0.0)
            save_state(out / "checkpoint.npz")
            log(f"epoch {epoch + 1:2d}/{cfg.epochs}  loss {metrics['train_loss'][-1]:.4f}  "
                f"val {metrics['val_accuracy'][-1]:.2%}  {seconds:.1f} s  {n / seconds:,.0f} img/s")

    predicted = predict_proba(model, data.test_images).argmax(axis=1)
    confusion = confusion_matrix(predicted, data.test_labels)
    metrics |= {
        "test_accuracy": float((predicted == data.test_labels).mean()),
        "per_class_accuracy": (confusion.diagonal() / confusion.sum(axis=1)).tolist(),
        "epochs": cfg.epochs,
        "parameters": model.num_parameters(),
        "config": asdict(cfg),
    }
    checkpoint.save(out / "model.npz", model, {"config": asdict(cfg)})
    write_json(out / "metrics.json", metrics)
    return metrics


class ctrl_c_at_batch_boundaries:
    """Turn the first Ctrl-C into a request that the loop honours between batches, so a
    checkpoint never holds weights from one batch and a counter from another. A second
    Ctrl-C interrupts at once. Signals can only be caught in the main thread; elsewhere
    this does nothing."""

    requested = False

    def __enter__(self) -> ctrl_c_at_batch_boundaries:
        self.previous = None
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)


def write_json(path: Path, obj: dict) -> None:
    atomic_write(path, lambda f: f.write(json.dumps(obj, indent=2).encode()))
