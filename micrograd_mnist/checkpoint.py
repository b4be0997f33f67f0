"""Models and training state on disk: one .npz of plain arrays plus JSON metadata.

No pickles anywhere: loading uses `allow_pickle=False`, so a file can only
ever give back numbers and text, never run code. Writes go to a temp file
that is renamed into place, so a crash never leaves half a checkpoint.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from .files import atomic_write
from .nn import MLP

FORMAT = "micrograd-mnist/1"


class CheckpointError(Exception):
    """A checkpoint that can't be used; the message is one line for the user."""


def save(path: str | Path, model: MLP, meta: dict, optimizer_state: dict[str, np.ndarray] | None = None) -> None:
    arrays = {f"param/{k}": v for k, v in model.state_dict().items()}
    arrays |= {f"optim/{k}": v for k, v in (optimizer_state or {}).items()}
    header = {"format": FORMAT, "sizes": model.sizes, "activation": model.activation} | meta
    arrays["meta"] = np.array(json.dumps(header))
    atomic_write(path, lambda f: np.savez(f, **arrays))


def load(path: str | Path) -> tuple[MLP, dict, dict[str, np.ndarray]]:
    """The model, its metadata and any optimizer state; CheckpointError if unusable."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
        if magic != b"PK\x03\x04":  # np.load would take any other file for a pickle
            kind = "a Python pickle, which could run code" if magic[:1] == b"\x80" else "not an .npz archive"
            raise CheckpointError(f"refusing {path}: it is {kind}; micrograd-mnist checkpoints are .npz files "
                                  "written by `micrograd-mnist train`")
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except FileNotFoundError:
        raise CheckpointError(f"no checkpoint at {path}: train one with `micrograd-mnist train --out DIR`") from None
    except IsADirectoryError:
        raise CheckpointError(f"{path} is a folder; give the .npz file in it (model.npz or checkpoint.npz)") from None
    except ValueError as e:
        if "pickle" in str(e):
            raise CheckpointError(f"refusing {path}: it contains pickled Python objects, which could run code; "
                                  "micrograd-mnist checkpoints hold only arrays") from None
        raise CheckpointError(f"{path} is not a readable .npz checkpoint ({e})") from None
    except (OSError, EOFError, zipfile.BadZipFile) as e:
        raise CheckpointError(f"{path} is not a readable .npz checkpoint ({e})") from None
    try:
        meta = json.loads(str(arrays.pop("meta")))
        sizes, activation = [int(n) for n in meta["sizes"]], str(meta["activation"])
    except (KeyError, ValueError, TypeError):
        raise CheckpointError(f"{path} has no valid micrograd-mnist metadata (architecture); "
                              "was it written by `micrograd-mnist train`?") from None
    params = {k.removeprefix("param/"): v for k, v in arrays.items() if k.startswith("param/")}
    # Check the shapes before building anything: a forged header must not make us allocate its sizes.
    expected = {}
    for i, (n_in, n_out) in enumerate(zip(sizes, sizes[1:])):
        expected[f"{2 * i}.weight"], expected[f"{2 * i}.bias"] = (n_in, n_out), (n_out,)
    found = {k: tuple(v.shape) for k, v in params.items()}
    if found != expected or len(sizes) < 2:
        wrong = sorted(set(found.items()) ^ set(expected.items()))[:2]
        raise CheckpointError(f"{path}: its arrays do not match its architecture {sizes} {activation} "
                              f"(first differences: {wrong})")
    try:
        model = MLP(sizes, activation)
        model.load_state_dict(params)
    except (ValueError, TypeError) as e:
        raise CheckpointError(f"{path}: its arrays do not match its architecture {sizes} {activation}: {e}") from None
    optimizer_state = {k.removeprefix("optim/"): v for k, v in arrays.items() if k.startswith("optim/")}
    return model, meta, optimizer_state
