"""blas.py's in-place sums give NumPy's ufuncs' numbers bit for bit (NaNs: see `both_nan`), and leave to NumPy
what OpenBLAS's axpy can't take.

The optimizers' numbers through them: tests/test_speed_paths.py. No timing here: benchmarks/mnist_epoch.py
measures whether they are faster.
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

import numpy as np
import pytest

from micrograd_mnist import blas

N = blas.MIN_SIZE + 37  # long enough for OpenBLAS, and not a multiple of any vector width


def nans(dtype) -> np.ndarray:
    """Quiet and signalling NaNs of both signs, with different payloads."""
    if np.dtype(dtype) == np.float32:
        bits = np.array([0x7FC00000, 0xFFC00000, 0x7FC00123, 0xFFC00456, 0x7F800001, 0xFFA00001], np.uint32)
    else:
        bits = np.array([0x7FF8000000000000, 0xFFF8000000000000, 0x7FF8000000000123, 0xFFF8000000000456,
                         0x7FF0000000000001, 0xFFF4000000000001], np.uint64)
    return bits.view(dtype)


def awkward(n: int, dtype, seed: int = 0) -> np.ndarray:
    """Random numbers of every size, with NaNs, both infinities, signed zeros, subnormals and the largest finite."""
    rng = np.random.default_rng(seed)
    a = (rng.standard_normal(n) * 10.0 ** rng.integers(-30, 30, n)).astype(dtype)
    info = np.finfo(dtype)
    specials = np.r_[nans(dtype), np.array([np.inf, -np.inf, 0.0, -0.0, info.smallest_subnormal,
                                            -info.smallest_subnormal, info.tiny, info.max, -info.max], dtype)]
    a[rng.choice(n, len(specials) * 20, replace=False)] = np.repeat(specials, 20)
    return a


def same(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal bit for bit (so a NaN equals only a NaN of the same bits, and -0.0 differs from 0.0)."""
    return a.dtype == b.dtype and np.array_equal(a.view(f"u{a.itemsize}"), b.view(f"u{b.itemsize}"))


def test_the_openblas_numpy_loaded_is_found():
    maps = Path("/proc/self/maps")
    if maps.exists():  # what the process has mapped, read otherwise than blas.py finds it
        assert blas.available == ("libscipy_openblas64_" in maps.read_text())
    else:
        config = np.__config__.CONFIG["Build Dependencies"]["blas"]
        assert not blas.available or config.get("name") == "scipy-openblas"


def test_corename_names_the_kernel_openblas_runs():
    name = blas.corename()
    if not blas.available:
        assert name is None
        return
    assert name and name.isprintable()
    forced = os.environ.get("OPENBLAS_CORETYPE")
    if forced:  # where the environment forces a kernel, that is the one named
        assert name.casefold() == forced.casefold()
    # the same name stands in the build's own description of itself, read through another call
    config = blas._LIB.scipy_openblas_get_config64_
    config.restype = ctypes.c_char_p
    assert name in config().decode().split()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ["add_", "subtract_"])
def test_add_and_subtract_give_numpys_numbers(dtype, name, blas_calls):
    y, x = awkward(N, dtype, 1), awkward(N, dtype, 2)
    y[:600], x[:600] = np.tile(nans(dtype), 100), np.tile(np.roll(nans(dtype), 1), 100)  # NaN with NaN
    x[600:1200] = np.tile(nans(dtype), 100)  # a number with a NaN
    ufunc = np.add if name == "add_" else np.subtract
    with np.errstate(all="ignore"):
        expected = ufunc(y, x, out=y.copy())
        both_nan = np.isnan(y) & np.isnan(x)
        getattr(blas, name)(y, x)
    assert np.isnan(y[both_nan]).all()  # NaN, but perhaps with x's bits rather than y's: the one difference
    assert same(y[~both_nan], expected[~both_nan])
    assert blas_calls == ([np.dtype(dtype).name] if blas.available else [])


CANT_TAKE = ["short", "strided", "transposed", "integers", "mixed dtypes", "overlapping", "same array",
             "a subclass"]


def operands(case: str) -> tuple[np.ndarray, np.ndarray]:
    """Fresh y and x for one case of CANT_TAKE."""
    y, x = np.arange(N, dtype=np.float32) * np.float32(1.37), np.ones(N, np.float32)
    if case == "short":
        return y[:blas.MIN_SIZE - 1], x[:blas.MIN_SIZE - 1]
    if case == "strided":
        return np.arange(2.0 * N, dtype=np.float32)[::2], np.ones(2 * N, np.float32)[::2]
    if case == "transposed":  # F-ordered: its elements lie in another order than a C-ordered x's
        return np.arange(2.0 * N, dtype=np.float32).reshape(2, N).T, np.ones((N, 2), np.float32)
    if case == "integers":
        return np.arange(N), np.ones(N, dtype=np.int64)
    if case == "mixed dtypes":
        return y, x.astype(np.float64)
    if case == "overlapping":
        base = np.arange(N + 1, dtype=np.float32)
        return base[1:], base[:-1]
    if case == "same array":
        return y, y
    return y.view(np.recarray), x  # "a subclass"


@pytest.mark.parametrize("case", CANT_TAKE)
def test_what_openblas_cant_take_goes_to_numpy_with_the_same_numbers(case, blas_calls):
    for name, ufunc in (("add_", np.add), ("subtract_", np.subtract)):
        y, x = operands(case)
        expected = ufunc(y, x, out=y.copy())
        assert same(np.asarray(getattr(blas, name)(y, x)), np.asarray(expected))
        assert same(np.asarray(y), np.asarray(expected))
    assert blas_calls == []


def test_the_same_array_added_to_itself_doubles():
    y = np.arange(N, dtype=np.float32)
    assert same(blas.add_(y, y), np.arange(N, dtype=np.float32) * 2)
    assert same(blas.subtract_(y, y), np.zeros(N, np.float32))


def test_a_read_only_array_is_refused_as_numpy_refuses_it():
    y = np.zeros(N, np.float32)
    y.flags.writeable = False
    for update in (blas.add_, blas.subtract_):
        with pytest.raises(ValueError, match="read-only"):
            update(y, np.ones(N, np.float32))


def test_a_read_only_x_is_read_through_openblas_too(blas_calls):
    y, x = np.arange(N, dtype=np.float32), np.full(N, 0.25, np.float32)
    x.flags.writeable = False  # it gives no writeable buffer for a ctypes view: its address comes another way
    assert same(blas.subtract_(y, x), np.arange(N, dtype=np.float32) - np.float32(0.25))
    assert blas_calls == (["float32"] if blas.available else [])
