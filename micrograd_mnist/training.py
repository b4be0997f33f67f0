"""Training an MLP on MNIST with the Tensor engine: the loop, resuming, checkpoints (the settings are
`config`'s, the test-set numbers `evaluation`'s).

Deterministic by construction: the initial weights come from `seed`, and each
epoch's batch order from (seed, epoch), so a resumed run replays exactly the
batches the interrupted one would have seen.
"""

from __future__ import annotations

import errno
import fcntl
import json
import math
import os
import signal
import stat
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from . import checkpoint, optim
from .config import PRESETS, PRODUCTS, Config  # noqa: F401  (PRESETS: tests patch it here)
from .data import MNIST, Batches, DataError
from .evaluation import accuracy, report
from .files import FileError, atomic_write, check_output, remove_stale_temps, same_file
from .nn import MLP
from .nn import functional as F

VAL_SIZE = 5000
MIN_TRAIN = 1000  # a small training set gives up validation images before training images
LOCK = ".lock"


class Diverged(Exception):
    """The loss became NaN or infinite."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, honoured like Ctrl-C (a checkpoint at the next batch boundary); the CLI exits 143, not 130."""


class SettingsError(Exception):
    """Settings a run can't take, such as a resumed run's setting changed; one line for the user."""


@dataclass
class Resumed:
    """A training state read from OUT/checkpoint.npz and checked, once: the run that `train` continues."""

    path: Path
    cfg: Config
    model: MLP
    optimizer: optim.Optimizer
    state: dict  # epoch, step, loss_sum, seconds and metrics: where the run stopped
    stamp: tuple[int, ...] | None  # the file as it was read (device, inode, size, mtime)

    def check_unchanged(self) -> None:
        """Refuse a checkpoint replaced since it was read: another run finished in its folder meanwhile,
        and continuing from the older state would throw that run's epochs away."""
        if _stamp(self.path) != self.stamp:
            raise FileError(f"{self.path} was replaced while this run got ready (another run wrote it); run the "
                            "command again to continue from the new one")


def start(given: dict, resume: Path | None = None) -> tuple[Config, Resumed | None]:
    """The settings a run will use and the state it continues from. A new run's settings are `given`
    (Config field -> value, None for not given) over its preset's; a resumed run's are its own."""
    if resume is None:
        return Config(**{k: v for k, v in given.items() if v is not None}).resolved(), None
    resumed = read_resume(resume, given)
    return resumed.cfg, resumed


def read_resume(path: Path, given: dict | None = None) -> Resumed:
    """Load OUT/checkpoint.npz to continue it: CheckpointError for a file that holds no training state (final
    weights, a damaged state), SettingsError when `given` changes a setting it records. Repeating the original
    settings is fine; one the file does not record (an older file; data found in the usual places) it has no
    say about."""
    path = Path(path)
    stamp = _stamp(path)  # before reading, so a replacement during the read counts as a change
    model, meta, optimizer_state = checkpoint.load(path)
    if "resume" not in meta:
        raise checkpoint.CheckpointError(f"{path} holds final weights, not a training state: resume from "
                                         "OUT/checkpoint.npz")
    saved = meta.get("config")
    if not isinstance(saved, dict):
        raise checkpoint.CheckpointError(f"{path} holds no training settings; start a new run without --resume")
    changed = [f"--{k.replace('_', '-')} {v} (it was {saved[k]})" for k, v in (given or {}).items()
               if v is not None and saved.get(k) is not None and v != saved[k]]
    if changed:
        raise SettingsError(f"--resume continues {path} with the settings it started with; "
                            f"drop {', '.join(changed)}")
    try:
        cfg = Config(**saved)
        optimizer = make_optimizer(cfg, model)
        optimizer.load_state_dict(optimizer_state)
        state = meta["resume"]
        state["metrics"]["train_loss"], state["epoch"], state["step"]  # noqa: B018 (all must be present)
    except (KeyError, TypeError, ValueError) as e:
        raise checkpoint.CheckpointError(f"{path} has a damaged training state ({e}); start a new run "
                                         "without --resume") from None
    return Resumed(path, cfg, model, optimizer, state, stamp)


def _stamp(path: Path) -> tuple[int, ...] | None:
    try:
        s = os.stat(path)
    except OSError:
        return None  # checkpoint.load says what is wrong with the path
    return (s.st_dev, s.st_ino, s.st_size, s.st_mtime_ns)


