"""Checkpoints on disk: plain arrays plus JSON, never pickles, written atomically."""

from __future__ import annotations

import errno
import json
import os
import pickle
import stat
import zipfile
from pathlib import Path

import numpy as np
import pytest

from micrograd_mnist import checkpoint, files, optim
from micrograd_mnist.checkpoint import CheckpointError
from micrograd_mnist.files import atomic_write, atomic_write_bytes
from micrograd_mnist.nn import MLP
from micrograd_mnist.tensor import Tensor

SIZES = [6, 5, 3]


def small_model(seed: int = 0, sizes=SIZES, activation: str = "tanh") -> MLP:
    return MLP(sizes, activation, rng=np.random.default_rng(seed))


def trained_optimizer(model: MLP, kind: str) -> optim.Optimizer:
    """An optimizer that has taken two steps, so its buffers are not trivial."""
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9) if kind == "sgd" else optim.Adam(model.parameters())
    x = Tensor(np.random.default_rng(1).standard_normal((4, SIZES[0])).astype(np.float32))
    for _ in range(2):
        opt.zero_grad()
        (model(x) ** 2).mean().backward()
        opt.step()
    return opt


def npz(path: Path, **arrays) -> Path:
    """A .npz written by NumPy directly, bypassing checkpoint.save."""
    np.savez(path, **arrays)
    return path


def meta_array(**header) -> np.ndarray:
    return np.array(json.dumps({"format": checkpoint.FORMAT, "sizes": SIZES, "activation": "tanh"} | header))


def one_line_error(path: Path) -> str:
    with pytest.raises(CheckpointError) as info:
        checkpoint.load(path)
    message = str(info.value)
    assert message and "Traceback" not in message and "\n" not in message
    error = info.value  # no chained low-level exception: raised fresh or `from None`
    assert error.__cause__ is None and (error.__context__ is None or error.__suppress_context__)
    return message


# ---------------------------------------------------------------------------------------------------------------
# Round trip


@pytest.mark.parametrize("kind", ["sgd", "adam"])
def test_round_trip_keeps_weights_meta_and_optimizer_state(tmp_path, kind):
    model = small_model()
    opt = trained_optimizer(model, kind)
    config = {"preset": "seed", "epochs": 3, "batch_size": 4, "lr": 0.1, "weight_decay": 0.0, "optimizer": kind,
              "momentum": 0.9, "seed": 7, "dataset": "mnist", "sizes": SIZES, "activation": "tanh"}
    metrics = {"train_loss": [2.5, 1.25], "val_accuracy": [0.5, 0.75], "epoch_seconds": [1.0, 2.0]}
    meta = {"config": config, "resume": {"epoch": 2, "step": 3, "loss_sum": 0.1 + 0.2, "seconds": 0.5,
                                         "metrics": metrics}}
    checkpoint.save(tmp_path / "c.npz", model, meta, opt.state_dict())

    loaded, loaded_meta, loaded_state = checkpoint.load(tmp_path / "c.npz")
    assert isinstance(loaded, MLP) and loaded.sizes == SIZES and loaded.activation == "tanh"
    original = model.state_dict()
    assert set(loaded.state_dict()) == set(original) == {"0.weight", "0.bias", "2.weight", "2.bias"}
    for name, array in loaded.state_dict().items():
        assert array.dtype == np.float32
        np.testing.assert_array_equal(array, original[name])
    assert loaded_meta["config"] == meta["config"]
    assert loaded_meta["resume"] == meta["resume"]  # floats survive exactly: 0.30000000000000004
    assert loaded_meta["sizes"] == SIZES and loaded_meta["activation"] == "tanh"
    expected_state = opt.state_dict()
    assert set(loaded_state) == set(expected_state) and len(loaded_state) > 1
    for name, array in expected_state.items():
        np.testing.assert_array_equal(loaded_state[name], array)

    # and the loaded model computes what the original did
    x = np.random.default_rng(2).standard_normal((3, SIZES[0])).astype(np.float32)
    np.testing.assert_array_equal(loaded(x).data, model(x).data)
    # a fresh optimizer takes the state back
    fresh = optim.SGD(loaded.parameters(), lr=0.1, momentum=0.9) if kind == "sgd" else optim.Adam(loaded.parameters())
    fresh.load_state_dict(loaded_state)
    for name, array in fresh.state_dict().items():
        np.testing.assert_array_equal(array, expected_state[name])


def test_final_weights_have_no_optimizer_state(tmp_path):
    checkpoint.save(tmp_path / "m.npz", small_model(), {})
    _, meta, state = checkpoint.load(tmp_path / "m.npz")
    assert state == {}
    assert meta == {"format": checkpoint.FORMAT, "sizes": SIZES, "activation": "tanh"}


def test_file_holds_only_plain_arrays(tmp_path):
    checkpoint.save(tmp_path / "c.npz", small_model(), {"x": 1}, trained_optimizer(small_model(), "sgd").state_dict())
    with zipfile.ZipFile(tmp_path / "c.npz") as z:
        names = z.namelist()
    assert "meta.npy" in names and "param/0.weight.npy" in names
    with np.load(tmp_path / "c.npz", allow_pickle=False) as archive:  # would raise on any object array
        for name in archive.files:
            assert archive[name].dtype != object


