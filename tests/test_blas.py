"""blas.py's in-place updates give NumPy's ufuncs' numbers bit for bit, and leave to NumPy what OpenBLAS can't take.

The optimizers' numbers through them: tests/test_speed_paths.py. No timing here: benchmarks/mnist_epoch.py
measures whether they are faster.
"""

from __future__ import annotations

import numpy as np
import pytest

from micrograd_mnist import blas

N = blas.MIN_SIZE + 37  # long enough for OpenBLAS, and not a multiple of any vector width


def awkward(n: int, dtype, seed: int = 0) -> np.ndarray:
    """Random numbers of every size, with NaN, both infinities, signed zeros, subnormals and the largest finite."""
    rng = np.random.default_rng(seed)
    a = (rng.standard_normal(n) * 10.0 ** rng.integers(-30, 30, n)).astype(dtype)
    info = np.finfo(dtype)
    specials = [np.nan, np.inf, -np.inf, 0.0, -0.0, info.smallest_subnormal, -info.smallest_subnormal,
                info.tiny, info.max, -info.max]
    a[rng.choice(n, len(specials) * 20, replace=False)] = np.repeat(np.array(specials, dtype), 20)
    return a


def same(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal bit for bit (so NaN equals NaN, and -0.0 differs from 0.0)."""
    return a.dtype == b.dtype and np.array_equal(a.view(f"u{a.itemsize}"), b.view(f"u{b.itemsize}"))


def test_the_wheels_openblas_is_found_exactly_when_numpy_was_built_with_it():
    config = np.__config__.CONFIG["Build Dependencies"]["blas"]
    wheel = config.get("name") == "scipy-openblas" and "USE64BITINT" in str(config.get("openblas configuration"))
    assert blas.available == wheel


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("factor", [0.9, 0.05, -1.5, 1.0, 1e-30, 3e30])
def test_scale_gives_numpys_numbers(dtype, factor, blas_calls):
    y = awkward(N, dtype)
    with np.errstate(all="ignore"):
        expected = np.multiply(y, factor, out=y.copy())
        blas.scale_(y, factor)
    assert same(y, expected)
    assert blas_calls == (["scal"] if blas.available else [])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ["add_", "subtract_"])
def test_add_and_subtract_give_numpys_numbers(dtype, name, blas_calls):
    y, x = awkward(N, dtype, 1), awkward(N, dtype, 2)
    ufunc = np.add if name == "add_" else np.subtract
    with np.errstate(all="ignore"):
        expected = ufunc(y, x, out=y.copy())
        getattr(blas, name)(y, x)
    assert same(y, expected)
    assert blas_calls == (["axpy"] if blas.available else [])


CANT_TAKE = {  # case: the routines still called (a y that fits with an x that does not: scale_ takes y alone)
    "short": [], "strided": [], "transposed": [], "integers": [],
    "mixed dtypes": ["scal"], "overlapping": ["scal"], "same array": ["scal"],
    "zero factor": ["axpy", "axpy"], "infinite factor": ["axpy", "axpy"],
}


def operands(case: str) -> tuple[np.ndarray, np.ndarray, float]:
    """Fresh y and x (and a factor) for one case of CANT_TAKE."""
    y, x = np.arange(N, dtype=np.float32), np.ones(N, np.float32)
    if case == "short":
        return y[:blas.MIN_SIZE - 1], x[:blas.MIN_SIZE - 1], 0.5
    if case == "strided":
        return np.arange(2.0 * N, dtype=np.float32)[::2], np.ones(2 * N, np.float32)[::2], 0.5
    if case == "transposed":  # F-ordered: its elements lie in another order than a C-ordered x's
        return np.arange(2.0 * N, dtype=np.float32).reshape(2, N).T, np.ones((N, 2), np.float32), 0.5
    if case == "integers":
        return np.arange(N), np.ones(N, dtype=np.int64), 2
    if case == "mixed dtypes":
        return y, x.astype(np.float64), 0.5
    if case == "overlapping":
        base = np.arange(N + 1, dtype=np.float32)
        return base[1:], base[:-1], 0.5
    if case == "same array":
        return y, y, 0.5
    y[0] = np.nan  # 0 · NaN and inf · 0 are NaN, which a special-cased scal may not give
    return y, x, 0.0 if case == "zero factor" else np.inf


@pytest.mark.parametrize("case", list(CANT_TAKE))
def test_what_openblas_cant_take_goes_to_numpy_with_the_same_numbers(case, blas_calls):
    for name, ufunc in (("add_", np.add), ("subtract_", np.subtract)):
        y, x, _ = operands(case)
        expected = ufunc(y, x, out=y.copy())
        assert same(getattr(blas, name)(y, x), expected) and same(y, expected)
    y, _, factor = operands(case)
    with np.errstate(all="ignore"):
        expected = np.multiply(y, factor, out=y.copy())
        assert same(blas.scale_(y, factor), expected) and same(y, expected)
    assert blas_calls == (CANT_TAKE[case] if blas.available else [])


def test_the_same_array_added_to_itself_doubles():
    y = np.arange(N, dtype=np.float32)
    assert same(blas.add_(y, y), np.arange(N, dtype=np.float32) * 2)
    assert same(blas.subtract_(y, y), np.zeros(N, np.float32))


def test_a_read_only_array_is_refused_as_numpy_refuses_it():
    y = np.zeros(N, np.float32)
    y.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        blas.add_(y, np.ones(N, np.float32))
    with pytest.raises(ValueError, match="read-only"):
        blas.scale_(y, 2.0)


def test_an_array_whose_address_is_kept_cannot_move_and_a_new_one_at_its_id_is_looked_up_again():
    y = np.zeros(N, np.float32)
    blas.add_(y, np.ones(N, np.float32))  # its address is kept now, beside a weak reference to it
    with pytest.raises(ValueError, match="cannot resize"):  # resize(), the one way an array's memory moves,
        y.resize(4 * N, refcheck=False)  # is refused for an array that has a weak reference
    kept = len(blas._addresses)
    for k in range(20):  # new arrays, some at a freed one's id
        z = np.full(N, float(k), np.float32)
        blas.subtract_(z, np.ones(N, np.float32))
        assert same(z, np.full(N, k - 1.0, np.float32))
        del z
    assert len(blas._addresses) == kept  # an entry goes with its array
