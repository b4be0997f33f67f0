"""Issue 9: a checkpoint is bounded and checked before it is trusted. Each hostile file here is built by hand
(zipfile plus numpy.lib.format, so headers can lie) and must end in one CheckpointError line, never a
traceback, a hang, a memory blow-up or a silently wrong model."""

from __future__ import annotations

import copy
import io
import json
import math
import os
import re
import signal
import subprocess
import sys
import zipfile
from dataclasses import asdict, fields
from pathlib import Path

import numpy as np
import pytest
from conftest import error_lines
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image, ImageDraw

from micrograd_mnist import checkpoint, cli, optim, training
from micrograd_mnist.checkpoint import CheckpointError
from micrograd_mnist.config import Config
from micrograd_mnist.nn import MLP
from micrograd_mnist.tensor import Tensor

SIZES = [6, 5, 3]
ROOT = Path(__file__).resolve().parents[1]


def small_model(sizes=SIZES, activation: str = "tanh") -> MLP:
    return MLP(sizes, activation, rng=np.random.default_rng(0))


def stepped(model: MLP, kind: str) -> optim.Optimizer:
    """An optimizer that has taken two steps, so it has buffers (and Adam a step count) to save."""
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9) if kind == "sgd" else optim.Adam(model.parameters())
    x = Tensor(np.random.default_rng(1).standard_normal((4, model.sizes[0])).astype(np.float32))
    for _ in range(2):
        opt.zero_grad()
        (model(x) ** 2).mean().backward()
        opt.step()
    return opt


def training_meta(optimizer: str = "sgd") -> dict:
    """What training.train's save_state writes: a resolved Config and the state at a batch boundary."""
    config = {"preset": "seed", "epochs": 3, "batch_size": 4, "lr": 0.1, "weight_decay": 0.0, "optimizer": optimizer,
              "momentum": 0.9, "seed": 0, "dataset": "mnist", "data_dir": None, "sizes": SIZES,
              "activation": "tanh"}
    state = {"epoch": 1, "step": 2, "loss_sum": 0.5, "seconds": 1.5,
             "metrics": {"train_loss": [1.0], "val_accuracy": [0.5], "epoch_seconds": [2.0]}}
    return {"config": config, "resume": state}


@pytest.fixture(params=["sgd", "adam"])
def real(request, tmp_path) -> Path:
    """A training checkpoint as checkpoint.save writes it, with optimizer state."""
    model = small_model()
    path = tmp_path / "real.npz"
    checkpoint.save(path, model, training_meta(request.param), stepped(model, request.param).state_dict())
    return path


def members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:
        return {name: z.read(name) for name in z.namelist()}


def write_zip(path: Path, contents: dict[str, bytes] | list[tuple[str, bytes]]) -> Path:
    items = contents.items() if isinstance(contents, dict) else contents
    with zipfile.ZipFile(path, "w") as z:
        for name, data in items:
            z.writestr(name, data)
    return path


def npy(array, allow_pickle: bool = False) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.asanyarray(array), allow_pickle=allow_pickle)
    return buf.getvalue()


def forged_npy(shape: tuple, descr, data: bytes = b"") -> bytes:
    """An .npy header that says whatever we like, followed by `data` (usually far less than it claims)."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"shape": shape, "fortran_order": False, "descr": descr})
    return buf.getvalue() + data


def meta_of(path: Path) -> dict:
    with zipfile.ZipFile(path) as z, z.open("meta.npy") as f:
        return json.loads(str(np.lib.format.read_array(f)))


def with_meta(path: Path, meta: dict, name: str = "forged.npz") -> Path:
    contents = members(path) | {"meta.npy": npy(np.array(json.dumps(meta)))}
    return write_zip(path.with_name(name), contents)


def refused(path: Path, match: str) -> str:
    """checkpoint.load's CheckpointError: one line, matching `match`, with no low-level exception chained."""
    with pytest.raises(CheckpointError, match=match) as info:
        checkpoint.load(path)
    message = str(info.value)
    assert "\n" not in message and str(path.name) in message
    assert info.value.__cause__ is None and (info.value.__context__ is None or info.value.__suppress_context__)
    return message


# ---------------------------------------------------------------------------------------------------------------
# The file itself: a regular file of bounded size


def test_a_fifo_as_checkpoint_is_refused_without_hanging(tmp_path):
    fifo = tmp_path / "model.npz"
    os.mkfifo(fifo)

    def hung(signum, frame):
        raise AssertionError("checkpoint.load waited for a writer on a FIFO")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(20)  # a guard against hanging the suite, not a timing: the refusal needs no writer at all
    try:
        refused(fifo, r"model\.npz is a FIFO \(named pipe\), not a regular file")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_a_file_bigger_than_any_checkpoint_is_refused_unread(tmp_path):
    path = tmp_path / "huge.npz"
    path.write_bytes(b"PK\x03\x04")
    os.truncate(path, checkpoint.MAX_FILE_BYTES + 1)  # sparse: costs no disk
    refused(path, "more than a checkpoint can be")


