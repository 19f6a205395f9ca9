"""Argument checks shared by the whole package, so every message reads the same way.

Template: ``"{where}: {what} must {constraint}; got {value!r}."`` (docs/architecture.md, "The kernel contract").
These run before any compiled code, which therefore may assume valid input.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

__all__ = [
    "FLOAT_DTYPES",
    "as_float_array",
    "check_same_dtype",
    "check_shape",
    "to_pair",
    "check_positive_int",
    "check_nonnegative_int",
    "check_float",
    "MAX_WINDOW_INT",
]

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_FLOAT32, _FLOAT64 = FLOAT_DTYPES


def as_float_array(where: str, name: str, value, ndim=None) -> np.ndarray:
    """Return ``value`` as a C-contiguous float32/float64 ndarray, or raise.

    ``ndim`` may be an int or a tuple of allowed ranks. No dtype cast happens:
    an integer or other dtype is a ``TypeError`` (no silent casts), a wrong
    rank a ``ValueError``. Non-contiguous and read-only inputs are accepted
    (a non-contiguous one is copied once, here).
    """
    # The common case first, in a few attribute reads: already a C-contiguous float
    # array of an allowed rank, not 0-d (native float32/float64 dtypes are singletons,
    # so ``is`` compares them; anything else takes the full checks below).
    if (type(value) is np.ndarray and (value.dtype is _FLOAT32 or value.dtype is _FLOAT64)
            and value.flags.c_contiguous and value.ndim
            and (ndim is None or value.ndim == ndim
                 or (type(ndim) is tuple and value.ndim in ndim))):
        return value
    if not isinstance(value, np.ndarray):
        raise TypeError(
            f"{where}: {name} must be a numpy.ndarray of float32 or float64; "
            f"got {type(value).__name__}. Hint: np.asarray({name}, dtype=np.float32)."
        )
    if value.dtype not in FLOAT_DTYPES:
        raise TypeError(
            f"{where}: {name} has dtype {value.dtype}; expected float32 or float64. "
            f"Hint: {name}.astype(np.float32)."
        )
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if value.ndim not in allowed:
            want = " or ".join(str(d) for d in allowed)
            raise ValueError(
                f"{where}: {name} must have {want} dims; got {name}.shape={value.shape}."
            )
    return np.ascontiguousarray(value)


def check_same_dtype(where: str, **arrays: np.ndarray) -> np.dtype:
    """All named arrays share one dtype (mixed float32/float64 is an error)."""
    items = [(k, a) for k, a in arrays.items() if a is not None]
    dtype = items[0][1].dtype
    for name, arr in items[1:]:
        if arr.dtype != dtype:
            listing = ", ".join(f"{k}={a.dtype}" for k, a in items)
            raise TypeError(
                f"{where}: all arrays must share one dtype; got {listing}. "
                f"Hint: cast {name} with .astype({items[0][0]}.dtype)."
            )
    return dtype


def check_shape(where: str, name: str, value: np.ndarray, expected: tuple) -> None:
    """``value.shape == expected`` or a ValueError quoting both."""
    if tuple(value.shape) != tuple(expected):
        raise ValueError(
            f"{where}: {name} must have shape {tuple(expected)}; got {name}.shape={value.shape}."
        )


#: Largest stride, padding or window size accepted. No image side comes near it, and it
#: keeps every index product in the kernels (``(OH - 1) * stride + KH`` and the like)
#: far inside int64 / Py_ssize_t, so a huge value is this clear error rather than an
#: OverflowError from Cython or Numba (or an output of absurd size).
MAX_WINDOW_INT = 2**31 - 1


def _is_int(value) -> bool:
    # ``type(value) is int`` first: the common case, without the slow ABC check of
    # ``numbers.Integral`` (bool is a subclass of int, so its type is never int).
    return type(value) is int or (isinstance(value, numbers.Integral)
                                  and not isinstance(value, bool))


def check_positive_int(where: str, name: str, value) -> int:
    if not _is_int(value) or value < 1:
        raise ValueError(f"{where}: {name} must be a positive int; got {value!r}.")
    return int(value)


def check_nonnegative_int(where: str, name: str, value) -> int:
    if not _is_int(value) or value < 0:
        raise ValueError(f"{where}: {name} must be a non-negative int; got {value!r}.")
    return int(value)


def to_pair(where: str, name: str, value, minimum: int = 1) -> tuple[int, int]:
    """Normalise an int or an ``(h, w)`` pair of ints to a tuple of two ints >= minimum."""
    if type(value) is int and minimum <= value <= MAX_WINDOW_INT:
        return value, value          # the common case, checked in one comparison
    if (type(value) is tuple and len(value) == 2 and type(value[0]) is int
            and type(value[1]) is int and minimum <= min(value)
            and max(value) <= MAX_WINDOW_INT):
        return value                 # already a valid pair of plain ints
    if _is_int(value):
        pair = (value, value)
    elif isinstance(value, (tuple, list)) and len(value) == 2 and all(_is_int(v) for v in value):
        pair = tuple(value)
    else:
        raise ValueError(f"{where}: {name} must be an int or an (h, w) pair of ints; got {value!r}.")
    if min(pair) < minimum:
        what = "positive" if minimum == 1 else f">= {minimum}"
        raise ValueError(f"{where}: {name} must be {what}; got {value!r}.")
    if max(pair) > MAX_WINDOW_INT:
        raise ValueError(f"{where}: {name} must be at most 2**31 - 1 = {MAX_WINDOW_INT}; "
                         f"got {value!r}.")
    return int(pair[0]), int(pair[1])


def check_float(where: str, name: str, value, low=None, high=None,
                low_inclusive=True, high_inclusive=True) -> float:
    """A real number within an optional interval."""
    if type(value) is not float and (not isinstance(value, numbers.Real)
                                     or isinstance(value, bool)):
        raise ValueError(f"{where}: {name} must be a finite real number; got {value!r}.")
    if not (math.isfinite(value) if type(value) is float else np.isfinite(value)):
        raise ValueError(f"{where}: {name} must be a finite real number; got {value!r}.")
    ok_low = low is None or (value >= low if low_inclusive else value > low)
    ok_high = high is None or (value <= high if high_inclusive else value < high)
    if not (ok_low and ok_high):
        left = "[" if low_inclusive else "("
        right = "]" if high_inclusive else ")"
        lo = "-inf" if low is None else low
        hi = "inf" if high is None else high
        raise ValueError(f"{where}: {name} must lie in {left}{lo}, {hi}{right}; got {value!r}.")
    return float(value)


def check_nonnegative_float(where: str, name: str, value) -> float:
    """A finite float >= 0 ("... must lie in [0, inf); got ...")."""
    return check_float(where, name, value, low=0, high_inclusive=False)
