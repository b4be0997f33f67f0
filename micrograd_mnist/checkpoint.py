"""Models and training state on disk: one .npz of plain arrays plus JSON metadata.

No pickles anywhere, and nothing in a file is trusted before it is checked: `load` opens the zip
itself, refuses any member a checkpoint cannot have, reads each `.npy` header and checks its dtype
and shape against the architecture the JSON header declares *before* reading a byte of data (so a
forged header cannot make us allocate its sizes), validates the JSON header against `HEADER`, the
one schema of what a checkpoint says, and refuses NaN or infinite numbers. Whatever is wrong comes
back as a one-line CheckpointError. Writes go to a temp file that is renamed into place, so a crash
never leaves half a checkpoint.
"""

from __future__ import annotations

import json
import math
import re
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np

from . import optim
from .config import DATASETS, PRESETS
from .files import FileError, atomic_write, open_input
from .nn import ACTIVATIONS, MLP

FORMAT = "micrograd-mnist/1"

# Bounds. The biggest network the schema accepts (MAX_PARAMETERS float64 weights, plus Adam's two moments
# of the same size) is 805 MB, so MAX_FILE_BYTES (1 GiB) never refuses a checkpoint we could load, and
# nothing bigger is worth reading: the presets' networks are 13,002 and 109,386 parameters (under 2 MB).
MAX_FILE_BYTES = 2**30
MAX_PARAMETERS = 2**25
MAX_WIDTH = 100_000  # units in one layer (MNIST's input is 784)
MAX_LAYERS = 1_000
MAX_EPOCHS = 100_000  # the metrics lists hold one number per epoch: this keeps the header small
MAX_BATCH = 2**31
MAX_META_BYTES = 2**24  # the JSON header, stored as a 0-d unicode array (4 bytes a character)
MAX_PATH = 4096
# meta, a weight and a bias per layer, and per parameter at most two optimizer buffers (Adam's m and v), plus t
MAX_MEMBERS = 1 + 2 * MAX_LAYERS * 3 + 1
MAX_DIRECTORY_BYTES = MAX_MEMBERS * 512  # the zip's central directory: zipfile parses all of it into memory

OPTIMIZERS = {"sgd": optim.SGD, "adam": optim.Adam}
FLOAT_SIZES = (2, 4, 8)  # float16, float32, float64: what NumPy computes with everywhere
UNREADABLE_FLAGS = 0x1 | 0x20 | 0x40  # zip flag bits: encrypted, patched data, strong encryption
HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
MEMBER = re.compile(r"meta|param/\d{1,5}\.(?:weight|bias)|optim/(?:[a-z]{1,16}\.\d{1,5}|t)")
DAMAGED = "it was edited or damaged: use a checkpoint written by `micrograd-mnist train`"


class CheckpointError(Exception):
    """A checkpoint that can't be used; the message is one line for the user."""


def save(path: str | Path, model: MLP, meta: dict, optimizer_state: dict[str, np.ndarray] | None = None) -> None:
    arrays = {f"param/{k}": v for k, v in model.state_dict().items()}
    arrays |= {f"optim/{k}": v for k, v in (optimizer_state or {}).items()}
    header = {"format": FORMAT, "sizes": model.sizes, "activation": model.activation} | meta
    arrays["meta"] = np.array(json.dumps(header))
    atomic_write(path, lambda f: np.savez(f, **arrays))


# ---------------------------------------------------------------------------------------------------------------
# The schema of the JSON header. A rule takes a value parsed from JSON and returns None when it is valid,
# else what a valid value is (for the message).

Rule = Callable[[object], "str | None"]


def _integer(low: int, high: int | None = None) -> Rule:
    wants = f"an integer from {low:,} to {high:,}" if high is not None else f"an integer >= {low}"
    return lambda v: None if type(v) is int and low <= v and (high is None or v <= high) else wants


def _real(test: Callable[[float], bool], wants: str) -> Rule:
    return lambda v: None if type(v) in (int, float) and math.isfinite(v) and test(v) else wants


def _reals(test: Callable[[float], bool], wants: str) -> Rule:
    item = _real(test, wants)
    return lambda v: None if type(v) is list and all(item(x) is None for x in v) else f"a list of {wants}s"


def _one_of(options) -> Rule:
    options = tuple(options)
    wants = "one of " + ", ".join(map(repr, options))
    return lambda v: None if type(v) is str and v in options else wants


def _sizes(v: object) -> str | None:
    ok = type(v) is list and 2 <= len(v) <= MAX_LAYERS + 1 and all(type(n) is int and n >= 1 for n in v)
    return None if ok else f"a list of 2 to {MAX_LAYERS + 1:,} positive integers (input, hidden..., output sizes)"