def test_save_accepts_str_paths_and_overwrites(tmp_path):
    path = str(tmp_path / "c.npz")
    checkpoint.save(path, small_model(seed=1), {})
    checkpoint.save(path, small_model(seed=2), {})
    loaded = checkpoint.load(path)[0].state_dict()
    np.testing.assert_array_equal(loaded["0.weight"], small_model(seed=2).state_dict()["0.weight"])
    assert os.listdir(tmp_path) == ["c.npz"]


# ---------------------------------------------------------------------------------------------------------------
# Refusals


@pytest.mark.parametrize("where", ["param/0.weight", "meta", "optim/buffers.0"])
def test_refuses_pickled_object_arrays(tmp_path, where):
    arrays = {f"param/{k}": v for k, v in small_model().state_dict().items()} | {"meta": meta_array()}
    arrays[where] = np.array([{"a": 1}], dtype=object)
    message = one_line_error(npz(tmp_path / "evil.npz", **arrays))
    assert "pickle" in message and "evil.npz" in message


def test_refuses_a_pickle_that_would_run_code(tmp_path):
    ran = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (ran,))

    arrays = {f"param/{k}": v for k, v in small_model().state_dict().items()} | {"meta": meta_array()}
    arrays["param/0.bias"] = np.array([Payload()], dtype=object)
    assert "pickle" in one_line_error(npz(tmp_path / "evil.npz", **arrays))
    assert not ran.exists()


def test_refuses_weights_whose_shapes_do_not_match_the_architecture(tmp_path):
    arrays = {f"param/{k}": v for k, v in small_model().state_dict().items()}
    arrays["param/2.weight"] = np.zeros((5, 4), dtype=np.float32)  # the model needs (5, 3)
    message = one_line_error(npz(tmp_path / "bad.npz", meta=meta_array(), **arrays))
    assert "2.weight" in message and "(5, 3)" in message


def test_refuses_weights_of_another_architecture(tmp_path):
    checkpoint.save(tmp_path / "c.npz", small_model(sizes=[6, 4, 3]), {})
    with np.load(tmp_path / "c.npz") as archive:
        arrays = dict(archive)
    arrays["meta"] = meta_array()  # claims 6-5-3
    message = one_line_error(npz(tmp_path / "lying.npz", **arrays))
    assert "do not match its architecture [6, 5, 3]" in message and "the architecture needs (6, 5)" in message


def test_refuses_missing_or_extra_weights(tmp_path):
    arrays = {f"param/{k}": v for k, v in small_model().state_dict().items()}
    missing = dict(arrays)
    del missing["param/2.bias"]
    assert "(no param/2.bias)" in one_line_error(npz(tmp_path / "missing.npz", meta=meta_array(), **missing))
    extra = arrays | {"param/4.weight": np.zeros((3, 3), dtype=np.float32)}
    assert "an unexpected param/4.weight" in one_line_error(npz(tmp_path / "extra.npz", meta=meta_array(), **extra))


@pytest.mark.parametrize("meta, reason", [
    (None, "no valid micrograd-mnist metadata (architecture)"),
    ("not json", "its header is not JSON"),
    ("[1, 2]", "no valid micrograd-mnist metadata (architecture)"),
    ('{"sizes": [6, 5, 3]}', "no valid micrograd-mnist metadata (architecture)"),
    ('{"activation": "relu"}', "no valid micrograd-mnist metadata (architecture)"),
    ('{"sizes": [6, 5, 3], "activation": "relu"}', "its header has no format"),
    # with the format present, so each case reaches the check it is about
    (json.dumps({"format": checkpoint.FORMAT, "sizes": [6], "activation": "relu"}), "its header's sizes is [6]"),
    (json.dumps({"format": checkpoint.FORMAT, "sizes": [6, 5, 3], "activation": "gelu"}),
     "its header's activation is \"gelu\""),
    (json.dumps({"format": checkpoint.FORMAT, "sizes": "abc", "activation": "relu"}), "its header's sizes is \"abc\""),
])
def test_refuses_missing_or_invalid_metadata(tmp_path, meta, reason):
    arrays = {f"param/{k}": v for k, v in small_model().state_dict().items()}
    if meta is not None:
        arrays["meta"] = np.array(meta)
    assert reason in one_line_error(npz(tmp_path / "c.npz", **arrays))


def test_missing_file(tmp_path):
    message = one_line_error(tmp_path / "nowhere.npz")
    assert "nowhere.npz" in message


@pytest.mark.parametrize("content", [b"", b"\x00", b"PK\x03\x04 truncated zip", b"x" * 1000, b"hello\n"])
def test_refuses_files_that_are_not_npz(tmp_path, content):
    path = tmp_path / "junk.npz"
    path.write_bytes(content)
    message = one_line_error(path)
    assert "junk.npz" in message
    assert "pickle" not in message  # garbage is garbage, not a pickle


