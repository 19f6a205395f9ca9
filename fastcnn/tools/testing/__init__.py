"""Check a convolution, pooling or batch-norm kernel against fastcnn's NumPy reference.

This module is public: it is what fastcnn's own tests use to check its fast
backends, and it is meant for anyone who writes kernels of their own (for
example the ``conv_forward`` / ``max_pool_backward`` / ``batchnorm_backward``
functions of CS231n's assignments). It holds three things:

1. **The named shape grid**, as data: :data:`CONV_CASES`, :data:`POOL_CASES`,
   :data:`BATCHNORM_CASES` (and :data:`IM2COL_CASES`, the conv geometries). Each
   case has a readable ``id`` (``"3x3-pad1"``, ``"3x3s2-overlap"``, ``"N0"``, ...)
   that names the corner of the geometry it exercises, and makes its own inputs.
2. **One tolerance table**, :data:`TOLERANCES`, keyed by ``(dtype, kind)``, and
   :func:`assert_close`, which uses it and, on failure, names the worst element:
   its index, the value, the expected value, the case and the dtype.
3. :func:`check_kernel`, which runs *your* forward and backward over every case
   and both dtypes, compares them with the reference (computed in float64 and
   cast), gradient-checks your backward against your own forward by central
   differences on small float64 cases, and reports the first mismatch.

Example: a max-pool backward that writes ``dx[...] = dout`` instead of adding
(``+=``) is wrong exactly where windows overlap, and ``check_kernel`` says so::

    import numpy as np
    from fastcnn.testing import check_kernel

    def pool_forward(x, size, stride, padding):     # ints only, no padding
        n, c, h, w = x.shape
        oh, ow = (h - size) // stride + 1, (w - size) // stride + 1
        out = np.empty((n, c, oh, ow), dtype=x.dtype)
        for i in range(oh):
            for j in range(ow):
                window = x[:, :, i*stride:i*stride + size, j*stride:j*stride + size]
                out[:, :, i, j] = window.max(axis=(2, 3))
        return out, (x, size, stride)

    def pool_backward(dout, cache):                 # deliberately wrong
        x, size, stride = cache
        dx = np.zeros_like(x)
        for n, c, i, j in np.ndindex(*dout.shape):
            window = x[n, c, i*stride:i*stride + size, j*stride:j*stride + size]
            p, q = np.unravel_index(np.argmax(window), window.shape)
            dx[n, c, i*stride + p, j*stride + q] = dout[n, c, i, j]   # bug: must be +=
        return dx

    check_kernel("maxpool2d", pool_forward, pool_backward,
                 cases=["2x2s2", "3x3s2-overlap", "stride1"])
    # AssertionError: maxpool2d backward dx (integer dout): case '3x3s2-overlap'
    #   x.shape=(2, 3, 9, 9) size=3 stride=2 padding=0, dtype float32: 7 of 486
    #   elements differ (exact comparison); worst at index (...): got ..., expected ...

Fix the ``=`` and the same call passes (``tests/kernels/test_testing_module.py``
runs both). Central differences would catch this bug too (on the float64 cases).

The user functions follow the kernel API of ``fastcnn.kernels`` (DESIGN.md):

==========  =====================================================  ==============================
kernel      forward                                                backward
==========  =====================================================  ==============================
conv2d      ``forward(x, w, b, stride, padding) -> (out, cache)``  ``backward(dout, cache) -> (dx, dw, db)``
maxpool2d   ``forward(x, size, stride, padding) -> (out, cache)``  ``backward(dout, cache) -> dx``
avgpool2d   ``forward(x, size, stride, padding, ceil_mode,         ``backward(dout, cache) -> dx``
            count_include_pad, divisor_override) -> (out, cache)``
adaptive_   ``forward(x, output_size) -> (out, cache)``            ``backward(dout, cache) -> dx``
avgpool2d
batchnorm   ``forward(x, gamma, beta, running_mean, running_var,   ``backward(dout, cache) -> (dx, dgamma, dbeta)``
            training, momentum, eps) -> (out, cache)``
im2col      ``forward(x, kh, kw, stride, padding) -> cols``        ``backward(cols, x_shape, kh, kw, stride, padding) -> x``
==========  =====================================================  ==============================

``stride``/``padding``/``size`` arrive as ints or ``(h, w)`` pairs as the case
states them; one conv case (``asym-pad``) uses ``((top, bottom), (left, right))``
padding: leave it out with ``cases=`` if your kernel does not support that form.
The max-pooling cases ``ceil-mode``, ``ceil-pad-overlap``, ``dilated`` and
``dilated-pairs-ceil`` also pass ``dilation, ceil_mode`` (PyTorch's arguments) after
``padding``; leave them out the same way if your kernel has no such arguments.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

import numpy as np

from fastcnn.kernels import _dispatch as _backend
from fastcnn import kernels as _kernels
from fastcnn.tools.gradcheck import numeric_gradient, relative_error

__all__ = [
    "ConvCase",
    "PoolCase",
    "AvgPoolCase",
    "AdaptivePoolCase",
    "BatchNormCase",
    "AVGPOOL_CASES",
    "ADAPTIVE_CASES",
    "CONV_CASES",
    "IM2COL_CASES",
    "POOL_CASES",
    "BATCHNORM_CASES",
    "TOLERANCES",
    "GRADCHECK_MAX_REL_ERROR",
    "KERNELS",
    "tolerance",
    "compare",
    "assert_close",
    "cases_for",
    "random_cases",
    "distinct_values",
    "kernel_functions",
    "CheckResult",
    "KernelReport",
    "check_kernel",
]

#: The kernels :func:`check_kernel` knows.
KERNELS = ("conv2d", "maxpool2d", "avgpool2d", "adaptive_avgpool2d", "batchnorm", "im2col")

# ----------------------------------------------------------------- tolerances

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


# ---------------------------------------------------------------- shape grid


def distinct_values(shape, rng: np.random.Generator, dtype=np.float64,
                    spacing: float = 0.0625) -> np.ndarray:
    """Values that are all different and at least ``spacing`` apart (a shuffled
    ``arange`` times ``spacing``, centred), exactly representable in float32.

    Max pooling is not differentiable where two window elements tie, so central
    differences with step ``h`` are only meaningful when window values differ by
    much more than ``2h``; these inputs also make the winner of every window unique.
    """
    size = int(np.prod(shape))
    values = (rng.permutation(size) - size // 2) * spacing
    return values.reshape(shape).astype(dtype)


@dataclass(frozen=True)
class ConvCase:
    """One convolution geometry: ``x (n, c, h, w)``, ``w (f, c, kh, kw)``."""

    id: str
    n: int
    c: int
    h: int
    w: int
    f: int
    kh: int
    kw: int
    stride: int | tuple = 1
    padding: int | tuple = 0

    @property
    def x_shape(self):
        return (self.n, self.c, self.h, self.w)

    @property
    def w_shape(self):
        return (self.f, self.c, self.kh, self.kw)

    def describe(self) -> str:
        return (f"x.shape={self.x_shape} w.shape={self.w_shape} stride={self.stride} "
                f"padding={self.padding}")

    @property
    def size(self) -> int:
        """Elements in x, w and b: decides whether a gradient check is cheap."""
        return int(np.prod(self.x_shape) + np.prod(self.w_shape) + self.f)

    def make_inputs(self, rng: np.random.Generator, dtype) -> dict:
        """x ~ N(0, 1), w ~ N(0, 1/fan_in) so outputs are O(1) (float32 error stays
        relative), b ~ N(0, 1)."""
        fan_in = self.c * self.kh * self.kw
        return {
            "x": rng.standard_normal(self.x_shape).astype(dtype),
            "w": (rng.standard_normal(self.w_shape) / np.sqrt(fan_in)).astype(dtype),
            "b": rng.standard_normal(self.f).astype(dtype),
        }


@dataclass(frozen=True)
class PoolCase:
    """One max-pooling geometry: ``x (n, c, h, w)`` and a ``size`` window."""

    id: str
    n: int
    c: int
    h: int
    w: int
    size: int | tuple = 2
    stride: int | tuple = 2
    padding: int | tuple = 0
    dilation: int | tuple = 1
    ceil_mode: bool = False

    @property
    def x_shape(self):
        return (self.n, self.c, self.h, self.w)

    @property
    def args(self) -> tuple:
        """What the forward gets after ``x``: ``size, stride, padding``, then
        ``dilation, ceil_mode`` only for the cases that use them (so a kernel without
        those arguments runs the rest of the grid)."""
        extra = (self.dilation, self.ceil_mode) if (self.dilation, self.ceil_mode) != (1, False) \
            else ()
        return (self.size, self.stride, self.padding) + extra

    def describe(self) -> str:
        extra = (f" dilation={self.dilation}" if self.dilation != 1 else "") + \
            (" ceil_mode=True" if self.ceil_mode else "")
        return (f"x.shape={self.x_shape} size={self.size} stride={self.stride} "
                f"padding={self.padding}{extra}")

    @property
    def overlapping(self) -> bool:
        """True when some input element may lie in two windows (stride < window extent)."""
        (kh, kw), (sh, sw), (dh, dw) = _pair(self.size), _pair(self.stride), _pair(self.dilation)
        return sh < (kh - 1) * dh + 1 or sw < (kw - 1) * dw + 1

    def make_inputs(self, rng: np.random.Generator, dtype) -> dict:
        """Distinct values (no ties, see :func:`distinct_values`)."""
        return {"x": distinct_values(self.x_shape, rng, dtype)}


@dataclass(frozen=True)
class AvgPoolCase:
    """One average-pooling geometry with PyTorch's ``avg_pool2d`` options."""

    id: str
    n: int
    c: int
    h: int
    w: int
    size: int | tuple = 2
    stride: int | tuple | None = None
    padding: int | tuple = 0
    ceil_mode: bool = False
    count_include_pad: bool = True
    divisor_override: int | None = None

    @property
    def x_shape(self):
        return (self.n, self.c, self.h, self.w)

    @property
    def args(self) -> tuple:
        return (self.size, self.stride, self.padding, self.ceil_mode, self.count_include_pad,
                self.divisor_override)

    def describe(self) -> str:
        return (f"x.shape={self.x_shape} size={self.size} stride={self.stride} "
                f"padding={self.padding} ceil_mode={self.ceil_mode} count_include_pad="
                f"{self.count_include_pad} divisor_override={self.divisor_override}")

    def make_inputs(self, rng: np.random.Generator, dtype) -> dict:
        return {"x": rng.standard_normal(self.x_shape).astype(dtype)}