def _path_or_none(v: object) -> str | None:
    return None if v is None or (type(v) is str and len(v) <= MAX_PATH) else "a folder name or null"


@dataclass(frozen=True)
class Table:
    """A JSON object: a rule (or a Table) per field; `optional` fields may be absent, and an `open` table
    keeps fields it does not know (the top level, where callers of `save` add their own notes)."""

    fields: dict[str, Rule | Table]
    optional: frozenset[str] = field(default_factory=frozenset)
    open: bool = False


CONFIG = Table({  # training.Config, resolved: every field that a resumed run rebuilds its Config from
    "preset": _one_of(PRESETS),
    "epochs": _integer(1, MAX_EPOCHS),
    "batch_size": _integer(1, MAX_BATCH),
    "lr": _real(lambda x: x > 0, "a positive number"),
    "weight_decay": _real(lambda x: x >= 0, "a number >= 0"),
    "optimizer": _one_of(OPTIMIZERS),
    "momentum": _real(lambda x: 0 <= x < 1, "a number in [0, 1)"),
    "seed": _integer(0),
    "dataset": _one_of(DATASETS),
    "data_dir": _path_or_none,
    "sizes": _sizes,
    "activation": _one_of(ACTIVATIONS),
}, optional=frozenset({"data_dir"}))
RESUME = Table({  # training's state at a batch boundary
    "epoch": _integer(0, MAX_EPOCHS),
    "step": _integer(0),
    "loss_sum": _real(lambda x: x >= 0, "a number >= 0"),
    "seconds": _real(lambda x: x >= 0, "a number >= 0"),
    "metrics": Table({
        "train_loss": _reals(lambda x: x >= 0, "number >= 0"),
        "val_accuracy": _reals(lambda x: 0 <= x <= 1, "number from 0 to 1"),
        "epoch_seconds": _reals(lambda x: x >= 0, "number >= 0"),
    }),
})
HEADER = Table({
    "format": lambda v: None if v == FORMAT else repr(FORMAT),
    "sizes": _sizes,
    "activation": _one_of(ACTIVATIONS),
    "data_dir": _path_or_none,
    "config": CONFIG,  # complete only with "resume": final weights may carry just a few settings
    "resume": RESUME,
}, optional=frozenset({"data_dir", "config", "resume"}), open=True)


def _shown(value: object) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _check_table(value: object, table: Table, where: str, path: Path, partial: frozenset[str]) -> None:
    if type(value) is not dict:
        raise CheckpointError(f"{path}: its header's {where} is {_shown(value)}, not an object; {DAMAGED}")
    unknown = sorted(set(value) - set(table.fields)) if not table.open else []
    if unknown:
        raise CheckpointError(f"{path}: its header's {where} has an unknown field {unknown[0]!r}; {DAMAGED}")
    for key, rule in table.fields.items():
        name = f"{where}.{key}" if where != "header" else key
        if key not in value:
            if key not in table.optional and where not in partial:
                raise CheckpointError(f"{path}: its header has no {name}; {DAMAGED}")
            continue
        if isinstance(rule, Table):
            _check_table(value[key], rule, name, path, partial)
        elif (wants := rule(value[key])) is not None:
            raise CheckpointError(f"{path}: its header's {name} is {_shown(value[key])}, but must be {wants}; "
                                  f"{DAMAGED}")


def check_header(meta: object, path: str | Path) -> None:
    """Refuse (CheckpointError) a JSON header that breaks HEADER or contradicts itself."""
    path = Path(path)
    if type(meta) is not dict or "sizes" not in meta or "activation" not in meta:
        raise CheckpointError(f"{path} has no valid micrograd-mnist metadata (architecture); "
                              "was it written by `micrograd-mnist train`?")
    if "format" in meta and meta["format"] != FORMAT:
        raise CheckpointError(f"{path} is in format {_shown(meta['format'])}, which this micrograd-mnist "
                              f"({FORMAT}) cannot read; use the version that wrote it, or train again")
    resuming = "resume" in meta
    _check_table(meta, HEADER, "header", path, partial=frozenset() if resuming else frozenset({"config"}))
    config = meta.get("config", {})
    for key in ("sizes", "activation"):
        if key in config and config[key] != meta[key]:
            raise CheckpointError(f"{path}: its header's config.{key} {_shown(config[key])} contradicts its "
                                  f"{key} {_shown(meta[key])}; {DAMAGED}")
    if not resuming:
        return
    if "config" not in meta:
        raise CheckpointError(f"{path}: it holds a training state but no config to resume it with; {DAMAGED}")
    state, epochs = meta["resume"], config["epochs"]
    if state["epoch"] > epochs or (state["epoch"] == epochs and state["step"]):
        raise CheckpointError(f"{path}: its training state (epoch {state['epoch']}, batch {state['step']}) is past "
                              f"the end of a {epochs}-epoch run; {DAMAGED}")
    for key, values in state["metrics"].items():
        if len(values) != state["epoch"]:
            raise CheckpointError(f"{path}: its header's resume.metrics.{key} has {len(values)} entries for "
                                  f"{state['epoch']} finished epochs; {DAMAGED}")