def validation_size(n: int) -> int:
    """How many of `n` training images to hold out: VAL_SIZE, fewer on a small set so that MIN_TRAIN
    (or five sixths of a set under 1.2 * MIN_TRAIN) remain to train on."""
    return min(VAL_SIZE, max(n // 6, n - MIN_TRAIN))


def split(n: int, val_size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Train and validation indices: a fixed split, the same for every seed."""
    val_size = validation_size(n) if val_size is None else val_size
    order = np.random.default_rng(0).permutation(n)
    return np.sort(order[val_size:]), np.sort(order[:val_size])


def make_optimizer(cfg: Config, model: MLP) -> optim.Optimizer:
    if cfg.optimizer == "sgd":
        return optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adam":
        return optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    raise ValueError(f"unknown optimizer {cfg.optimizer!r}: choose sgd or adam")  # never silently another one


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


def train(cfg: Config, data: MNIST, out: Path, resume: Path | Resumed | None = None,
          log: Callable[[str], None] = print, progress: bool = True, force: bool = False) -> dict:
    """Train, writing OUT/checkpoint.npz each epoch, OUT/model.npz and OUT/metrics.json at the end.

    OUT is locked for the whole run (OUT/.lock), so two runs never mix their files; a folder that holds
    another run's files is refused unless `force` (continuing a run in its own folder is fine).
    Ctrl-C or SIGTERM saves a checkpoint at the next batch boundary and raises KeyboardInterrupt (Terminated
    for SIGTERM); a NaN/inf loss raises Diverged without touching the last good checkpoint.
    resume: a checkpoint to continue, as a path or already read (`start`, `read_resume`); its own settings
    replace `cfg`.
    """
    out = Path(out)
    val_size = validation_size(len(data.train_images))
    if val_size < 1 or len(data.test_labels) == 0:
        raise DataError(f"the data has {len(data.train_images):,} training and {len(data.test_labels):,} test "
                        "images; training needs at least 6 training images (one of them held out for validation) "
                        "and 1 test image")
    out.mkdir(parents=True, exist_ok=True)
    with run_lock(out):
        remove_stale_temps(out, PRODUCTS)  # a run killed mid-write left them; the lock says none is being written
        check_out(out, resume.path if isinstance(resume, Resumed) else resume, force)
        if isinstance(resume, Resumed):
            resume.check_unchanged()  # it was read before OUT was ours
        elif resume is not None:
            resume = read_resume(resume)
        return _train(cfg, data, out, resume, log, progress, split(len(data.train_images), val_size))


def check_out(out: Path, resume: Path | None = None, force: bool = False) -> None:
    """Refuse, before any work, an OUT whose files we could not replace (a FIFO, a symlink, ...), or one that
    holds another run's files, unless `force` or this run continues from a checkpoint in OUT itself."""
    for name in PRODUCTS:
        check_output(out / name)
    found = [name for name in PRODUCTS if (out / name).exists()]
    own = resume is not None and same_file(Path(resume).parent, out)
    if found and not force and not own:
        resumable = "checkpoint.npz" in found and "model.npz" not in found
        hint = f", continue it with --resume {out / 'checkpoint.npz'}" if resumable else ""
        raise FileError(f"{out} already holds a run ({', '.join(found)}); give another --out{hint}, "
                        "or add --force to replace it")


@contextmanager
def run_lock(out: Path) -> Iterator[None]:
    """Hold OUT/.lock (flock) while the block runs, or refuse at once with FileError if another process
    holds it. The kernel releases a flock when its process dies, so a killed run never blocks the next."""
    path = out / LOCK
    while True:
        fd = _open_lock(path)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise FileError(f"{out} is in use by another `micrograd-mnist train` (pid {pid}); wait for it to "
                            "finish, or give another --out") from None
        if _same_inode(fd, path):
            break
        os.close(fd)  # the holder removed the file between our open and our flock: lock the one there now
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        if _same_inode(fd, path):
            os.unlink(path)  # before closing, so no other run can have locked this file meanwhile
        os.close(fd)


def _open_lock(path: Path) -> int:
    not_ours = FileError(f"refusing {path}: it is not a regular file, so not our lock file; remove it or give "
                         "another --out")
    try:  # O_NOFOLLOW: a symlink fails (ELOOP), as do a socket (ENXIO) and a folder (EISDIR)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC, 0o644)
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.ENXIO, errno.EISDIR):
            raise not_ours from None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):  # a FIFO or a device opens
        os.close(fd)
        raise not_ours
    return fd


def _same_inode(fd: int, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path, follow_symlinks=False))
    except FileNotFoundError:
        return False


