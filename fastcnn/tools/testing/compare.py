"""Comparing a kernel's results with the reference: one tolerance table and the
comparison that names the worst element (part of :mod:`fastcnn.testing`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["TOLERANCES", "GRADCHECK_MAX_REL_ERROR", "tolerance", "Comparison", "compare",
           "assert_close"]

#: ``(dtype, kind) -> (rtol, atol)``; a comparison passes when, elementwise,
#: ``|actual - expected| <= atol + rtol * |expected|`` (NaN must match NaN,
#: an infinity the same infinity). The kinds:
#:
#: ``"sum"``     results of floating-point sums (conv, col2im, batch norm, pool
#:               backward with overlapping windows): the order of additions differs
#:               between implementations, so the last bits may too.
#: ``"exact"``   pure data movement or selection (im2col, max-pool forward, argmax
#:               routing, any kernel run twice with other thread counts): bit for bit.
#: ``"oracle"``  the NumPy reference against naive loops (float64 only).
#: ``"torch-forward"`` / ``"torch-grad"``: against PyTorch, whose float32 GEMMs
#:               and reductions are ordered differently again.
TOLERANCES: dict[tuple[str, str], tuple[float, float]] = {
    ("float32", "sum"): (1e-4, 1e-5),
    ("float64", "sum"): (1e-10, 1e-12),
    ("float32", "exact"): (0.0, 0.0),
    ("float64", "exact"): (0.0, 0.0),
    ("float64", "oracle"): (1e-12, 1e-12),
    ("float32", "torch-forward"): (1e-4, 1e-5),
    ("float64", "torch-forward"): (1e-10, 1e-12),
    ("float32", "torch-grad"): (1e-3, 1e-4),
    ("float64", "torch-grad"): (1e-10, 1e-12),
}

#: Largest relative error (:func:`fastcnn.gradcheck.relative_error`) accepted between
#: an analytic gradient and central differences, in float64.
GRADCHECK_MAX_REL_ERROR = 1e-6


def tolerance(dtype, kind: str = "sum") -> tuple[float, float]:
    """``(rtol, atol)`` for comparing arrays of ``dtype`` of the given ``kind``."""
    key = (np.dtype(dtype).name, kind)
    if key not in TOLERANCES:
        raise ValueError(f"tolerance: no entry for dtype {key[0]} and kind {kind!r}; "
                         f"known: {sorted(TOLERANCES)}.")
    return TOLERANCES[key]


# ------------------------------------------------------------------ comparing


@dataclass
class Comparison:
    """Outcome of :func:`compare`: the error sizes and, when it failed, why."""

    max_abs: float
    max_rel: float
    passed: bool
    message: str = ""


def compare(actual, expected, *, dtype=None, kind: str = "sum", what: str = "result",
            case: str | None = None) -> Comparison:
    """Compare two arrays with the tolerance of ``(dtype, kind)``.

    ``max_abs`` is ``max |a - e|``; ``max_rel`` is ``max |a - e| / |e|`` over the
    elements with ``|e| > atol`` (elements near zero are judged by ``atol`` alone,
    so they would only blow up the ratio). NaN positions must coincide; equal
    infinities count as equal. On failure ``message`` names the worst element
    (the one furthest beyond its allowed error).
    """
    expected = np.asarray(expected)
    actual = np.asarray(actual)
    dtype = np.dtype(dtype if dtype is not None else expected.dtype)
    rtol, atol = (0.0, 0.0) if kind == "exact" else tolerance(dtype, kind)
    where = f"{what}" + (f": case {case!r}" if case else "") + f", dtype {dtype.name}"
    if actual.shape != expected.shape:
        return Comparison(np.inf, np.inf, False,
                          f"{where}: shape {actual.shape}, expected {expected.shape}.")
    if actual.dtype != expected.dtype:
        return Comparison(np.inf, np.inf, False,
                          f"{where}: dtype {actual.dtype}, expected {expected.dtype} "
                          f"(a kernel returns the dtype it is given).")
    if actual.size == 0:
        return Comparison(0.0, 0.0, True)
    a = actual.astype(np.float64)
    e = expected.astype(np.float64)
    nan_a, nan_e = np.isnan(a), np.isnan(e)
    same = (a == e) | (nan_a & nan_e)
    with np.errstate(invalid="ignore"):
        diff = np.where(same, 0.0, np.abs(a - e))
    diff = np.where(np.isnan(diff), np.inf, diff)  # NaN against a number: infinitely wrong
    allowed = atol + rtol * np.where(np.isfinite(e), np.abs(e), 0.0)
    bad = diff > allowed
    big = np.abs(e) > atol
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = np.where(big & (diff > 0), diff / np.abs(e), 0.0)
    max_abs, max_rel = float(diff.max()), float(np.nan_to_num(rel, nan=np.inf).max())
    if not bad.any():
        return Comparison(max_abs, max_rel, True)
    with np.errstate(invalid="ignore"):
        excess = np.where(bad, diff - allowed, -np.inf)
    worst = np.unravel_index(int(np.argmax(excess)), diff.shape)
    rule = "exact comparison" if kind == "exact" else f"rtol={rtol:g}, atol={atol:g}"
    message = (
        f"{where}: {int(bad.sum())} of {diff.size} elements differ ({rule}); worst at "
        f"index {tuple(int(i) for i in worst)}: got {actual[worst]!r}, expected "
        f"{expected[worst]!r} (abs err {diff[worst]:.3g}); max abs err {max_abs:.3g}, "
        f"max rel err {max_rel:.3g}."
    )
    return Comparison(max_abs, max_rel, False, message)


def assert_close(actual, expected, *, dtype=None, kind: str = "sum", what: str = "result",
                 case: str | None = None) -> Comparison:
    """:func:`compare`, raising ``AssertionError`` with its message on failure."""
    result = compare(actual, expected, dtype=dtype, kind=kind, what=what, case=case)
    if not result.passed:
        raise AssertionError(result.message)
    return result