# ---------------------------------------------------------------------------------------------------------------
# The arrays a header calls for


def _parameter_shapes(sizes: list[int]) -> dict[str, tuple[int, ...]]:
    """Each parameter's name and shape, in model.parameters() order: Linear layers sit at even indices."""
    shapes = {}
    for i, (n_in, n_out) in enumerate(zip(sizes, sizes[1:])):
        shapes[f"{2 * i}.weight"], shapes[f"{2 * i}.bias"] = (n_in, n_out), (n_out,)
    return shapes


def _optimizer_arrays(optimizer: str | None, shapes: list[tuple[int, ...]]) -> dict[str, tuple[str, tuple]]:
    """The optimizer state arrays a checkpoint may hold, name -> (dtype kinds, shape): a buffer per parameter
    for each of the optimizer's buffers (any optimizer's when the header names none), and Adam's step counts t,
    one integer per parameter (SGD keeps none; an older SGD file's t = 0 is allowed and ignored).
    Integer arrays are step counts, so never negative."""
    states = OPTIMIZERS[optimizer].STATE if optimizer else {s for o in OPTIMIZERS.values() for s in o.STATE}
    arrays = {f"{name}.{i}": ("f", shape) for name in states for i, shape in enumerate(shapes)}
    arrays["t"] = ("iu", (len(shapes),) if optimizer == "adam" else ())  # Adam: one count per parameter
    return arrays


# ---------------------------------------------------------------------------------------------------------------
# Loading

# What zipfile and numpy.lib.format raise on a malformed archive or .npy header (and json on a malformed
# header); only ever caught around those calls, so that our own mistakes still show as tracebacks.
_READ_ERRORS = (OSError, EOFError, ValueError, TypeError, KeyError, IndexError, OverflowError, NotImplementedError,
                RuntimeError, SyntaxError, struct.error, zipfile.BadZipFile, zlib.error)


@contextmanager
def _reading(path: Path, what: str) -> Iterator[None]:
    try:
        yield
    except _READ_ERRORS as e:
        reason = (str(e).splitlines() or [type(e).__name__])[0][:100]
        raise CheckpointError(f"{path} is not a readable .npz checkpoint ({what}: {reason}); "
                              "use a checkpoint written by `micrograd-mnist train`") from None


@dataclass
class _Member:
    info: zipfile.ZipInfo
    dtype: np.dtype
    shape: tuple[int, ...]


def load(path: str | Path) -> tuple[MLP, dict, dict[str, np.ndarray]]:
    """The model, its metadata and any optimizer state; CheckpointError if unusable."""
    path = Path(path)
    with _open(path) as f:
        magic = f.read(4)
        if magic != b"PK\x03\x04":  # np.load would take any other file for a pickle
            kind = "a Python pickle, which could run code" if magic[:1] == b"\x80" else "not an .npz archive"
            raise CheckpointError(f"refusing {path}: it is {kind}; micrograd-mnist checkpoints are .npz files "
                                  "written by `micrograd-mnist train`")
        _check_directory(f, path)
        with _reading(path, "zip"):
            archive = zipfile.ZipFile(f)
        with archive:
            members = _members(archive, path)
            meta = _read_meta(archive, members, path)
            check_header(meta, path)
            expected = _expected(meta, members, path)
            arrays = {}
            for key, member in members.items():
                if key != "meta":
                    with _reading(path, key), archive.open(member.info) as stream:
                        arrays[key] = np.lib.format.read_array(stream, allow_pickle=False)
    for key, array in arrays.items():
        if expected[key][0] == "f" and not np.isfinite(array).all():
            raise CheckpointError(f"{path}: {key} holds NaN or infinite numbers (the run that wrote it diverged); "
                                  "use an earlier checkpoint, or train again with a smaller --lr")
        if expected[key][0] == "iu" and (array < 0).any():  # integer state is a count of steps
            raise CheckpointError(f"{path}: {key}, a step count, holds {int(array.min())}; {DAMAGED}")
    params = {k.removeprefix("param/"): v for k, v in arrays.items() if k.startswith("param/")}
    model = MLP(meta["sizes"], meta["activation"])
    model.load_state_dict(params)
    optimizer_state = {k.removeprefix("optim/"): v for k, v in arrays.items() if k.startswith("optim/")}
    return model, meta, optimizer_state


