"""In-place sums of long arrays (y += x, y -= x) through NumPy's own OpenBLAS, for the optimizers.

Why: at two threads the matrix products leave each core holding, in its cache, its share of the weights and
gradients. A NumPy ufunc runs on one core and first pulls the other core's share across; OpenBLAS's axpy
(y += a·x, which NumPy does not expose) splits arrays of more than 10,000 numbers between its threads, so
each core can update what it holds: about 2% off a training step (README, Speed). OpenBLAS's scal, for
y *= a, stays on one thread below a million numbers, no better than NumPy's multiply, so it is not used.

The numbers are NumPy's: y + 1·x and y + (−1)·x are each one rounding, with a fused multiply-add or
without. Only NaNs can differ, and only in their bits: where y and x are both NaN, the result is NaN, but it
may carry x's payload and sign rather than y's. Whatever axpy can't take goes to the NumPy ufunc: another
BLAS than the scipy-openblas in NumPy's wheels; a y that is short, strided, read-only or not a plain float32
or float64 ndarray; an x not of y's dtype, shape and C order, or overlapping y.

`corename()` names the kernel that OpenBLAS chose for this processor (or that OPENBLAS_CORETYPE forced on it),
for a benchmark to print beside its times.
"""

from __future__ import annotations

import ctypes
import glob
import os

import numpy as np

# Shorter arrays go to NumPy: the ufunc's call costs less, and OpenBLAS splits only arrays of over 10,000.
MIN_SIZE = 16384


def _library() -> ctypes.CDLL | None:
    """The OpenBLAS NumPy has loaded (its wheels' scipy-openblas, 64-bit integers), or None for any other
    build. The file beside NumPy is opened only if it is already in memory (RTLD_NOLOAD), so it is NumPy's own
    copy, sharing NumPy's threads and their count."""
    try:
        config = np.__config__.CONFIG["Build Dependencies"]["blas"]
        if config.get("name") != "scipy-openblas" or "USE64BITINT" not in str(config.get("openblas configuration")):
            return None
    except (AttributeError, KeyError, TypeError):
        return None
    nowhere_else = getattr(os, "RTLD_NOLOAD", None)
    here = os.path.dirname(np.__file__)
    paths = [p for folder in (os.path.join(here, os.pardir, "numpy.libs"), os.path.join(here, ".dylibs"))
             for p in glob.glob(os.path.join(folder, "libscipy_openblas64_*")) if p.endswith((".so", ".dylib"))]
    if nowhere_else is None or len(paths) != 1:  # Windows, or none found, or more and no telling which
        return None
    try:
        return ctypes.CDLL(paths[0], mode=nowhere_else | os.RTLD_LAZY)
    except OSError:
        return None


def _load(lib: ctypes.CDLL | None) -> dict | None:
    """{dtype: axpy} from lib, or None."""
    if lib is None:
        return None
    try:
        found = {}
        for dtype, letter, real in ((np.dtype(np.float32), "s", ctypes.c_float),
                                    (np.dtype(np.float64), "d", ctypes.c_double)):
            axpy = getattr(lib, f"scipy_cblas_{letter}axpy64_")
            n, p = ctypes.c_int64, ctypes.c_void_p
            axpy.argtypes, axpy.restype = [n, real, p, n, p, n], None  # n, a, x, x's stride, y, y's stride
            found[dtype] = axpy
        return found
    except AttributeError:  # a build without these calls
        return None


_LIB = _library()
_AXPY = _load(_LIB)
available = _AXPY is not None


def corename() -> str | None:
    """OpenBLAS's name for the kernel its matrix products run ("Haswell", "SkylakeX", "Zen", ...), or None
    where NumPy's BLAS is another."""
    try:
        name = _LIB.scipy_openblas_get_corename64_
    except AttributeError:  # no library (None has no such attribute either), or one without the call
        return None
    name.argtypes, name.restype = [], ctypes.c_char_p
    return name().decode("ascii", "replace").strip() or None


def _axpy(y: np.ndarray, a: float, x: np.ndarray) -> bool:
    """y += a·x through OpenBLAS if it can take y and x (see above); False, having done nothing, if not."""
    if _AXPY is None or y.__class__ is not np.ndarray or x.__class__ is not np.ndarray:
        return False
    # max(…, 1): an empty array has no address to read (_address raises), even where a test lowers MIN_SIZE
    if not (y.size >= max(MIN_SIZE, 1) and y.flags.c_contiguous and y.flags.writeable and y.dtype in _AXPY
            and x.dtype == y.dtype and x.shape == y.shape and x.flags.c_contiguous and not np.may_share_memory(x, y)):
        return False
    _AXPY[y.dtype](y.size, a, _address(x), 1, _address(y), 1)
    return True


def _address(a: np.ndarray) -> int:
    """Where a's numbers start: read through a ctypes view of a writeable array (quicker than `a.ctypes.data`,
    which a read-only one needs)."""
    try:
        return ctypes.addressof(ctypes.c_char.from_buffer(a))
    except TypeError:
        return a.ctypes.data


def add_(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """y += x, in place (`np.add(y, x, out=y)`)."""
    return y if _axpy(y, 1.0, x) else np.add(y, x, out=y)


def subtract_(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """y -= x, in place (`np.subtract(y, x, out=y)`)."""
    return y if _axpy(y, -1.0, x) else np.subtract(y, x, out=y)