@dataclass(frozen=True)
class AdaptivePoolCase:
    """Adaptive average pooling of ``x (n, c, h, w)`` to ``output_size``."""

    id: str
    n: int
    c: int
    h: int
    w: int
    output_size: int | tuple = 1

    @property
    def x_shape(self):
        return (self.n, self.c, self.h, self.w)

    @property
    def args(self) -> tuple:
        return (self.output_size,)

    def describe(self) -> str:
        return f"x.shape={self.x_shape} output_size={self.output_size}"

    def make_inputs(self, rng: np.random.Generator, dtype) -> dict:
        return {"x": rng.standard_normal(self.x_shape).astype(dtype)}


@dataclass(frozen=True)
class BatchNormCase:
    """One batch-norm input shape, dense ``(N, D)`` or spatial ``(N, C, H, W)``,
    run in the given ``modes`` (``"train"`` and/or ``"eval"``)."""

    id: str
    shape: tuple
    modes: tuple = ("train", "eval")
    momentum: float = 0.9
    eps: float = 1e-5

    @property
    def channels(self) -> int:
        return self.shape[1]

    def describe(self) -> str:
        return (f"x.shape={self.shape} momentum={self.momentum} eps={self.eps}")

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    def make_inputs(self, rng: np.random.Generator, dtype) -> dict:
        """x with a per-channel offset and scale (so normalising matters), gamma
        and beta random, positive running variance."""
        c = self.channels
        bshape = (1, c) + (1,) * (len(self.shape) - 2)
        loc = rng.uniform(-2, 2, size=c).reshape(bshape)
        scale = rng.uniform(0.5, 2, size=c).reshape(bshape)
        x = loc + scale * rng.standard_normal(self.shape)
        return {
            "x": x.astype(dtype),
            "gamma": rng.uniform(0.5, 1.5, size=c).astype(dtype),
            "beta": rng.standard_normal(c).astype(dtype),
            "running_mean": rng.standard_normal(c).astype(dtype),
            "running_var": rng.uniform(0.5, 2.0, size=c).astype(dtype),
        }


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