@contextmanager
def _open(path: Path) -> Iterator[BinaryIO]:
    try:
        f = open_input(path, MAX_FILE_BYTES, "checkpoint")
    except FileNotFoundError:
        raise CheckpointError(f"no checkpoint at {path}: train one with `micrograd-mnist train --out DIR`") from None
    except IsADirectoryError:
        raise CheckpointError(f"{path} is a folder; give the .npz file in it (model.npz or checkpoint.npz)") from None
    except FileError as e:
        raise CheckpointError(str(e)) from None
    except OSError as e:
        raise CheckpointError(f"can't read {path}: {e.strerror or e}") from None
    with f:
        yield f


def _check_directory(f: BinaryIO, path: Path) -> None:
    """Refuse a central directory bigger than a checkpoint's before zipfile parses it all into memory
    (about seven times its size, so a 1 GiB file of tiny entries would cost gigabytes)."""
    with _reading(path, "zip"):
        # zipfile's own reader of the end record, so we check exactly the figures ZipFile will use
        end = zipfile._EndRecData(f)
        f.seek(0)
    if end is None:
        raise CheckpointError(f"{path} is not a readable .npz checkpoint (no zip directory: it is cut short or "
                              "damaged); use a checkpoint written by `micrograd-mnist train`")
    entries, size = end[zipfile._ECD_ENTRIES_TOTAL], end[zipfile._ECD_SIZE]
    if entries > MAX_MEMBERS or size > MAX_DIRECTORY_BYTES:
        raise CheckpointError(f"refusing {path}: it declares {entries:,} members in a {size:,}-byte directory, "
                              f"more than a checkpoint has ({MAX_MEMBERS:,}); {DAMAGED}")


def _members(archive: zipfile.ZipFile, path: Path) -> dict[str, _Member]:
    """Every member by array name, each checked for its name, size, dtype and shape from its .npy header."""
    members: dict[str, _Member] = {}
    budget = MAX_FILE_BYTES
    for info in archive.infolist():
        name = info.filename
        if not name.endswith(".npy"):
            raise CheckpointError(f"refusing {path}: it holds {_shown(name)}, which is not an .npy array; "
                                  "checkpoints hold only arrays")
        key = name.removesuffix(".npy")
        if not MEMBER.fullmatch(key):
            raise CheckpointError(f"refusing {path}: it holds {_shown(name)}, which is no part of a checkpoint "
                                  "(meta, param/..., optim/...); use one written by `micrograd-mnist train`")
        if key in members:
            raise CheckpointError(f"refusing {path}: it holds {name} twice; {DAMAGED}")
        if info.flag_bits & UNREADABLE_FLAGS or info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise CheckpointError(f"refusing {path}: {name} is encrypted or compressed in a way .npz files "
                                  f"never are; {DAMAGED}")
        budget -= info.file_size
        if budget < 0:  # a deflated member may claim far more than the file holds: a zip bomb
            raise CheckpointError(f"refusing {path}: its arrays claim more than {MAX_FILE_BYTES:,} bytes, more "
                                  f"than a checkpoint can hold; {DAMAGED}")
        members[key] = _header(archive, info, key, path)
    return members