def test_a_zip_directory_of_more_members_than_a_checkpoint_has_is_refused_before_parsing(tmp_path):
    path = write_zip(tmp_path / "many.npz", {f"x{i}.npy": b"" for i in range(checkpoint.MAX_MEMBERS + 1)})
    refused(path, f"declares {checkpoint.MAX_MEMBERS + 1:,} members")


# ---------------------------------------------------------------------------------------------------------------
# Members: only the .npy arrays a checkpoint has


@pytest.mark.parametrize("name, match", [
    ("notes.npy", "no part of a checkpoint"),
    ("param/0.weight.npy.npy", "no part of a checkpoint"),
    ("../../etc/passwd.npy", "no part of a checkpoint"),
    ("optim/evil.0.npy", "no state of the (SGD|Adam) optimizer"),
    ("optim/buffers.99.npy", "no state of"),
])
def test_an_extra_member_is_refused(real, name, match):
    contents = members(real) | {name: npy(np.zeros(3, dtype=np.float32))}
    refused(write_zip(real.with_name("extra.npz"), contents), match)


@pytest.mark.parametrize("name", ["README.txt", "param/", "param/0.weight", "meta.json"])
def test_a_member_that_is_not_an_npy_array_is_refused(real, name):
    contents = members(real) | {name: b"hello"}
    refused(write_zip(real.with_name("extra.npz"), contents), "which is not an .npy array")


def test_a_member_given_twice_is_refused(real):
    contents = members(real)
    twice = [*contents.items(), ("param/0.weight.npy", npy(np.ones((6, 5), dtype=np.float32)))]
    with pytest.warns(UserWarning, match="Duplicate name"):
        path = write_zip(real.with_name("twice.npz"), twice)
    refused(path, "holds param/0.weight.npy twice")


# ---------------------------------------------------------------------------------------------------------------
# .npy headers: dtype and shape checked before any data is read


class Payload:
    ran: Path

    def __reduce__(self):
        return (Path.touch, (self.ran,))


def test_an_object_array_is_refused_without_unpickling(real, tmp_path):
    Payload.ran = tmp_path / "ran"
    evil = npy(np.array([Payload()] * 30, dtype=object).reshape(6, 5), allow_pickle=True)
    refused(write_zip(real.with_name("evil.npz"), members(real) | {"param/0.weight.npy": evil}),
            "holds pickled Python objects, which could run code")
    assert not Payload.ran.exists()


@pytest.mark.parametrize("dtype, match", [
    (np.complex64, r"holds complex numbers \(complex64\)"),
    (np.complex128, "holds complex numbers"),
    (np.dtype([("re", "<f4"), ("im", "<f4")]), "has a structured dtype"),
    (np.bool_, "has dtype bool"),
    (np.dtype("S4"), "has dtype |S4"),
    (np.dtype("<U4"), "has dtype <U4"),
    (np.dtype("M8[s]"), "has dtype datetime64"),
    (np.longdouble, "has dtype float128"),
    (np.int32, r"must be a \(6, 5\) array of floating-point numbers"),
])
def test_weights_of_a_dtype_that_is_not_plain_floats_are_refused(real, dtype, match):
    weight = npy(np.zeros((6, 5), dtype=dtype))
    refused(write_zip(real.with_name("typed.npz"), members(real) | {"param/0.weight.npy": weight}), match)


def test_a_subarray_dtype_that_multiplies_the_declared_shape_is_refused(real):
    # NumPy never writes one (it folds the sub-array into the shape), but a header may declare it:
    # 30 elements of 4 MB each
    forged = forged_npy((6, 5), ("<f4", (1000, 1000)))
    refused(write_zip(real.with_name("sub.npz"), members(real) | {"param/0.weight.npy": forged}),
            r"has a structured dtype \(\('<f4', \(1000, 1000\)\)\)")


def test_float16_and_float64_weights_are_fine(real):
    for dtype in (np.float16, np.float64):
        weight = np.full((6, 5), 0.25, dtype=dtype)
        model, _, _ = checkpoint.load(write_zip(real.with_name("f.npz"),
                                                members(real) | {"param/0.weight.npy": npy(weight)}))
        np.testing.assert_array_equal(model.state_dict()["0.weight"], np.full((6, 5), 0.25, dtype=np.float32))