#: Convolution geometries (also the im2col/col2im grid).
CONV_CASES: list[ConvCase] = [
    ConvCase("1x1", 2, 3, 5, 5, 4, 1, 1),
    ConvCase("3x3-pad1", 2, 3, 6, 6, 4, 3, 3, 1, 1),
    ConvCase("stride2", 2, 3, 7, 7, 4, 3, 3, 2, 1),
    ConvCase("nonsquare-3x5", 2, 2, 7, 8, 3, 3, 5),
    ConvCase("nonsquare-5x3", 2, 2, 8, 7, 3, 5, 3, 1, (2, 1)),
    ConvCase("rect-input", 2, 3, 5, 9, 2, 3, 3, 1, 1),
    ConvCase("stride-gt-kernel", 2, 2, 9, 9, 3, 2, 2, 3),
    ConvCase("pad-kernel-minus-1", 2, 2, 5, 5, 3, 3, 3, 1, 2),
    ConvCase("kernel-equals-padded-input", 2, 2, 4, 4, 3, 6, 6, 1, 1),
    ConvCase("batch1-chan1", 1, 1, 6, 6, 1, 3, 3),
    ConvCase("odd-sizes", 3, 5, 11, 7, 7, 3, 3, 2, 1),
    ConvCase("many-channels", 2, 32, 6, 6, 32, 3, 3, 1, 1),
    ConvCase("hw-pairs", 2, 3, 8, 10, 4, 3, 3, (1, 2), (2, 0)),
    ConvCase("asym-pad", 2, 3, 6, 7, 2, 3, 3, 2, ((0, 1), (1, 0))),
    ConvCase("N0", 0, 3, 5, 5, 4, 3, 3, 1, 1),
]

#: im2col/col2im run over the convolution geometries.
IM2COL_CASES: list[ConvCase] = CONV_CASES

#: Max-pooling geometries.
POOL_CASES: list[PoolCase] = [
    PoolCase("2x2s2", 2, 3, 8, 8, 2, 2),
    PoolCase("3x3s2-overlap", 2, 3, 9, 9, 3, 2),
    PoolCase("floor-mode", 2, 2, 7, 9, 2, 2),          # 7x9 does not tile into 2x2 windows
    PoolCase("pad1", 2, 2, 6, 6, 3, 2, 1),
    PoolCase("nonsquare", 2, 2, 6, 9, (2, 3), (2, 3)),
    PoolCase("stride1", 2, 2, 5, 5, 2, 1),
    PoolCase("hw-pairs", 2, 2, 7, 6, (3, 2), (2, 1), (1, 0)),
    PoolCase("global", 2, 3, 4, 4, 4, 4),
    PoolCase("batch1-chan1", 1, 1, 6, 6, 2, 2),
    PoolCase("many-channels", 2, 32, 6, 6, 2, 2),
    PoolCase("N0", 0, 3, 6, 6, 2, 2),
    PoolCase("ceil-mode", 2, 2, 7, 9, 2, 2, ceil_mode=True),
    PoolCase("ceil-pad-overlap", 2, 2, 8, 9, 3, 2, 1, ceil_mode=True),
    PoolCase("dilated", 2, 2, 9, 9, 3, 1, 1, dilation=2),
    PoolCase("dilated-pairs-ceil", 1, 2, 11, 10, (3, 2), (2, 3), (1, 1), (2, 3), True),
]

