"""In-place updates of long arrays (y *= a, y += x, y -= x) through NumPy's own OpenBLAS, for the optimizers.

Why: at two threads the matrix products leave each core holding, in its cache, its share of the weights and
gradients. A NumPy ufunc runs on one core and first pulls the other core's share across; OpenBLAS's level-1
routines (scal and axpy, which NumPy does not expose) split the array between its threads, so each core can
update what it holds. benchmarks/mnist_epoch.py measures the difference.

The numbers are NumPy's, bit for bit: y·a, y + 1·x and y + (−1)·x are each one rounding, with a fused
multiply-add or without. Whatever these calls can't take (another BLAS than the scipy-openblas NumPy's
wheels ship, a short, strided, read-only or overlapping array, mixed dtypes, a zero or infinite factor,
which some OpenBLAS versions special-case) goes to the NumPy ufunc instead.
"""

from __future__ import annotations

import ctypes
import glob
import math
import os
import weakref

import numpy as np

# Shorter arrays go to NumPy: OpenBLAS runs them on one thread anyway, and the ufunc's call costs less.
MIN_SIZE = 16384


def _load() -> dict | None:
    """{dtype: (scal, axpy)} from the OpenBLAS NumPy loaded (its wheels' scipy-openblas, 64-bit integers), or
    None for any other build. Looked for only beside NumPy itself, so it is the library already in memory
    (loading it again returns the same handle) and shares NumPy's threads and their count."""
    try:
        config = np.__config__.CONFIG["Build Dependencies"]["blas"]
    except (AttributeError, KeyError, TypeError):
        return None
    if config.get("name") != "scipy-openblas" or "USE64BITINT" not in str(config.get("openblas configuration")):
        return None
    here = os.path.dirname(np.__file__)
    paths = [p for folder in (os.path.join(here, os.pardir, "numpy.libs"), os.path.join(here, ".dylibs"))
             for p in glob.glob(os.path.join(folder, "libscipy_openblas64_*"))
             if p.endswith((".so", ".dylib", ".dll"))]
    if len(paths) != 1:  # none, or more than one and no way to tell which NumPy uses
        return None
    try:
        lib = ctypes.CDLL(paths[0])
        found = {}
        for dtype, letter, real in ((np.dtype(np.float32), "s", ctypes.c_float),
                                    (np.dtype(np.float64), "d", ctypes.c_double)):
            scal, axpy = getattr(lib, f"scipy_cblas_{letter}scal64_"), getattr(lib, f"scipy_cblas_{letter}axpy64_")
            n, p = ctypes.c_int64, ctypes.c_void_p
            scal.argtypes, scal.restype = [n, real, p, n], None
            axpy.argtypes, axpy.restype = [n, real, p, n, p, n], None
            found[dtype] = (scal, axpy)
        return found
    except (OSError, AttributeError):
        return None


_ROUTINES = _load()
available = _ROUTINES is not None


# Data addresses by id(array), as (weak reference, address, nbytes): reading one from `a.ctypes` costs more than the
# call it is for. An entry goes when its array does, so an id Python reuses finds nothing. An ndarray's memory
# moves only in resize(), which NumPy refuses for an array with a weak reference; nbytes is checked all the same.
_addresses: dict[int, tuple] = {}


def _address(a: np.ndarray) -> int:
    entry = _addresses.get(id(a))
    if entry is not None and entry[0]() is a and entry[2] == a.nbytes:
        return entry[1]
    key = id(a)
    address = a.ctypes.data
    _addresses[key] = (weakref.ref(a, lambda _, key=key: _addresses.pop(key, None)), address, a.nbytes)
    return address


def _fits(y: np.ndarray) -> bool:
    return (y.__class__ is np.ndarray and y.size >= MIN_SIZE and y.flags.c_contiguous and y.flags.writeable
            and y.dtype in _ROUTINES)


def _pair(y: np.ndarray, x) -> bool:
    return (x.__class__ is np.ndarray and x.dtype == y.dtype and x.shape == y.shape and x.flags.c_contiguous
            and not np.may_share_memory(x, y))


def scale_(y: np.ndarray, a: float) -> np.ndarray:
    """y *= a, in place (`np.multiply(y, a, out=y)`)."""
    if _ROUTINES is not None and a != 0 and math.isfinite(a) and _fits(y):
        _ROUTINES[y.dtype][0](y.size, a, _address(y), 1)
        return y
    return np.multiply(y, a, out=y)


def add_(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """y += x, in place (`np.add(y, x, out=y)`)."""
    if _ROUTINES is not None and _fits(y) and _pair(y, x):
        _ROUTINES[y.dtype][1](y.size, 1.0, _address(x), 1, _address(y), 1)
        return y
    return np.add(y, x, out=y)


def subtract_(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """y -= x, in place (`np.subtract(y, x, out=y)`)."""
    if _ROUTINES is not None and _fits(y) and _pair(y, x):
        _ROUTINES[y.dtype][1](y.size, -1.0, _address(x), 1, _address(y), 1)
        return y
    return np.subtract(y, x, out=y)