def _train(cfg: Config, data: MNIST, out: Path, resumed: Resumed | None, log: Callable[[str], None],
           progress: bool, indices: tuple[np.ndarray, np.ndarray]) -> dict:
    train_idx, val_idx = indices
    if resumed is not None:
        cfg, model, opt, state = resumed.cfg, resumed.model, resumed.optimizer, resumed.state
        if state["epoch"] >= cfg.epochs:  # interrupted after its last epoch's checkpoint: only the finish is left
            log(f"{resumed.path} holds every epoch of the run ({cfg.epochs}): nothing left to train; finishing it")
        else:
            log(f"resuming at epoch {state['epoch'] + 1}, batch {state['step']} from {resumed.path}")
    else:
        cfg = cfg.resolved()
        model = MLP(cfg.sizes, cfg.activation, rng=np.random.default_rng(cfg.seed))
        opt = make_optimizer(cfg, model)
        state = {"epoch": 0, "step": 0, "loss_sum": 0.0, "seconds": 0.0,
                 "metrics": {"train_loss": [], "val_accuracy": [], "epoch_seconds": []}}
    metrics = state["metrics"]
    B, n = cfg.batch_size, len(train_idx)
    steps = math.ceil(n / B)
    batches = Batches(data.train_images, data.train_labels, B)  # one pair of buffers, refilled each step
    if state["step"] >= steps and state["epoch"] < cfg.epochs:  # only the training set's size can tell
        raise checkpoint.CheckpointError(f"{resumed.path} says batch {state['step']} of an epoch of {steps} batches: "
                                         "it was saved for another training set; start a new run without --resume")

    def save_state(path: Path) -> None:
        checkpoint.save(path, model, {"config": asdict(cfg), "resume": state}, opt.state_dict())

    # whether OUT/checkpoint.npz holds this run's own state: resumed from that very folder, or saved since
    saved = resumed is not None and same_file(resumed.path.parent, out)
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
                for step, (x, t) in enumerate(batches.epoch(order, state["step"]), state["step"]):
                    if stop.requested:
                        raise stop.interruption()
                    loss = F.cross_entropy(model(x), t)
                    value = float(loss.data)
                    if not math.isfinite(value):
                        if saved:
                            kept = f"{out / 'checkpoint.npz'} (the last good state) is kept"
                        elif (out / "checkpoint.npz").exists():  # --force over another run, before our first save
                            kept = f"nothing of this run was saved ({out / 'checkpoint.npz'} is the earlier run's)"
                        else:
                            kept = "nothing was saved"
                        raise Diverged(f"loss became {value} at epoch {epoch + 1}, batch {step + 1}; stopped, {kept}. "
                                       f"Try a smaller --lr (this run used {cfg.lr:g})")
                    opt.zero_grad()
                    loss.backward()
                    updating = True  # weights and the batch counter must change together
                    opt.step()
                    state["loss_sum"] += value * len(t)
                    state["step"] = step + 1
                    updating = False
                    bar.update(len(t), value)
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
            saved = True
            log(f"epoch {epoch + 1:2d}/{cfg.epochs}  loss {metrics['train_loss'][-1]:.4f}  "
                f"val {metrics['val_accuracy'][-1]:.2%}  {seconds:.1f} s  {n / seconds:,.0f} img/s")
        if stop.requested:  # asked during the last epoch's validation: its checkpoint is saved, stop there
            log(f"interrupted: {out / 'checkpoint.npz'} holds all {cfg.epochs} epochs; finish with "
                f"--resume {out / 'checkpoint.npz'}")
            raise stop.interruption()

    test = report(model, data.test_images, data.test_labels)
    notes = [f"per_class_accuracy[{k}] is null: the test set has no images of class {k}"
             for k, share in enumerate(test.per_class) if share is None]
    metrics |= {
        "test_accuracy": test.accuracy,
        "per_class_accuracy": test.per_class,
        "epochs": cfg.epochs,
        "parameters": model.num_parameters(),
        "config": asdict(cfg),
    }
    if notes:
        metrics["notes"] = notes
    checkpoint.save(out / "model.npz", model, {"config": asdict(cfg)})
    write_json(out / "metrics.json", metrics)
    return metrics


class ctrl_c_at_batch_boundaries:
    """Turn the first Ctrl-C (or SIGTERM) into a request that the loop honours between batches, so a
    checkpoint never holds weights from one batch and a counter from another. A second one interrupts
    at once. Signals can only be caught in the main thread; elsewhere this does nothing."""

    requested = False
    signum = signal.SIGINT
    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __enter__(self) -> ctrl_c_at_batch_boundaries:
        self.previous = {}
        if threading.current_thread() is threading.main_thread():
            self.previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        return self

    def _handle(self, signum, frame) -> None:
        if self.requested:
            self.signum = signum
            raise self.interruption()
        self.requested, self.signum = True, signum

    def interruption(self) -> KeyboardInterrupt:
        """What the request raises: Terminated for SIGTERM (exit 143), KeyboardInterrupt for Ctrl-C (130)."""
        return Terminated() if self.signum == signal.SIGTERM else KeyboardInterrupt()

    def __exit__(self, *exc) -> None:
        for s, previous in self.previous.items():
            signal.signal(s, previous)


def write_json(path: Path, obj: dict) -> None:
    """Always valid JSON: a NaN or infinity becomes null, and a line in obj's "notes" says where it was."""
    notes: list[str] = []
    clean = _finite(obj, "", notes)
    if notes:
        clean["notes"] = [*clean.get("notes", []), *notes]
    text = json.dumps(clean, indent=2, allow_nan=False)
    atomic_write(path, lambda f: f.write(text.encode()))


def _finite(obj, where: str, notes: list[str]):
    if isinstance(obj, float) and not math.isfinite(obj):
        notes.append(f"{where} is null: it was {obj}")
        return None
    if isinstance(obj, dict):
        return {k: _finite(v, f"{where}.{k}" if where else str(k), notes) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v, f"{where}[{i}]", notes) for i, v in enumerate(obj)]
    return obj