#: Average-pooling geometries (PyTorch's avg_pool2d options).
AVGPOOL_CASES: list[AvgPoolCase] = [
    AvgPoolCase("2x2s2", 2, 3, 8, 8),
    AvgPoolCase("floor-mode", 2, 2, 7, 9),
    AvgPoolCase("ceil-mode", 2, 2, 7, 9, 2, 2, 0, True),
    AvgPoolCase("3x3s2-pad", 2, 2, 9, 10, 3, 2, 1),
    AvgPoolCase("pad-exclude", 2, 2, 9, 10, 3, 2, 1, False, False),
    AvgPoolCase("pad-ceil", 2, 2, 9, 10, 3, 2, 1, True),
    AvgPoolCase("hw-pairs-ceil", 1, 2, 8, 7, (3, 2), (2, 1), (1, 1), True),
    AvgPoolCase("divisor-override", 1, 2, 8, 7, 2, 2, 1, True, True, 3),
    AvgPoolCase("asym-pad-exclude", 2, 2, 6, 7, 2, 2, ((0, 1), (1, 0)), False, False),
    AvgPoolCase("N0", 0, 3, 6, 6),
]

#: Adaptive average-pooling geometries (output 1 = global average pooling).
ADAPTIVE_CASES: list[AdaptivePoolCase] = [
    AdaptivePoolCase("global", 2, 3, 5, 7, 1),
    AdaptivePoolCase("uneven", 2, 3, 7, 9, (3, 4)),
    AdaptivePoolCase("identity", 1, 2, 5, 6, (5, 6)),
    AdaptivePoolCase("upsampling", 1, 2, 4, 5, (7, 3)),
    AdaptivePoolCase("N0", 0, 3, 6, 6, 2),
]

#: Batch-norm shapes (each run in training and inference mode unless stated).
BATCHNORM_CASES: list[BatchNormCase] = [
    BatchNormCase("dense", (8, 5)),
    BatchNormCase("dense-wide", (16, 33)),
    BatchNormCase("spatial", (4, 3, 5, 5)),
    BatchNormCase("batch1-spatial", (1, 4, 5, 6)),
    BatchNormCase("rect-spatial", (3, 2, 4, 7), momentum=0.5, eps=1e-3),
    BatchNormCase("many-channels", (2, 32, 3, 3)),
    BatchNormCase("N0-eval", (0, 3, 4, 4), modes=("eval",)),
]

_GRIDS = {"conv2d": CONV_CASES, "im2col": IM2COL_CASES, "maxpool2d": POOL_CASES,
          "avgpool2d": AVGPOOL_CASES, "adaptive_avgpool2d": ADAPTIVE_CASES,
          "batchnorm": BATCHNORM_CASES}


def cases_for(kernel: str, cases=None) -> list:
    """The grid of ``kernel``, or the subset named by ``cases`` (ids or case objects)."""
    _check_kernel_name(kernel)
    grid = _GRIDS[kernel]
    if cases is None:
        return list(grid)
    by_id = {case.id: case for case in grid}
    chosen = []
    for case in cases:
        if isinstance(case, str):
            if case not in by_id:
                raise ValueError(f"cases_for: unknown {kernel} case {case!r}; "
                                 f"known: {sorted(by_id)}.")
            chosen.append(by_id[case])
        else:
            chosen.append(case)
    return chosen


def _check_kernel_name(kernel):
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {list(KERNELS)}; got {kernel!r}.")


def random_cases(kernel: str, rng: np.random.Generator, count: int) -> list:
    """``count`` random valid cases for ``kernel``, ids ``"random-0"``, ...

    The geometry is *constructed* valid, never filtered: draw the window, stride
    and padding first, then an input at least as large as the window needs.
    Sizes stay small (<= 9 per spatial dim) so a whole run is quick.
    """
    _check_kernel_name(kernel)
    out = []
    for k in range(count):
        cid = f"random-{k}"
        if kernel in ("conv2d", "im2col"):
            kh, kw = (int(v) for v in rng.integers(1, 5, size=2))
            sh, sw = (int(v) for v in rng.integers(1, 4, size=2))
            if rng.random() < 0.25:   # asymmetric padding, as Keras "same" with stride > 1
                pt, pb, pl, pr = (int(rng.integers(0, kk)) for kk in (kh, kh, kw, kw))
                padding = ((pt, pb), (pl, pr))
            else:
                pt = pb = int(rng.integers(0, kh))
                pl = pr = int(rng.integers(0, kw))
                padding = (pt, pl)
            h = int(rng.integers(max(1, kh - pt - pb), 10))
            w = int(rng.integers(max(1, kw - pl - pr), 10))
            out.append(ConvCase(cid, int(rng.integers(1, 4)), int(rng.integers(1, 6)), h, w,
                                int(rng.integers(1, 6)), kh, kw, (sh, sw), padding))
        elif kernel in ("maxpool2d", "avgpool2d"):
            out.append(_random_pool_case(kernel, cid, rng))
        elif kernel == "adaptive_avgpool2d":
            h, w = (int(v) for v in rng.integers(1, 10, size=2))
            out.append(AdaptivePoolCase(cid, int(rng.integers(1, 4)), int(rng.integers(1, 5)),
                                        h, w, tuple(int(v) for v in rng.integers(1, 8, 2))))
        else:
            c = int(rng.integers(1, 9))
            if rng.random() < 0.5:
                shape = (int(rng.integers(4, 17)), c)
            else:
                shape = (int(rng.integers(1, 4)), c, int(rng.integers(2, 7)),
                         int(rng.integers(2, 7)))
            out.append(BatchNormCase(cid, shape, momentum=float(rng.uniform(0.0, 1.0)),
                                     eps=float(10.0 ** rng.uniform(-5, -2))))
    return out