def _header(archive: zipfile.ZipFile, info: zipfile.ZipInfo, key: str, path: Path) -> _Member:
    """A member's dtype and shape, read from its .npy header alone and checked before any data is read."""
    with _reading(path, key), archive.open(info) as stream:
        version = np.lib.format.read_magic(stream)
        if version not in HEADER_READERS:
            raise CheckpointError(f"{path}: {key} is an .npy file of version {version}, which checkpoints never "
                                  f"use; {DAMAGED}")
        shape, _, dtype = HEADER_READERS[version](stream)
        offset = stream.tell()
    if dtype.hasobject:
        raise CheckpointError(f"refusing {path}: {key} holds pickled Python objects, which could run code; "
                              "micrograd-mnist checkpoints hold only arrays of numbers")
    if dtype.fields is not None or dtype.subdtype is not None:
        raise CheckpointError(f"refusing {path}: {key} has a structured dtype ({dtype}); checkpoints hold only "
                              f"plain arrays of numbers; {DAMAGED}")
    if dtype.kind == "c":
        raise CheckpointError(f"refusing {path}: {key} holds complex numbers ({dtype}); checkpoints hold real "
                              f"numbers; {DAMAGED}")
    if key == "meta":
        plain = dtype.kind == "U"  # the header, as JSON text
    else:
        plain = (dtype.kind == "f" and dtype.itemsize in FLOAT_SIZES) or dtype.kind in "iu"
    if not plain:
        raise CheckpointError(f"refusing {path}: {key} has dtype {dtype}, which checkpoints never hold; {DAMAGED}")
    count = math.prod(shape)
    if len(shape) > 2 or any(n < 0 for n in shape) or count > MAX_PARAMETERS:
        raise CheckpointError(f"refusing {path}: {key} declares shape {shape}, which no checkpoint array has "
                              f"(at most 2 dimensions and {MAX_PARAMETERS:,} numbers); {DAMAGED}")
    if key == "meta" and (shape != () or dtype.itemsize > MAX_META_BYTES):
        raise CheckpointError(f"refusing {path}: its metadata is a {shape} array of {dtype}, not one JSON text "
                              f"of at most {MAX_META_BYTES:,} bytes; {DAMAGED}")
    if info.file_size != offset + count * dtype.itemsize:
        raise CheckpointError(f"{path}: {key} is {info.file_size:,} bytes, but its header says "
                              f"{offset + count * dtype.itemsize:,}; {DAMAGED}")
    return _Member(info, dtype, shape)


def _read_meta(archive: zipfile.ZipFile, members: dict[str, _Member], path: Path) -> object:
    if "meta" not in members:
        raise CheckpointError(f"{path} has no valid micrograd-mnist metadata (architecture); "
                              "was it written by `micrograd-mnist train`?")
    with _reading(path, "meta"):
        with archive.open(members["meta"].info) as stream:
            text = str(np.lib.format.read_array(stream, allow_pickle=False))
        try:
            return json.loads(text)
        except ValueError:
            raise CheckpointError(f"{path} has no valid micrograd-mnist metadata (its header is not JSON); "
                                  "was it written by `micrograd-mnist train`?") from None


def _expected(meta: dict, members: dict[str, _Member], path: Path) -> dict[str, tuple[str, tuple]]:
    """Check every array against what the (valid) header calls for; what each one must be, by key."""
    sizes, activation = meta["sizes"], meta["activation"]
    shapes = _parameter_shapes(sizes)
    wanted = {f"param/{k}": ("f", shape) for k, shape in shapes.items()}
    found = {k: m.shape for k, m in members.items() if k.startswith("param/")}
    missing, extra = sorted(set(wanted) - set(found)), sorted(set(found) - set(wanted))
    wrong = [f"{k} has shape {found[k]}, the architecture needs {wanted[k][1]}"
             for k in wanted if k in found and found[k] != wanted[k][1]]
    if missing or extra or wrong:
        differences = ([f"no {', '.join(missing[:3])}"] if missing else []) + \
                      ([f"an unexpected {', '.join(extra[:3])}"] if extra else []) + wrong[:2]
        raise CheckpointError(f"{path}: its arrays do not match its architecture {sizes} {activation} "
                              f"({'; '.join(differences)}); use the checkpoint written with this header")
    # after the shapes, so that a header that lies about its arrays is reported as such
    if max(sizes) > MAX_WIDTH or sum(math.prod(s) for s in shapes.values()) > MAX_PARAMETERS:
        raise CheckpointError(f"refusing {path}: its architecture {sizes} is beyond what micrograd-mnist loads "
                              f"(layers of at most {MAX_WIDTH:,} units, {MAX_PARAMETERS:,} parameters in all)")
    optimizer = meta.get("config", {}).get("optimizer")
    allowed = _optimizer_arrays(optimizer, list(shapes.values()))
    wanted |= {f"optim/{k}": v for k, v in allowed.items()}
    for key in members:
        if key != "meta" and key not in wanted:
            keeps = ", ".join(sorted({re.sub(r"\.\d+$", ".<i>", k) for k in allowed}))
            who = f"the {OPTIMIZERS[optimizer].__name__} optimizer" if optimizer else "an optimizer"
            raise CheckpointError(f"{path}: {key} is no state of {who} of this network (it keeps {keeps}); "
                                  f"{DAMAGED}")
    for key, member in members.items():
        if key == "meta":
            continue
        kinds, shape = wanted[key]
        if member.dtype.kind not in kinds or member.shape != shape:
            what = "floating-point" if kinds == "f" else "integer"
            raise CheckpointError(f"{path}: {key} is a {member.shape} array of {member.dtype}, but must be a "
                                  f"{shape} array of {what} numbers; {DAMAGED}")
    return wanted