@pytest.mark.parametrize("shape, match", [
    ((10**6, 10**6), r"declares shape \(1000000, 1000000\)"),
    ((2, 3, 5), "at most 2 dimensions"),
    ((-1, 5), r"declares shape \(-1, 5\)"),
    ((6, 4), r"is 2,?\d* bytes, but its header says"),  # a header that promises more data than the member has
])
def test_a_header_whose_shape_cannot_be_right_is_refused(real, shape, match):
    forged = forged_npy(shape, "<f4", data=bytes(120))
    refused(write_zip(real.with_name("shape.npz"), members(real) | {"param/0.weight.npy": forged}), match)


def test_a_header_of_an_unknown_npy_version_is_refused(real):
    forged = npy(np.zeros((6, 5), dtype=np.float32))
    forged = forged[:6] + b"\x07\x00" + forged[8:]
    refused(write_zip(real.with_name("v7.npz"), members(real) | {"param/0.weight.npy": forged}),
            r"param/0.weight is an .npy file of version \(7, 0\), which checkpoints never use")


def patched(path: Path, name: str, offset: int, value: int) -> Path:
    """`path` with a 2-byte field of member `name` set to `value` in both its local and its central header
    (`offset` into the local one; the central one has the same fields 2 bytes further on)."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        info, central = z.getinfo(name), z.start_dir
    while data[central + 46:central + 46 + len(name)] != name.encode():  # walk the central directory's entries
        central += 46 + sum(int.from_bytes(data[central + i:central + i + 2], "little") for i in (28, 30, 32))
    for at in (info.header_offset + offset, central + offset + 2):
        data[at:at + 2] = value.to_bytes(2, "little")
    out = path.with_name("patched.npz")
    out.write_bytes(data)
    return out


@pytest.mark.parametrize("offset, value", [(6, 0x1), (6, 0x40), (6, 0x20), (8, 99), (8, 14)],
                         ids=["encrypted", "strong encryption", "patched data", "unknown method", "lzma"])
def test_a_member_encrypted_or_compressed_unlike_any_npz_is_refused(real, offset, value):
    refused(patched(real, "param/0.weight.npy", offset, value),
            "param/0.weight.npy is encrypted or compressed in a way .npz files never are")


RLIMIT_SCRIPT = """
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, (2**30, 2**30))
from micrograd_mnist import checkpoint
try:
    checkpoint.load(sys.argv[1])
except checkpoint.CheckpointError as e:
    print("CheckpointError:", e)