# ------------------------------------------------------- functions to compare


def kernel_functions(kernel: str, backend: str = "numpy") -> tuple[Callable, Callable]:
    """``(forward, backward)`` of ``kernel`` running on ``backend``, with the user
    signatures of :func:`check_kernel` (the public ``fastcnn.kernels`` functions
    inside ``use_backend(backend)``; a backward follows its cache's backend)."""
    _check_kernel_name(kernel)
    fwd_name, bwd_name = {
        "conv2d": ("conv2d_forward", "conv2d_backward"),
        "maxpool2d": ("maxpool2d_forward", "maxpool2d_backward"),
        "avgpool2d": ("avgpool2d_forward", "avgpool2d_backward"),
        "adaptive_avgpool2d": ("adaptive_avgpool2d_forward", "adaptive_avgpool2d_backward"),
        "batchnorm": ("batchnorm_forward", "batchnorm_backward"),
        "im2col": ("im2col", "col2im"),
    }[kernel]
    fwd, bwd = getattr(_kernels, fwd_name), getattr(_kernels, bwd_name)

    def forward(*args):
        with _backend.use_backend(backend):
            return fwd(*args)

    def backward(*args):
        with _backend.use_backend(backend):
            return bwd(*args)

    forward.__name__ = f"{backend}.{fwd_name}"
    backward.__name__ = f"{backend}.{bwd_name}"
    return forward, backward


# ------------------------------------------------------------------- reports


@dataclass
class CheckResult:
    """One comparison made by :func:`check_kernel`."""

    kernel: str
    case: str
    dtype: str
    quantity: str          # e.g. "forward out", "backward dx", "gradcheck dw"
    max_abs: float
    max_rel: float
    passed: bool
    message: str = ""


