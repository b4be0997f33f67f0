"""IDX files as hostile input: bounded memory for gzip bombs and forged headers, FIFOs refused without hanging,
headers checked before data, empty sets and missing classes refused, and random bytes raising only our errors.

Memory bounds are checked by reading in a subprocess under RLIMIT_AS = 1 GiB: it must end with a one-line
DataError, not a MemoryError traceback. Nothing here is timed.
"""

from __future__ import annotations

import gzip
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from micrograd_mnist import data

GIB = 1 << 30


def idx_header(dims: tuple[int, ...], magic_ndim: int | None = None) -> bytes:
    ndim = len(dims) if magic_ndim is None else magic_ndim
    return bytes([0, 0, data.UBYTE, ndim]) + struct.pack(f">{len(dims)}I", *dims)


def gzip_bomb(path: Path, header: bytes, gib: int) -> None:
    """`header`, then `gib` GiB of zeros, as one gzip member of about 1 MB per GiB.

    After a full flush deflate starts afresh, so one 64 MiB block of zeros compressed once can be repeated.
    The trailer's CRC is left 0: a reader that stops where the header says never gets that far.
    """
    block = 64 << 20
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = c.compress(header) + c.flush(zlib.Z_FULL_FLUSH)
    zeros = c.compress(bytes(block)) + c.flush(zlib.Z_FULL_FLUSH)
    n = gib * GIB // block
    with open(path, "wb") as f:
        f.write(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff" + head)
        for _ in range(n):
            f.write(zeros)
        f.write(c.flush() + struct.pack("<II", 0, (len(header) + n * block) % (1 << 32)))


READ_ONE = """
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))
from micrograd_mnist import data
try:
    array = data.read_idx(sys.argv[1])
except data.DataError as e:  # every problem with an IDX file, a FileError's among them
    print(f"{{type(e).__name__}}: {{e}}")
else:
    print(f"read {{array.shape}}")
"""


def read_in_subprocess(path: Path, limit: int = GIB, timeout: float = 120) -> str:
    """What read_idx(path) ends with in a fresh interpreter under an address-space limit: one line, no traceback."""
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}  # each BLAS thread reserves address space of its own
    done = subprocess.run([sys.executable, "-c", READ_ONE.format(limit=limit), str(path)], capture_output=True,
                          text=True, timeout=timeout, env=env)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert len(lines) == 1, done.stdout
    return lines[0]


# --- memory: bounded by the header, never by what the gzip stream inflates to ------------------------------------