"""


def load_under_1_gib(path: Path) -> subprocess.CompletedProcess:
    env = os.environ | {"PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-c", RLIMIT_SCRIPT, str(path)], capture_output=True, text=True,
                          env=env, timeout=120)


def deflated_zeros(path: Path, real: Path, shape: tuple[int, int]) -> Path:
    """A zip bomb: param/0.weight as `shape` float32 zeros, deflated to a few megabytes."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        for name, data in members(real).items():
            if name != "param/0.weight.npy":
                z.writestr(name, data)
        with z.open("param/0.weight.npy", "w", force_zip64=True) as f:
            f.write(forged_npy(shape, "<f4"))
            chunk = bytes(1 << 24)
            for _ in range(math.prod(shape) * 4 // len(chunk)):
                f.write(chunk)
    return path


@pytest.fixture(scope="module")
def absurd(tmp_path_factory) -> dict[str, Path]:
    """Small files that declare huge arrays: by header alone, or as a zip bomb of real (deflated) zeros."""
    folder = tmp_path_factory.mktemp("absurd")
    model = small_model()
    real = folder / "real.npz"
    checkpoint.save(real, model, training_meta("sgd"), stepped(model, "sgd").state_dict())
    files = {f"shape {n} x {n}": write_zip(folder / f"shape{n}.npz",
                                           members(real) | {"param/0.weight.npy": forged_npy((n, n), "<f8")})
             for n in (10**6, 30_000)}
    files["1 GiB deflated"] = deflated_zeros(folder / "bomb.npz", real, (16384, 16384))
    assert all(path.stat().st_size < 10 * 2**20 for path in files.values())
    return files


@pytest.mark.parametrize("forge, match", [
    (f"shape {10**6} x {10**6}", r"declares shape \(1000000, 1000000\)"),
    ("shape 30000 x 30000", r"declares shape \(30000, 30000\)"),
    ("1 GiB deflated", "claim more than 1,073,741,824 bytes"),
])
def test_absurd_declared_sizes_are_refused_before_allocating_them(absurd, forge, match):
    """Under a 1 GiB address-space limit the old loader ended in MemoryError (it allocated what the header
    declared, or inflated the bomb); now the header is refused first, so the limit is never approached."""
    path = absurd[forge]
    result = load_under_1_gib(path)
    assert result.returncode == 0 and "MemoryError" not in result.stderr, result.stderr[-2000:]
    assert result.stdout.startswith("CheckpointError: ") and result.stdout.count("\n") == 1, result.stdout
    assert re.search(match, result.stdout), result.stdout


# ---------------------------------------------------------------------------------------------------------------
# Numbers: NaN or infinity anywhere is refused


@pytest.mark.parametrize("key, value", [("param/0.weight", np.nan), ("param/2.bias", np.inf),
                                        ("param/0.bias", -np.inf)])
def test_nan_or_infinite_weights_are_refused(real, key, value):
    arrays = members(real)
    with zipfile.ZipFile(real) as z, z.open(f"{key}.npy") as f:
        array = np.lib.format.read_array(f)
    array.flat[1] = value
    refused(write_zip(real.with_name("nan.npz"), arrays | {f"{key}.npy": npy(array)}),
            f"{key} holds NaN or infinite numbers")


@pytest.mark.parametrize("kind, key", [("sgd", "buffers.0"), ("adam", "m.1"), ("adam", "v.3")])
def test_nan_or_infinite_optimizer_state_is_refused(tmp_path, kind, key):
    model = small_model()
    state = stepped(model, kind).state_dict()
    state[key] = state[key].copy()
    state[key].flat[0] = np.nan if kind == "sgd" else np.inf
    checkpoint.save(tmp_path / "c.npz", model, training_meta(kind), state)
    refused(tmp_path / "c.npz", f"optim/{key} holds NaN or infinite numbers")


def nan_digits_checkpoint(path: Path) -> Path:
    model = MLP([784, 10], "relu", rng=np.random.default_rng(0))
    model.parameters()[0].data[0, 0] = np.nan  # 0.weight
    checkpoint.save(path, model, {})
    return path


def test_evaluate_and_predict_on_a_nan_checkpoint_say_so_in_one_line(tmp_path, data_dir, capsys):
    ckpt = nan_digits_checkpoint(tmp_path / "nan.npz")
    image = Image.new("L", (100, 100), 255)
    ImageDraw.Draw(image).ellipse((25, 15, 75, 85), outline=0, width=8)
    image.save(tmp_path / "zero.png")
    for argv in (["evaluate", str(ckpt), "--data-dir", str(data_dir)],
                 ["predict", str(ckpt), str(tmp_path / "zero.png")]):
        assert cli.main(argv) == 2
        captured = capsys.readouterr()
        assert captured.out == ""  # no "8.4%" accuracy, no "0 (nan%)" prediction
        lines = error_lines(captured.err, argv[0])
        assert len(lines) == 1 and "param/0.weight holds NaN or infinite numbers" in lines[0], lines


# ---------------------------------------------------------------------------------------------------------------
# The JSON header: one schema, types and ranges of every field


def edited(meta: dict, where: str, value) -> dict:
    """`meta` with the field at `where` (dotted) set to `value`, or deleted when value is DELETE."""
    meta = copy.deepcopy(meta)
    *parents, last = where.split(".")
    node = meta
    for key in parents:
        node = node[key]
    if value is DELETE:
        del node[last]
    else:
        node[last] = value
    return meta


DELETE = object()
HEADER_CASES = [
    ("format", "micrograd-mnist/99", "in format \"micrograd-mnist/99\""),
    ("format", DELETE, "has no format"),
    ("sizes", [6], "sizes is \\[6\\], but must be a list of 2 to"),
    ("sizes", [6, 0, 3], "sizes is \\[6, 0, 3\\]"),
    ("sizes", [6, 5.0, 3], "sizes is \\[6, 5.0, 3\\]"),
    ("sizes", [6, True, 3], "sizes is \\[6, true, 3\\]"),
    ("sizes", "abc", "sizes is \"abc\""),
    ("sizes", [6] * 1002, "but must be a list of 2 to 1,001"),
    ("sizes", [6, 10**6, 3], "config.sizes \\[6, 5, 3\\] contradicts its sizes \\[6, 1000000, 3\\]"),
    ("activation", "gelu", "activation is \"gelu\", but must be one of 'relu', 'sigmoid', 'tanh'"),
    ("data_dir", 3, "data_dir is 3, but must be a folder name or null"),
]
CONFIG_CASES = [
    ("config.optimizer", "evil", "config.optimizer is \"evil\", but must be one of 'sgd', 'adam'"),
    ("config.lr", -0.1, "config.lr is -0.1, but must be a positive number"),
    ("config.lr", 0, "config.lr is 0, but must be a positive number"),
    ("config.lr", float("nan"), "config.lr is NaN"),
    ("config.lr", "fast", "config.lr is \"fast\""),
    ("config.epochs", "ten", "config.epochs is \"ten\", but must be an integer from 1 to"),
    ("config.epochs", 0, "config.epochs is 0"),
    ("config.epochs", 2.5, "config.epochs is 2.5"),
    ("config.epochs", True, "config.epochs is true"),
    ("config.epochs", 10**9, "config.epochs is 1000000000"),
    ("config.batch_size", 0, "config.batch_size is 0"),
    ("config.batch_size", 10**400, "config.batch_size is 1000"),
    ("config.weight_decay", -1e-4, "config.weight_decay is -0.0001, but must be a number >= 0"),
    ("config.weight_decay", float("inf"), "config.weight_decay is Infinity"),
    ("config.momentum", 1.0, "config.momentum is 1.0, but must be a number in \\[0, 1\\)"),
    ("config.momentum", -0.5, "config.momentum is -0.5"),
    ("config.seed", -1, "config.seed is -1, but must be an integer >= 0"),
    ("config.seed", 1.5, "config.seed is 1.5"),
    ("config.dataset", "cifar10", "config.dataset is \"cifar10\", but must be one of 'mnist', 'fashion-mnist'"),
    ("config.preset", "huge", "config.preset is \"huge\", but must be one of 'seed', '3b1b'"),
    ("config.sizes", [784], "config.sizes is \\[784\\]"),
    ("config.sizes", [6, 7, 3], "config.sizes \\[6, 7, 3\\] contradicts its sizes \\[6, 5, 3\\]"),
    ("config.activation", "relu", "config.activation \"relu\" contradicts its activation \"tanh\""),
    ("config.data_dir", ["/data"], "config.data_dir is \\[\"/data\"\\], but must be a folder name or null"),
    ("config.warp_speed", 9, "config has an unknown field 'warp_speed'"),
    ("config.lr", DELETE, "has no config.lr"),
    ("config", [1, 2], "config is \\[1, 2\\], not an object"),
]
RESUME_CASES = [
    ("resume.epoch", "two", "resume.epoch is \"two\", but must be an integer"),
    ("resume.epoch", -1, "resume.epoch is -1"),
    ("resume.epoch", 1.5, "resume.epoch is 1.5"),
    ("resume.epoch", None, "resume.epoch is null"),
    ("resume.epoch", 4, "\\(epoch 4, batch 2\\) is past the end of a 3-epoch run"),
    ("resume.step", -1, "resume.step is -1, but must be an integer >= 0"),
    ("resume.step", "2", "resume.step is \"2\""),
    ("resume.loss_sum", "x", "resume.loss_sum is \"x\", but must be a number >= 0"),
    ("resume.loss_sum", float("nan"), "resume.loss_sum is NaN"),
    ("resume.seconds", -5, "resume.seconds is -5"),
    ("resume.seconds", float("inf"), "resume.seconds is Infinity"),
    ("resume.metrics", DELETE, "has no resume.metrics"),
    ("resume.metrics", [], "resume.metrics is \\[\\], not an object"),
    ("resume.metrics.train_loss", 3, "resume.metrics.train_loss is 3, but must be a list of number >= 0s"),
    ("resume.metrics.val_accuracy", [1.5], "resume.metrics.val_accuracy is \\[1.5\\]"),
    ("resume.metrics.epoch_seconds", ["x"], "resume.metrics.epoch_seconds is \\[\"x\"\\]"),
    ("resume.metrics.train_loss", [], "resume.metrics.train_loss has 0 entries for 1 finished epochs"),
    ("resume.metrics.lr", [0.1], "resume.metrics has an unknown field 'lr'"),
    ("resume.extra", 1, "resume has an unknown field 'extra'"),
    ("resume.step", DELETE, "has no resume.step"),
    ("resume", "all good", "resume is \"all good\", not an object"),
    ("config", DELETE, "holds a training state but no config"),
    ("config.epochs", DELETE, "has no config.epochs"),  # a resumed run rebuilds its Config from every field
]


@pytest.mark.parametrize("where, value, match", HEADER_CASES + CONFIG_CASES + RESUME_CASES,
                         ids=[f"{w}={v!r:.20}" if v is not DELETE else f"no {w}"
                              for w, v, _ in HEADER_CASES + CONFIG_CASES + RESUME_CASES])
def test_a_forged_header_field_is_refused_in_one_line(real, where, value, match):
    refused(with_meta(real, edited(meta_of(real), where, value)), match)


def test_a_header_that_lies_about_its_arrays_is_refused_before_building_anything(tmp_path, monkeypatch):
    checkpoint.save(tmp_path / "m.npz", small_model(), {})
    forged = with_meta(tmp_path / "m.npz", {"format": checkpoint.FORMAT, "sizes": [6, 10**6, 3], "activation": "tanh"})
    monkeypatch.setattr(checkpoint, "MLP", None)  # calling it would fail
    refused(forged, r"do not match its architecture \[6, 1000000, 3\] tanh \(param/0.weight has shape \(6, 5\), "
                    r"the architecture needs \(6, 1000000\)")


def test_a_network_wider_than_the_bound_is_refused_even_with_real_arrays(tmp_path):
    checkpoint.save(tmp_path / "wide.npz", MLP([1, 100_001, 1], "relu", rng=np.random.default_rng(0)), {})
    refused(tmp_path / "wide.npz", r"architecture \[1, 100001, 1\] is beyond what micrograd-mnist loads")


def test_an_epoch_at_the_end_must_be_at_its_first_batch(real):
    meta = meta_of(real)
    meta["resume"] |= {"epoch": 3, "step": 2,
                       "metrics": {k: v * 3 for k, v in meta["resume"]["metrics"].items()}}
    refused(with_meta(real, meta), "past the end")
    meta["resume"]["step"] = 0  # the state a finished run saves
    assert checkpoint.load(with_meta(real, meta, "done.npz"))[1]["resume"]["epoch"] == 3


@pytest.mark.parametrize("where, value", [("data_dir", None), ("data_dir", "/srv/mnist"),
                                          ("config.data_dir", "/srv/mnist"), ("config.data_dir", DELETE),
                                          ("notes", ["user annotations are kept"])])
def test_optional_fields_are_accepted(real, where, value):
    meta = edited(meta_of(real), where, value)
    assert checkpoint.load(with_meta(real, meta))[1] == meta


def test_final_weights_may_carry_a_partial_config_but_each_field_is_checked(tmp_path):
    checkpoint.save(tmp_path / "m.npz", small_model(), {"config": {"dataset": "fashion-mnist"}})
    assert checkpoint.load(tmp_path / "m.npz")[1]["config"] == {"dataset": "fashion-mnist"}
    checkpoint.save(tmp_path / "bad.npz", small_model(), {"config": {"dataset": "cifar10"}})
    refused(tmp_path / "bad.npz", "config.dataset is \"cifar10\"")


def test_the_schema_knows_every_config_field_training_saves():
    assert set(checkpoint.CONFIG.fields) == {f.name for f in fields(training.Config)}
    required = set(checkpoint.CONFIG.fields) - checkpoint.CONFIG.optional
    cfg = training.Config(sizes=SIZES, activation="tanh").resolved()
    assert required <= set(asdict(cfg))


def test_a_forged_resume_state_is_one_line_from_the_cli_too(real, tmp_path, data_dir, capsys):
    forged = with_meta(real, edited(meta_of(real), "config.optimizer", "evil"))
    argv = ["train", "--resume", str(forged), "--data-dir", str(data_dir), "--out", str(tmp_path / "out")]
    assert cli.main(argv) == 2
    lines = error_lines(capsys.readouterr().err, "train")
    assert len(lines) == 1 and "config.optimizer is \"evil\"" in lines[0], lines


# ---------------------------------------------------------------------------------------------------------------
# Optimizer state: named and shaped for the parameters, Adam's t a non-negative integer


@pytest.mark.parametrize("kind, key, array, match", [
    ("sgd", "buffers.0", np.zeros((3, 3), np.float32), r"optim/buffers.0 is a \(3, 3\) array of float32, but must "
                                                       r"be a \(6, 5\) array of floating-point numbers"),
    ("sgd", "m.0", np.zeros((6, 5), np.float32), "optim/m.0 is no state of the SGD optimizer"),
    ("adam", "buffers.0", np.zeros((6, 5), np.float32), "optim/buffers.0 is no state of the Adam optimizer"),
    ("adam", "v.4", np.zeros(3, np.float32), "optim/v.4 is no state of"),
    ("adam", "m.2", np.zeros((5, 3), np.int64), r"must be a \(5, 3\) array of floating-point numbers"),
    ("adam", "t", np.full(4, 2.5), r"optim/t is a \(4,\) array of float64, but must be a \(4,\) array of integer"),
    ("adam", "t", np.array([1, 2]), r"optim/t is a \(2,\) array"),  # one step count per parameter
    ("adam", "t", np.array([2, 2, -1, 2]), "optim/t, a step count, holds -1"),
])
def test_optimizer_state_that_does_not_fit_the_parameters_is_refused(tmp_path, kind, key, array, match):
    model = small_model()
    state = stepped(model, kind).state_dict() | {key: array}
    checkpoint.save(tmp_path / "c.npz", model, training_meta(kind), state)
    refused(tmp_path / "c.npz", match)


def test_optimizer_load_state_dict_validates_before_changing_anything():
    model = small_model()
    adam = stepped(model, "adam")
    good = {k: v.copy() for k, v in adam.state_dict().items()}
    cases = [({"buffers.0": good["m.0"]}, "buffers.0 is not kept by Adam"),
             ({"m.0": np.zeros((2, 2))}, r"m.0 has shape \(2, 2\)"),
             ({"v.1": np.full(5, np.nan)}, "v.1 must hold finite floating-point numbers"),
             ({"m.3": np.zeros(3, np.int64)}, "m.3 must hold finite floating-point numbers"),
             ({"t": np.array([2, 2, -3, 2])}, r"t \(each parameter's step count\) must be 4 integers >= 0, got "
                                               r"\[2, 2, -3, 2\]"),
             ({"t": np.array([1, 2])}, r"t \(each parameter's step count\) must be 4 integers >= 0")]
    for change, match in cases:
        fresh = optim.Adam(model.parameters())
        with pytest.raises(ValueError, match=match):
            fresh.load_state_dict(good | change)
        assert fresh.t == [0] * 4 and all(m is None for m in fresh.m)  # untouched
    fresh = optim.Adam(model.parameters())
    fresh.load_state_dict(good)
    assert fresh.t == [2] * 4
    for name, array in fresh.state_dict().items():
        np.testing.assert_array_equal(array, good[name])


# ---------------------------------------------------------------------------------------------------------------
# What training writes still loads


@pytest.mark.parametrize("kind", ["sgd", "adam"])
def test_checkpoints_written_by_training_load(mnist, tmp_path, kind):
    cfg = training.Config(sizes=[784, 8, 10], activation="relu", epochs=1, batch_size=250, optimizer=kind)
    metrics = training.train(cfg, mnist, tmp_path, log=lambda line: None, progress=False)
    model, meta, state = checkpoint.load(tmp_path / "checkpoint.npz")
    assert meta["config"] == metrics["config"] and meta["resume"]["epoch"] == 1
    assert set(state) == ({"buffers.0", "buffers.1", "buffers.2", "buffers.3"} if kind == "sgd"
                          else {"m.0", "m.1", "m.2", "m.3", "v.0", "v.1", "v.2", "v.3", "t"})
    final, final_meta, final_state = checkpoint.load(tmp_path / "model.npz")
    assert final_meta["config"] == metrics["config"] and final_state == {}
    for name, array in final.state_dict().items():
        np.testing.assert_array_equal(array, model.state_dict()[name])


# ---------------------------------------------------------------------------------------------------------------
# Random bytes, random damage: only ever a CheckpointError


@pytest.fixture(scope="module")
def valid_bytes(tmp_path_factory) -> tuple[bytes, list[int]]:
    """A small Adam training checkpoint's bytes, and the offsets where its zip and .npy headers start."""
    path = tmp_path_factory.mktemp("valid") / "c.npz"
    model = small_model([4, 3, 2])
    meta = training_meta("adam")
    meta["config"]["sizes"] = [4, 3, 2]
    checkpoint.save(path, model, meta, stepped(model, "adam").state_dict())
    with zipfile.ZipFile(path) as z:
        infos = z.infolist()
        starts = [i.header_offset for i in infos] + [i.header_offset + 30 + len(i.filename) for i in infos]
        starts.append(z.start_dir)
    data = path.read_bytes()
    return data, sorted({*starts, len(data) - 22})


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("hypothesis") / "damaged.npz"


def only_checkpoint_errors(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    try:
        checkpoint.load(path)
    except CheckpointError as e:
        assert str(e) and "\n" not in str(e)


@given(data=st.one_of(st.binary(max_size=600), st.binary(max_size=600).map(lambda b: b"PK\x03\x04" + b)))
def test_random_bytes_raise_only_checkpoint_errors(scratch, data):
    only_checkpoint_errors(scratch, data)


@given(st.data())
def test_damaged_checkpoints_raise_only_checkpoint_errors(valid_bytes, scratch, data):
    original, starts = valid_bytes
    where = st.one_of(st.integers(0, len(original) - 1),
                      st.sampled_from(starts).flatmap(lambda s: st.integers(s, min(s + 80, len(original) - 1))))
    damage = st.tuples(st.sampled_from(["flip", "set", "insert", "delete", "truncate"]), where,
                       st.integers(0, 255))
    mutated = bytearray(original)
    for kind, at, byte in data.draw(st.lists(damage, min_size=1, max_size=4), label="damage"):
        at = min(at, max(len(mutated) - 1, 0))
        if kind == "flip" and mutated:
            mutated[at] ^= 1 << (byte % 8)
        elif kind == "set" and mutated:
            mutated[at] = byte
        elif kind == "insert":
            mutated[at:at] = bytes([byte]) * (1 + byte % 9)
        elif kind == "delete":
            del mutated[at:at + 1 + byte % 9]
        elif kind == "truncate":
            del mutated[at:]
    only_checkpoint_errors(scratch, bytes(mutated))


# --- checkpoints written by a real run, then damaged ------------------------------------------------------------


def arrays_of(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


def tiny_run(**overrides) -> Config:
    settings = dict(sizes=[784, 16, 10], activation="relu", epochs=2, batch_size=50, lr=0.05, seed=0)
    return Config(**(settings | overrides))


@pytest.fixture(scope="module")
def one_epoch(tmp_path_factory, mnist) -> Path:
    """A real OUT/checkpoint.npz after one epoch of training (SGD with momentum: it has buffers)."""
    out = tmp_path_factory.mktemp("one-epoch")
    training.train(tiny_run(epochs=1), mnist, out, log=lambda line: None, progress=False)
    return out / "checkpoint.npz"


def test_a_forged_header_is_refused_before_building_the_model(tmp_path, monkeypatch):
    real = tmp_path / "real.npz"
    checkpoint.save(real, MLP([784, 16, 10], rng=np.random.default_rng(0)), {})
    arrays = arrays_of(real)
    meta = json.loads(str(arrays["meta"]))
    meta["sizes"] = [784, 1000000, 10]
    arrays["meta"] = np.array(json.dumps(meta))
    forged = tmp_path / "forged.npz"
    np.savez(forged, **arrays)

    def no_model(*args, **kwargs):
        pytest.fail("checkpoint.load built the model from a forged header")

    monkeypatch.setattr(checkpoint, "MLP", no_model)
    with pytest.raises(CheckpointError, match=r"arrays do not match its architecture \[784, 1000000, 10\]") as info:
        checkpoint.load(forged)
    message = str(info.value)
    assert "(1000000,)" in message or "(784, 1000000)" in message  # names the mismatched shape
    assert "\n" not in message


def test_a_missing_parameter_is_a_one_line_error_naming_it(one_epoch, tmp_path, capsys):
    arrays = arrays_of(one_epoch)
    del arrays["param/0.bias"]
    broken = tmp_path / "no-bias.npz"
    np.savez(broken, **arrays)
    with pytest.raises(CheckpointError, match="0.bias") as info:
        checkpoint.load(broken)
    assert "\n" not in str(info.value) and "no-bias.npz" in str(info.value)

    image = Image.new("L", (100, 100), 255)
    ImageDraw.Draw(image).ellipse((25, 15, 75, 85), outline=0, width=8)
    image.save(tmp_path / "zero.png")
    assert cli.main(["predict", str(broken), str(tmp_path / "zero.png")]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    lines = error_lines(err, "predict")
    assert len(lines) == 1 and "0.bias" in lines[0], lines


def wrong_buffer_shape(arrays: dict[str, np.ndarray]) -> None:
    assert "optim/buffers.0" in arrays  # SGD with momentum keeps one buffer per parameter
    arrays["optim/buffers.0"] = np.zeros((3, 3), dtype=np.float32)


def unknown_config_key(arrays: dict[str, np.ndarray]) -> None:
    meta = json.loads(str(arrays["meta"]))
    assert "resume" in meta and "config" in meta
    meta["config"]["warp_speed"] = 9
    arrays["meta"] = np.array(json.dumps(meta))


@pytest.mark.parametrize("damage, named", [(wrong_buffer_shape, r"buffers\.0"), (unknown_config_key, "warp_speed")])
def test_a_damaged_training_state_is_a_checkpoint_error(one_epoch, mnist, data_dir, tmp_path, capsys, damage, named):
    arrays = arrays_of(one_epoch)
    damage(arrays)
    broken = tmp_path / "ck.npz"
    np.savez(broken, **arrays)
    with pytest.raises(CheckpointError, match=named):  # the loader's schema says which
        checkpoint.load(broken)

    with pytest.raises(CheckpointError, match=named) as info:  # not a ValueError or TypeError from deeper down
        training.train(tiny_run(), mnist, tmp_path / "lib", resume=broken, log=lambda line: None, progress=False)
    assert type(info.value) is CheckpointError and "\n" not in str(info.value)
    assert not (tmp_path / "lib" / "model.npz").exists()

    out = tmp_path / "cli"
    assert cli.main(["train", "--resume", str(broken), "--data-dir", str(data_dir), "--out", str(out)]) == 2
    lines = error_lines(capsys.readouterr().err, "train")
    assert len(lines) == 1 and "ck.npz" in lines[0], lines
    assert not (out / "model.npz").exists()