@dataclass
class KernelReport:
    """Every comparison of one :func:`check_kernel` call, in the order made."""

    kernel: str
    results: list[CheckResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(r.passed for r in self.results)

    @property
    def failures(self) -> list[CheckResult]:
        return [r for r in self.results if not r.passed]

    @property
    def first_failure(self) -> CheckResult | None:
        failures = self.failures
        return failures[0] if failures else None

    def summary(self) -> str:
        n_cases = len({(r.case, r.dtype) for r in self.results})
        if self.ok:
            return (f"{self.kernel}: all {len(self.results)} checks passed over "
                    f"{n_cases} case x dtype combinations.")
        return (f"{self.kernel}: {len(self.failures)} of {len(self.results)} checks failed; "
                f"first: {self.first_failure.message}")

    __str__ = summary


# ----------------------------------------------------------------- the checks


def _cast(arrays: dict, dtype) -> dict:
    return {k: (v.astype(dtype) if isinstance(v, np.ndarray) else v) for k, v in arrays.items()}


def _copy(arrays: dict) -> dict:
    return {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in arrays.items()}


def _unpack_forward(result, what):
    if isinstance(result, tuple) and len(result) == 2:
        return result
    raise AssertionError(f"{what} must return (out, cache); got {type(result).__name__}"
                         + (f" of length {len(result)}" if isinstance(result, tuple) else "")
                         + ".")


def _as_tuple(result, n, what):
    if n == 1:
        if isinstance(result, tuple):
            raise AssertionError(f"{what} must return one array; got a tuple of {len(result)}.")
        return (result,)
    if not (isinstance(result, tuple) and len(result) == n):
        raise AssertionError(f"{what} must return a tuple of {n} arrays; "
                             f"got {type(result).__name__}.")
    return result


class _Recorder:
    """Collects CheckResults; with ``stop`` set, raises at the first failure."""

    def __init__(self, kernel, stop: bool):
        self.report = KernelReport(kernel)
        self.stop = stop

    def compare(self, case, dtype, quantity, actual, expected, kind):
        what = f"{self.report.kernel} {quantity}"
        cmp = compare(actual, expected, dtype=dtype, kind=kind, what=what,
                      case=case.id)
        message = cmp.message
        if message:
            message = message.replace(f"case {case.id!r}",
                                      f"case {case.id!r} {case.describe()}", 1)
        self.add(CheckResult(self.report.kernel, case.id, np.dtype(dtype).name, quantity,
                             cmp.max_abs, cmp.max_rel, cmp.passed, message))

    def gradcheck(self, case, quantity, analytic, numeric, indices=None):
        if indices is not None:
            idx = tuple(np.array(i) for i in zip(*indices))
            analytic, numeric = np.asarray(analytic)[idx], numeric[idx]
        if np.shape(analytic) != np.shape(numeric):
            err, message = np.inf, (f"{self.report.kernel} {quantity}: case {case.id!r} "
                                    f"{case.describe()}: analytic gradient has shape "
                                    f"{np.shape(analytic)}, expected {np.shape(numeric)}.")
            passed = False
        else:
            err = relative_error(analytic, numeric)
            passed = err < GRADCHECK_MAX_REL_ERROR
            message = "" if passed else (
                f"{self.report.kernel} {quantity}: case {case.id!r} {case.describe()}, dtype "
                f"float64: relative error {err:.3g} between your backward and central "
                f"differences of your forward exceeds {GRADCHECK_MAX_REL_ERROR:g}.")
        abs_err = float(np.max(np.abs(np.asarray(analytic, float) - numeric))) \
            if passed or np.shape(analytic) == np.shape(numeric) else np.inf
        self.add(CheckResult(self.report.kernel, case.id, "float64", quantity,
                             abs_err if np.size(numeric) else 0.0, err, passed, message))

    def add(self, result: CheckResult):
        self.report.results.append(result)
        if self.stop and not result.passed:
            raise AssertionError(result.message)

    def error(self, case, dtype, quantity, exc: Exception):
        """The user's function raised: that is a failed check, with the reason."""
        self.add(CheckResult(self.report.kernel, case.id, np.dtype(dtype).name, quantity,
                             np.inf, np.inf, False,
                             f"{self.report.kernel} {quantity}: case {case.id!r} "
                             f"{case.describe()}, dtype {np.dtype(dtype).name}: raised "
                             f"{type(exc).__name__}: {exc}"))


def _sample_indices(shape, rng, limit):
    """Every index of ``shape`` if there are at most ``limit``, else ``limit`` random ones."""
    total = int(np.prod(shape))
    if total <= limit:
        return list(np.ndindex(*shape))
    flat = rng.choice(total, size=limit, replace=False)
    return [tuple(int(i) for i in np.unravel_index(f, shape)) for f in flat]


#: Central-difference steps. Convolution and im2col are linear and max pooling is
#: piecewise linear (our pool inputs are 0.0625 apart, so no step crosses a kink):
#: for those the difference quotient is exact whatever the step, and a large step
#: keeps the rounding error of the summed loss (about 1e-16 * |L| / h) negligible.
#: Batch norm is smooth but curved: its O(h^2) truncation error (~1e-8 at h = 1e-4)
#: stays well below the 1e-6 limit, and rounding error is smaller than at 1e-5 or 1e-6.
_STEP = {"linear": 1e-3, "smooth": 1e-4}


def _check_conv(rec, fwd, bwd, ref_fwd, ref_bwd, case, dtype, rng, gradcheck, gc_limit):
    inputs = _cast(case.make_inputs(rng, np.float64), dtype)
    geometry = (case.stride, case.padding)
    ref_out, ref_cache = ref_fwd(*_cast(inputs, np.float64).values(), *geometry)
    dout = rng.standard_normal(ref_out.shape).astype(dtype)
    ref_grads = ref_bwd(dout.astype(np.float64), ref_cache)
    user_inputs = _copy(inputs)
    with _guard(rec, case, dtype, "forward"):
        out, cache = _unpack_forward(fwd(*user_inputs.values(), *geometry), "forward")
    rec.compare(case, dtype, "forward out", out, ref_out.astype(dtype), "sum")
    for name in inputs:
        rec.compare(case, dtype, f"forward leaves {name} unchanged", user_inputs[name],
                    inputs[name], "exact")
    with _guard(rec, case, dtype, "backward"):
        grads = _as_tuple(bwd(dout.copy(), cache), 3, "backward")
    for name, got, want in zip(("dx", "dw", "db"), grads, ref_grads):
        rec.compare(case, dtype, f"backward {name}", got, want.astype(dtype), "sum")
    if gradcheck and dtype == np.float64 and case.n > 0:
        arrays = _copy(inputs)
        _, cache = fwd(*arrays.values(), *geometry)
        analytic = bwd(dout, cache)

        def f():
            return fwd(*arrays.values(), *geometry)[0]

        for (name, arr), grad in zip(arrays.items(), analytic):
            idx = _sample_indices(arr.shape, rng, gc_limit)
            numeric = numeric_gradient(f, arr, dout, h=_STEP["linear"], indices=idx)
            rec.gradcheck(case, f"gradcheck d{name}", grad, numeric, idx)


def _check_im2col(rec, fwd, bwd, ref_fwd, ref_bwd, case, dtype, rng, gradcheck, gc_limit):
    x = case.make_inputs(rng, np.float64)["x"].astype(dtype)
    geometry = (case.kh, case.kw, case.stride, case.padding)
    ref_cols = ref_fwd(x.astype(np.float64), *geometry)
    c = rng.standard_normal(ref_cols.shape).astype(dtype)
    ref_x = ref_bwd(c.astype(np.float64), case.x_shape, *geometry)
    with _guard(rec, case, dtype, "forward"):
        cols = _as_tuple(fwd(x.copy(), *geometry), 1, "forward")[0]
    rec.compare(case, dtype, "im2col cols", cols, ref_cols.astype(dtype), "exact")
    with _guard(rec, case, dtype, "backward"):
        back = _as_tuple(bwd(c.copy(), case.x_shape, *geometry), 1, "backward")[0]
    rec.compare(case, dtype, "col2im x", back, ref_x.astype(dtype), "sum")
    if gradcheck and dtype == np.float64 and case.n > 0:
        # im2col is linear, so d<im2col(x), c>/dx = col2im(c): the adjoint identity.
        xg = x.copy()
        idx = _sample_indices(xg.shape, rng, gc_limit)
        numeric = numeric_gradient(lambda: fwd(xg, *geometry), xg, c, h=_STEP["linear"],
                                   indices=idx)
        rec.gradcheck(case, "gradcheck col2im = d<im2col(x), c>/dx", back, numeric, idx)


def _check_pool(rec, fwd, bwd, ref_fwd, ref_bwd, case, dtype, rng, gradcheck, gc_limit):
    x = case.make_inputs(rng, dtype)["x"]
    geometry = case.args
    ref_out, ref_cache = ref_fwd(x.astype(np.float64), *geometry)
    dout = rng.standard_normal(ref_out.shape).astype(dtype)
    # Small distinct integers: their sums are exact in any order, so dx must match
    # the reference bit for bit, overlap or not; a mis-routed or overwritten (= instead
    # of +=) gradient cannot hide in a tolerance.
    dout_int = (rng.permutation(dout.size).reshape(dout.shape) + 1).astype(dtype)
    with _guard(rec, case, dtype, "forward"):
        out, cache = _unpack_forward(fwd(x.copy(), *geometry), "forward")
    rec.compare(case, dtype, "forward out", out, ref_out.astype(dtype), "exact")
    with _guard(rec, case, dtype, "backward"):
        dx_int = _as_tuple(bwd(dout_int.copy(), cache), 1, "backward")[0]
    ref_dx_int = ref_bwd(dout_int.astype(np.float64), ref_cache)
    rec.compare(case, dtype, "backward dx (integer dout)", dx_int, ref_dx_int.astype(dtype),
                "exact")
    with _guard(rec, case, dtype, "backward"):
        _, cache = fwd(x.copy(), *geometry)
        dx = _as_tuple(bwd(dout.copy(), cache), 1, "backward")[0]
    ref_dx = ref_bwd(dout.astype(np.float64), ref_cache)
    rec.compare(case, dtype, "backward dx", dx, ref_dx.astype(dtype),
                "sum" if case.overlapping else "exact")
    if gradcheck and dtype == np.float64 and case.n > 0:
        xg = x.copy()   # distinct values 0.0625 apart: no step of 1e-6 changes a winner
        idx = _sample_indices(xg.shape, rng, gc_limit)
        numeric = numeric_gradient(lambda: fwd(xg, *geometry)[0], xg, dout,
                                   h=_STEP["linear"], indices=idx)
        rec.gradcheck(case, "gradcheck dx", dx, numeric, idx)


def _check_avgpool(rec, fwd, bwd, ref_fwd, ref_bwd, case, dtype, rng, gradcheck, gc_limit):
    """Average pooling, fixed or adaptive windows: ``forward(x, *case.args)``. Sums and
    divisions: compared with the "sum" tolerance; the backward is linear in ``dout``."""
    x = case.make_inputs(rng, dtype)["x"]
    ref_out, ref_cache = ref_fwd(x.astype(np.float64), *case.args)
    dout = rng.standard_normal(ref_out.shape).astype(dtype)
    with _guard(rec, case, dtype, "forward"):
        out, cache = _unpack_forward(fwd(x.copy(), *case.args), "forward")
    rec.compare(case, dtype, "forward out", out, ref_out.astype(dtype), "sum")
    with _guard(rec, case, dtype, "backward"):
        dx = _as_tuple(bwd(dout.copy(), cache), 1, "backward")[0]
    ref_dx = ref_bwd(dout.astype(np.float64), ref_cache)
    rec.compare(case, dtype, "backward dx", dx, ref_dx.astype(dtype), "sum")
    if gradcheck and dtype == np.float64 and case.n > 0:
        xg = x.copy()
        idx = _sample_indices(xg.shape, rng, gc_limit)
        numeric = numeric_gradient(lambda: fwd(xg, *case.args)[0], xg, dout,
                                   h=_STEP["linear"], indices=idx)
        rec.gradcheck(case, "gradcheck dx", dx, numeric, idx)


def _check_batchnorm(rec, fwd, bwd, ref_fwd, ref_bwd, case, dtype, rng, gradcheck,
                     gc_limit):
    for mode in case.modes:
        training = mode == "train"
        inputs = _cast(case.make_inputs(rng, np.float64), dtype)
        hyper = (training, case.momentum, case.eps)
        ref_in = _cast(inputs, np.float64)
        ref_out, ref_cache = ref_fwd(*ref_in.values(), *hyper)
        dout = rng.standard_normal(case.shape).astype(dtype)
        ref_grads = ref_bwd(dout.astype(np.float64), ref_cache)
        user = _copy(inputs)
        with _guard(rec, case, dtype, f"forward ({mode})"):
            out, cache = _unpack_forward(fwd(*user.values(), *hyper), "forward")
        rec.compare(case, dtype, f"forward out ({mode})", out, ref_out.astype(dtype), "sum")
        for name in ("running_mean", "running_var"):
            if training:
                rec.compare(case, dtype, f"{name} after forward (train)", user[name],
                            ref_in[name].astype(dtype), "sum")
            else:
                rec.compare(case, dtype, f"{name} unchanged (eval)", user[name],
                            inputs[name], "exact")
        with _guard(rec, case, dtype, f"backward ({mode})"):
            grads = _as_tuple(bwd(dout.copy(), cache), 3, "backward")
        for name, got, want in zip(("dx", "dgamma", "dbeta"), grads, ref_grads):
            rec.compare(case, dtype, f"backward {name} ({mode})", got, want.astype(dtype),
                        "sum")
        if gradcheck and dtype == np.float64 and case.shape[0] > 0:
            arrays = _copy(inputs)
            stats = {k: arrays.pop(k) for k in ("running_mean", "running_var")}

            def f():  # fresh running stats each call: training mode updates them
                return fwd(arrays["x"], arrays["gamma"], arrays["beta"],
                           stats["running_mean"].copy(), stats["running_var"].copy(),
                           *hyper)[0]

            _, cache = fwd(arrays["x"], arrays["gamma"], arrays["beta"],
                           stats["running_mean"].copy(), stats["running_var"].copy(), *hyper)
            analytic = bwd(dout, cache)
            for (name, arr), grad in zip(arrays.items(), analytic):
                idx = _sample_indices(arr.shape, rng, gc_limit)
                numeric = numeric_gradient(f, arr, dout, h=_STEP["smooth"], indices=idx)
                rec.gradcheck(case, f"gradcheck d{name} ({mode})", grad, numeric, idx)


@contextlib.contextmanager
def _guard(rec, case, dtype, quantity):
    """Turn an exception from the user's code into a failed check (that stops the
    case: later comparisons would have nothing to compare)."""
    try:
        yield
    except _StopCase:
        raise
    except AssertionError:
        raise
    except Exception as exc:  # noqa: BLE001 - reported, not swallowed
        rec.error(case, dtype, quantity, exc)
        raise _StopCase from exc


class _StopCase(Exception):
    pass


_CHECKERS = {"conv2d": _check_conv, "im2col": _check_im2col, "maxpool2d": _check_pool,
             "avgpool2d": _check_avgpool, "adaptive_avgpool2d": _check_avgpool,
             "batchnorm": _check_batchnorm}


def check_kernel(name: str, forward: Callable | None = None, backward: Callable | None = None,
                 dtypes: Sequence = ("float32", "float64"), cases: Iterable | None = None,
                 gradcheck: bool = True, *, seed: int = 0, raise_on_failure: bool = True,
                 gradcheck_max_elements: int = 48) -> KernelReport:
    """Check a user's kernel against the NumPy reference over the named shape grid.

    Parameters
    ----------
    name : {"conv2d", "maxpool2d", "batchnorm", "im2col"}
    forward, backward : callables with the signatures in this module's docstring.
        A missing one is taken from the NumPy reference, so a forward (or a
        backward) can be checked alone; the backward receives whatever cache the
        forward returned, so give both when your cache differs from ours.
    dtypes : dtypes to run, float32 and float64 by default. Each is compared with the
        reference computed in float64 from the same inputs and cast, using
        :data:`TOLERANCES`; the result must have the input's dtype.
    cases : case ids (e.g. ``["3x3-pad1", "stride2"]``) or case objects; default:
        the whole grid of ``name`` (:func:`cases_for`).
    gradcheck : also compare your backward with central differences of *your*
        forward, in float64 (on at most ``gradcheck_max_elements`` random elements
        of each input), relative error < :data:`GRADCHECK_MAX_REL_ERROR`.
    seed : inputs are drawn from ``np.random.default_rng(seed)``.
    raise_on_failure : raise ``AssertionError`` at the first mismatch (default);
        with False, run everything and return the report.

    Returns
    -------
    KernelReport : ``.ok``, ``.results`` (one :class:`CheckResult` per comparison:
    case, dtype, quantity, max abs/rel error) and ``.first_failure``.

    Raises
    ------
    AssertionError naming the kernel, quantity, case id, shapes, dtype and the
    worst element of the first mismatch.
    """
    _check_kernel_name(name)
    chosen = cases_for(name, cases)
    ref_fwd, ref_bwd = kernel_functions(name, "numpy")
    fwd = forward if forward is not None else ref_fwd
    bwd = backward if backward is not None else ref_bwd
    rec = _Recorder(name, stop=raise_on_failure)
    rng = np.random.default_rng(seed)
    for case in chosen:
        for dtype in dtypes:
            dtype = np.dtype(dtype)
            if dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
                raise ValueError(f"check_kernel: dtypes must be float32/float64; got {dtype}.")
            try:
                _CHECKERS[name](rec, fwd, bwd, ref_fwd, ref_bwd, case, dtype.type, rng,
                                gradcheck, gradcheck_max_elements)
            except _StopCase:
                if raise_on_failure:  # pragma: no cover - the recorder raised already
                    raise AssertionError(rec.report.first_failure.message) from None
    return rec.report


def _random_pool_case(kernel: str, cid: str, rng: np.random.Generator):
    """A random valid max- (with dilation, ceil mode) or average-pooling case: window,
    stride, padding <= half the window (PyTorch's rule), then an input the window fits.
    A dilated window whose first taps all fall in the padding is redrawn undilated."""
    kh, kw = (int(v) for v in rng.integers(1, 5, size=2))
    sh, sw = (int(v) for v in rng.integers(1, 4, size=2))
    ph, pw = int(rng.integers(0, kh // 2 + 1)), int(rng.integers(0, kw // 2 + 1))
    dh, dw = (int(v) for v in rng.integers(1, 3, size=2)) if kernel == "maxpool2d" else (1, 1)
    if (ph and dh > 1) or (pw and dw > 1):   # keep every window on an input pixel
        dh = dw = 1
    h = int(rng.integers(max(1, (kh - 1) * dh + 1 - 2 * ph), 10))
    w = int(rng.integers(max(1, (kw - 1) * dw + 1 - 2 * pw), 10))
    n, c, ceil_mode = int(rng.integers(1, 4)), int(rng.integers(1, 5)), bool(rng.random() < 0.5)
    if kernel == "maxpool2d":
        return PoolCase(cid, n, c, h, w, (kh, kw), (sh, sw), (ph, pw), (dh, dw), ceil_mode)
    return AvgPoolCase(cid, n, c, h, w, (kh, kw), (sh, sw), (ph, pw), ceil_mode,
                       bool(rng.random() < 0.5), None if rng.random() < 0.7 else 3)