def test_refuses_a_plain_npy_file(tmp_path):
    np.save(tmp_path / "weights.npy", np.zeros((3, 3), dtype=np.float32))
    assert "weights.npy" in one_line_error(tmp_path / "weights.npy")


def test_refuses_a_bare_pickle_without_running_it(tmp_path):
    ran = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (ran,))

    (tmp_path / "model.npz").write_bytes(pickle.dumps({"weights": Payload()}, protocol=4))
    assert "pickle" in one_line_error(tmp_path / "model.npz")
    assert not ran.exists()


def test_refuses_a_truncated_checkpoint(tmp_path):
    checkpoint.save(tmp_path / "c.npz", small_model(), {}, trained_optimizer(small_model(), "adam").state_dict())
    data = (tmp_path / "c.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    assert "cut short or damaged" in one_line_error(tmp_path / "cut.npz")


def test_refuses_a_directory(tmp_path):
    assert "is a folder; give the .npz file in it" in one_line_error(tmp_path)


# ---------------------------------------------------------------------------------------------------------------
# Atomic writes


class Boom(Exception):
    pass


def half_then_fail(f) -> None:
    f.write(b"half a fi")
    f.flush()
    raise Boom


def test_failed_write_leaves_the_old_file_and_no_temp_files(tmp_path):
    target = tmp_path / "file.bin"
    atomic_write_bytes(target, b"old contents")
    with pytest.raises(Boom):
        atomic_write(target, half_then_fail)
    assert target.read_bytes() == b"old contents"
    assert os.listdir(tmp_path) == ["file.bin"]


def test_failed_first_write_creates_nothing(tmp_path):
    with pytest.raises(Boom):
        atomic_write(tmp_path / "new.bin", half_then_fail)
    assert os.listdir(tmp_path) == []


def test_interrupted_write_cleans_up_too(tmp_path):
    atomic_write_bytes(tmp_path / "f", b"old")

    def interrupted(f) -> None:
        f.write(b"partial")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(tmp_path / "f", interrupted)
    assert (tmp_path / "f").read_bytes() == b"old" and os.listdir(tmp_path) == ["f"]


def test_failed_checkpoint_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.npz"
    checkpoint.save(path, small_model(seed=1), {"epoch": 1})
    before = path.read_bytes()

    def savez_then_fail(file, **arrays):
        file.write(b"PK\x03\x04")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(checkpoint.np, "savez", savez_then_fail)
    with pytest.raises(OSError, match="No space left on device"):  # the disk's own error, passed on
        checkpoint.save(path, small_model(seed=2), {"epoch": 2})
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["checkpoint.npz"]
    assert checkpoint.load(path)[1]["epoch"] == 1


def test_atomic_write_creates_folders_and_gives_normal_permissions(tmp_path):
    target = tmp_path / "a" / "b" / "out.bin"
    old = os.umask(0o022)
    try:
        atomic_write_bytes(target, b"hello")
    finally:
        os.umask(old)
    assert target.read_bytes() == b"hello"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644  # not mkstemp's 0600
    assert os.listdir(target.parent) == ["out.bin"]


def test_atomic_write_follows_the_umask_and_keeps_a_replaced_files_permissions(tmp_path):
    old = os.umask(0o077)
    try:
        atomic_write_bytes(tmp_path / "private.bin", b"new")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "private.bin").stat().st_mode) == 0o600
    kept = tmp_path / "kept.bin"
    kept.write_bytes(b"old")
    kept.chmod(0o640)
    atomic_write_bytes(kept, b"new")
    assert kept.read_bytes() == b"new" and stat.S_IMODE(kept.stat().st_mode) == 0o640


@pytest.mark.parametrize("fails_in", ["write", "the folder"])
def test_atomic_write_names_the_file_on_a_disk_error_and_leaves_nothing(tmp_path, monkeypatch, fails_in):
    target = tmp_path / "made" / "deeper" / "out.bin"

    def full(f):
        raise OSError(errno.ENOSPC, "No space left on device")  # what writing to a full disk raises: no file name

    if fails_in == "the folder":  # mkstemp in a folder we may not write to names its temp file
        def refuse(prefix, suffix, dir):
            raise PermissionError(errno.EACCES, "Permission denied", os.path.join(dir, f"{prefix}abc{suffix}"))
        monkeypatch.setattr(files.tempfile, "mkstemp", refuse)
    with pytest.raises(OSError) as info:
        atomic_write(target, full)
    assert info.value.filename == str(target)
    assert info.value.strerror == ("No space left on device" if fails_in == "write" else "Permission denied")
    assert os.listdir(tmp_path) == []  # no temp file, and the folders made for it are gone


def test_atomic_write_onto_a_folder_names_it_and_does_no_work(tmp_path):
    folder = tmp_path / "folder"
    folder.mkdir()
    calls = []
    with pytest.raises(IsADirectoryError) as info:
        atomic_write(folder, lambda f: calls.append(f))
    assert info.value.filename == str(folder)
    assert calls == []
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]


def test_atomic_write_makes_a_readable_file(tmp_path):
    path = tmp_path / "out.bin"
    atomic_write(path, lambda f: f.write(b"hello"))
    assert path.read_bytes() == b"hello"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