def test_a_gzip_bomb_behind_an_mnist_header_is_read_no_further_than_the_header_says(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    gzip_bomb(path, idx_header((60000, 28, 28)), gib=3)
    assert path.stat().st_size < 4_000_000  # 3 MB that inflate to 3 GiB: the old reader held 6.2 GB at its peak
    line = read_in_subprocess(path)
    assert line.startswith(f"DataError: {path}: trailing bytes: a 60000 x 28 x 28 IDX file has 47040016 bytes"), line


def test_a_gzip_bomb_declaring_the_largest_allowed_size_stays_within_bounds(tmp_path):
    path = tmp_path / "big.gz"
    side = int(data.MAX_IDX_BYTES ** 0.5)
    gzip_bomb(path, idx_header((1, side, side)), gib=2)
    line = read_in_subprocess(path)
    assert line.startswith("DataError: ") and "trailing bytes" in line, line


@pytest.mark.parametrize("gz", [False, True])
def test_a_header_declaring_a_huge_size_is_refused_from_the_header(tmp_path, gz):
    path = tmp_path / "forged"
    header = idx_header((0xFFFFFFFF, 0xFFFFFFFF, 28))
    path.write_bytes(gzip.compress(header + bytes(1000)) if gz else header + bytes(1000))
    line = read_in_subprocess(path)
    assert line.startswith(f"DataError: {path}: the header declares a 4294967295 x 4294967295 x 28 array"), line
    assert f"{data.MAX_IDX_BYTES:,}" in line


def test_a_gzip_file_declaring_more_than_it_holds_is_truncated_not_allocated(tmp_path):
    path = tmp_path / "short.gz"
    path.write_bytes(gzip.compress(idx_header((1, 16000, 16000)) + bytes(100)))  # 256 MB declared, 100 bytes there
    # 320 MiB: room for the interpreter and numpy (about 110 MiB), not for a buffer of the declared size
    line = read_in_subprocess(path, limit=320 << 20)
    assert line.startswith(f"DataError: {path}: truncated: a 1 x 16000 x 16000 IDX file"), line


# --- only regular files ------------------------------------------------------------------------------------------

FIFO_READ = """
import os, sys
from micrograd_mnist import data
os.mkfifo(sys.argv[1])
try:
    data.read_idx(sys.argv[1])
except data.DataError as e:  # FileError (not a regular file) becomes a DataError, as every IDX problem
    print(e)
"""


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path):
    fifo = tmp_path / "train-images-idx3-ubyte"
    # a subprocess with a timeout: the old reader waited forever for a writer, and must not hang the suite
    done = subprocess.run([sys.executable, "-c", FIFO_READ, str(fifo)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (f"{fifo} is a FIFO (named pipe), not a regular file; give the IDX file itself")


def test_a_folder_is_a_one_line_data_error(tmp_path):
    with pytest.raises(data.DataError, match="is a folder; give the IDX file itself"):
        data.read_idx(tmp_path)


# --- the header decides, before any data is read ---------------------------------------------------------------

def test_images_must_have_three_dimensions_said_from_the_header(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(idx_header((1,) * 255))  # 255 dimensions and no data at all: the header is wrong first
    with pytest.raises(data.DataError, match=r"magic number 2303, not 2051: its header gives 255 dimensions, "
                                             r"an image file \(count x rows x cols\) has 3") as error:
        data.read_idx(path, ndim=3)
    assert "\n" not in str(error.value)


def test_labels_must_have_one_dimension(tmp_path):
    path = tmp_path / "t10k-labels-idx1-ubyte"
    data.write_idx(path, np.zeros((3, 28, 28), np.uint8))
    with pytest.raises(data.DataError, match=r"magic number 2051, not 2049: its header gives 3 dimensions, "
                                             r"a label file \(one label per image\) has 1"):
        data.read_idx(path, ndim=1)


def make_sets(folder: Path, n_train: int = 5, test_labels: list[int] | None = None) -> None:
    test_labels = list(range(10)) if test_labels is None else test_labels
    rng = np.random.default_rng(0)
    arrays = (rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8), rng.integers(0, 10, n_train, dtype=np.uint8),
              rng.integers(0, 256, (len(test_labels), 28, 28), dtype=np.uint8), np.array(test_labels, np.uint8))
    for name, array in zip(data.FILES, arrays):
        data.write_idx(folder / name, array)


def test_a_dataset_with_an_absurd_dimension_count_is_one_line(tmp_path):
    make_sets(tmp_path)
    (tmp_path / "train-images-idx3-ubyte").write_bytes(idx_header((2,) * 200) + bytes(100))
    with pytest.raises(data.DataError, match="train-images-idx3-ubyte: magic number 2248, not 2051"):
        data.load(data_dir=tmp_path)


def test_an_empty_training_set_is_refused(tmp_path):
    make_sets(tmp_path, n_train=0)
    with pytest.raises(data.DataError, match=r"train-images-idx3-ubyte: no images \(its header says 0 x 28 x 28\)"):
        data.load(data_dir=tmp_path)


def test_a_test_set_missing_classes_names_them_and_the_file(tmp_path):
    make_sets(tmp_path, test_labels=[0, 1, 2, 4, 5, 6, 8, 9, 9])
    with pytest.raises(data.DataError) as error:
        data.load(data_dir=tmp_path, every_class=True)
    message = str(error.value)
    assert message.startswith(f"{tmp_path / 't10k-labels-idx1-ubyte'}: the test set has no image of classes 3, 7")
    assert "\n" not in message
    # a demo that reads one test image does not need every class
    assert len(data.load(data_dir=tmp_path, log=lambda line: None).test_labels) == 9


def test_a_complete_test_set_passes_the_class_check(tmp_path):
    make_sets(tmp_path)
    assert sorted(data.load(data_dir=tmp_path, every_class=True, log=lambda line: None).test_labels) == list(range(10))


# --- random bytes and mutations: our errors only, or an array that is what its header says --------------------

VALID = idx_header((2, 3, 4)) + bytes(range(24))


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    """One folder for every example (each overwrites the same file): hypothesis reruns a test, not its fixtures."""
    return tmp_path_factory.mktemp("fuzz")


def check_read(folder: Path, blob: bytes) -> None:
    path = folder / "fuzzed"
    path.write_bytes(blob)
    try:
        array = data.read_idx(path)
    except data.DataError as e:
        assert "\n" not in str(e)
        return
    raw = gzip.decompress(blob) if blob[:2] == b"\x1f\x8b" else blob
    ndim = raw[3]
    dims = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    assert array.shape == dims and array.dtype == np.uint8
    assert len(raw) == 4 + 4 * ndim + array.size
    assert array.tobytes() == raw[4 + 4 * ndim:]


@given(st.binary(max_size=200))
def test_random_bytes(scratch, blob):
    check_read(scratch, blob)


@given(st.binary(max_size=60))
def test_random_bytes_after_the_gzip_magic(scratch, blob):
    check_read(scratch, b"\x1f\x8b" + blob)


def mutations(valid: bytes):
    """Flip, drop, insert or truncate bytes of a valid file."""
    index = st.integers(0, len(valid) - 1)
    flip = st.tuples(st.just("flip"), index, st.integers(1, 255))
    drop = st.tuples(st.just("drop"), index, st.just(0))
    insert = st.tuples(st.just("insert"), index, st.integers(0, 255))
    cut = st.tuples(st.just("cut"), index, st.just(0))
    return st.lists(st.one_of(flip, drop, insert, cut), min_size=1, max_size=4)


def mutate(valid: bytes, edits) -> bytes:
    blob = bytearray(valid)
    for kind, i, byte in edits:
        i %= max(len(blob), 1)
        if kind == "flip" and blob:
            blob[i] ^= byte
        elif kind == "drop" and blob:
            del blob[i]
        elif kind == "insert":
            blob.insert(i, byte)
        elif kind == "cut":
            del blob[i:]
    return bytes(blob)


@given(mutations(VALID))
def test_mutated_raw_idx(scratch, edits):
    check_read(scratch, mutate(VALID, edits))


GZIPPED = gzip.compress(VALID, mtime=0)


@given(mutations(GZIPPED))
def test_mutated_gzipped_idx(scratch, edits):
    check_read(scratch, mutate(GZIPPED, edits))


@given(st.lists(st.integers(0, 300), min_size=1, max_size=4), st.integers(-3, 3))
def test_a_mutated_header_inside_valid_gzip(scratch, dims, extra):
    """A valid gzip stream around a forged header: the sizes must agree, or one line says why. Beyond 1 MiB the
    payload stops short of what the header claims (up to 300⁴ bytes: making those took gigabytes of memory)."""
    payload = bytes(max(0, min(int(np.prod(dims)), 1 << 20) + extra))
    check_read(scratch, gzip.compress(idx_header(tuple(dims)) + payload))
