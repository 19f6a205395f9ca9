"""Output-size formulas and window geometry: the only place they live.

A sliding window (a convolution kernel or a pooling window) of size ``KH x KW``
moves over an input plane of size ``H x W`` with stride ``(SH, SW)``. The input
is conceptually padded with ``pad_top`` rows above, ``pad_bottom`` below,
``pad_left`` columns on the left and ``pad_right`` on the right. Then::

    OH = (H + pad_top + pad_bottom - KH) // SH + 1
    OW = (W + pad_left + pad_right - KW) // SW + 1

Output position ``(oh, ow)`` covers input rows ``oh*SH - pad_top ... + KH - 1``
and columns ``ow*SW - pad_left ... + KW - 1`` (floor mode: a window that would
run past the padded input is dropped, as in PyTorch and Keras "valid").

Symmetric padding (the kernel API's ``padding=p`` or ``(ph, pw)``) is the case
``pad_top == pad_bottom`` and ``pad_left == pad_right``. Keras' ``"same"`` with
stride > 1 may need one more row/column at the bottom/right; the geometry keeps
all four sides so that case needs no copy of the input.

Kernels only ever read ``pad_top``/``pad_left`` (to map an output position to
its input window) and ``OH``/``OW`` (how many windows there are): the bottom and
right padding only decide ``OH``/``OW``, here, once.

Two of PyTorch's options widen this. *Dilation* (convolution and pooling) ``(DH, DW)`` spreads the window's
taps: tap ``i`` reads row ``oh*SH - pad_top + i*DH``, so the window spans
``DH*(KH - 1) + 1`` rows (its *extent*). *Ceil mode* rounds the window count up
instead of down, so a last, partial window covers the remainder of the input, with
PyTorch's rule that it must start inside the input or the top/left padding (a window
starting in the bottom padding would hold padding only, and is dropped)::

    OH = ceil((H + pad_top + pad_bottom - extent) / SH) + 1,
    minus 1 if (OH - 1) * SH >= H + pad_top
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property, lru_cache

import numpy as np

from fastcnn.common.validation import MAX_WINDOW_INT, _is_int, to_pair

__all__ = ["WindowGeometry", "window_geometry", "PoolWindows", "ConvCase", "output_size",
           "same_padding",
           "parse_padding", "avgpool_windows", "adaptive_windows",
           "is_pointwise", "is_depthwise", "is_pool2x2"]


def output_size(size: int, kernel: int, stride: int, pad_before: int, pad_after: int,
                dilation: int = 1, ceil_mode: bool = False) -> int:
    """Number of window positions along one axis: ``(size + pads - extent) // stride + 1``
    with ``extent = dilation * (kernel - 1) + 1``; in ceil mode the division rounds up,
    but the last window must start before ``size + pad_before`` (see the module doc)."""
    span = size + pad_before + pad_after - (dilation * (kernel - 1) + 1)
    if not ceil_mode:
        return span // stride + 1
    count = -(-span // stride) + 1
    if (count - 1) * stride >= size + pad_before:
        count -= 1
    return count


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """Keras/TensorFlow ``"same"`` padding along one axis, as ``(before, after)``.

    The output has ``ceil(size / stride)`` positions; the total padding needed is
    ``max((out - 1) * stride + kernel - size, 0)``, split with the extra pixel (if
    the total is odd) at the end (bottom/right), as TensorFlow does.
    """
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def parse_padding(where: str, padding) -> tuple[int, int, int, int]:
    """``p``, ``(ph, pw)`` or ``((top, bottom), (left, right))`` -> (top, bottom, left, right)."""
    if type(padding) is int and 0 <= padding <= MAX_WINDOW_INT:
        return padding, padding, padding, padding        # the common case, at once
    if (type(padding) is tuple and len(padding) == 2 and type(padding[0]) is tuple
            and type(padding[1]) is tuple and len(padding[0]) == 2 and len(padding[1]) == 2):
        flat = padding[0] + padding[1]                    # Keras' "same", as layers pass it
        if all(type(v) is int and 0 <= v <= MAX_WINDOW_INT for v in flat):
            return flat
    if (isinstance(padding, (tuple, list)) and len(padding) == 2
            and all(isinstance(p, (tuple, list)) for p in padding)):
        flat = [v for p in padding for v in p]
        if len(flat) != 4 or not all(_is_int(v) and 0 <= v <= MAX_WINDOW_INT for v in flat):
            raise ValueError(
                f"{where}: padding must be an int, an (h, w) pair or ((top, bottom), "
                f"(left, right)) of non-negative ints up to 2**31 - 1; got {padding!r}."
            )
        return tuple(int(v) for v in flat)
    ph, pw = to_pair(where, "padding", padding, minimum=0)
    return ph, ph, pw, pw


@dataclass(frozen=True)
class WindowGeometry:
    """Everything a kernel needs to know about a sliding-window op on (N, C, H, W).

    Attributes
    ----------
    n, c, h, w : int
        Input batch size, channels, height, width.
    kh, kw : int
        Window (kernel) height and width.
    sh, sw : int
        Strides.
    pad_top, pad_bottom, pad_left, pad_right : int
        Zero padding (convolution) or -inf padding (max pooling) per side.
    dh, dw : int
        Dilation: tap ``i`` of the window is ``i * dh`` rows below its top (1 = dense).
    ceil_mode : bool
        Count the output positions rounding up (pooling; see :func:`output_size`).
    oh, ow : int
        Output height and width (computed once, here).
    """

    n: int
    c: int
    h: int
    w: int
    kh: int
    kw: int
    sh: int
    sw: int
    pad_top: int
    pad_bottom: int
    pad_left: int
    pad_right: int
    dh: int = 1
    dw: int = 1
    ceil_mode: bool = False

    # cached_property: computed on first use and kept (the kernels read them many times
    # per call); it writes the instance __dict__ directly, which a frozen dataclass allows
    @cached_property
    def oh(self) -> int:
        return output_size(self.h, self.kh, self.sh, self.pad_top, self.pad_bottom,
                           self.dh, self.ceil_mode)

    @cached_property
    def ow(self) -> int:
        return output_size(self.w, self.kw, self.sw, self.pad_left, self.pad_right,
                           self.dw, self.ceil_mode)

    @property
    def extent_h(self) -> int:
        """Rows one window spans, taps and the gaps between them: ``DH*(KH - 1) + 1``."""
        return self.dh * (self.kh - 1) + 1

    @property
    def extent_w(self) -> int:
        return self.dw * (self.kw - 1) + 1

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        return (self.n, self.c, self.h, self.w)

    @property
    def cols_shape(self) -> tuple[int, int]:
        """Shape of the im2col matrix: ``(C*KH*KW, N*OH*OW)``."""
        return (self.c * self.kh * self.kw, self.n * self.oh * self.ow)

    @property
    def is_symmetric(self) -> bool:
        return self.pad_top == self.pad_bottom and self.pad_left == self.pad_right


@lru_cache(maxsize=1024)
def window_geometry(n: int, c: int, h: int, w: int, kh: int, kw: int, sh: int, sw: int,
                    pad_top: int, pad_bottom: int, pad_left: int, pad_right: int,
                    dh: int = 1, dw: int = 1, ceil_mode: bool = False) -> WindowGeometry:
    """``WindowGeometry(n, c, ..., ceil_mode)`` with ``oh``/``ow`` already computed, made
    once per distinct geometry and shared afterwards (memoized on these plain ints).

    A training step asks for the same few geometries on every batch; the kernel API
    calls this after validating its arguments, so only valid geometries are kept.
    Sharing one instance is safe: the dataclass is frozen (``oh``/``ow`` are computed
    here, before anyone else sees it). Equal to building ``WindowGeometry(...)`` afresh.
    """
    g = WindowGeometry(n, c, h, w, kh, kw, sh, sw, pad_top, pad_bottom, pad_left, pad_right,
                       dh, dw, ceil_mode)
    g.oh, g.ow                       # noqa: B018 - fill the cached properties now
    return g


def is_pointwise(g: WindowGeometry) -> bool:
    """A 1x1 window, stride 1, no padding: every output pixel sees exactly its own input
    pixel, so a convolution is ``w2 @ x[n]`` per image with ``x[n]`` seen as (C, H*W) (its
    own im2col matrix; dilation is irrelevant for a single tap)."""
    return (g.kh, g.kw, g.sh, g.sw, g.pad_top, g.pad_bottom, g.pad_left, g.pad_right) == (
        1, 1, 1, 1, 0, 0, 0, 0)


def is_depthwise(g: WindowGeometry, groups: int) -> bool:
    """One group per input channel (``groups == C > 1``): every output channel reads a
    single input channel, a few multiply-adds per pixel, so the fast backends run a direct
    kernel instead of C tiny GEMMs."""
    return groups == g.c and groups > 1


def is_pool2x2(g: WindowGeometry) -> bool:
    """2x2 dense windows, stride 2, no padding on top/left, and no window touching the
    bottom/right padding (``2*OH <= H``, ``2*OW <= W``): the windows tile the input without
    overlapping (floor mode drops an odd last row/column), the case of the fast 2x2 pools."""
    window = (g.kh, g.kw, g.sh, g.sw, g.pad_top, g.pad_left, g.dh, g.dw)
    return window == (2, 2, 2, 2, 0, 0, 1, 1) and 2 * g.oh <= g.h and 2 * g.ow <= g.w


@dataclass(frozen=True)
class ConvCase:
    """One named convolution problem: ``x (n, c, h, w)``, ``w (f, c/groups, kh, kw)``, a
    bias, and the stride, padding and dilation as the kernel API takes them (an int or an
    ``(h, w)`` pair; padding also ``((top, bottom), (left, right))``).

    The one description shared by the test grid (:mod:`fastcnn.testing`, which checks
    kernels case by case) and the benchmarks (``fastcnn/tools/bench``, which time them).
    """

    name: str
    n: int
    c: int
    h: int
    w: int
    f: int
    kh: int
    kw: int
    stride: int | tuple = 1
    padding: int | tuple = 0
    dilation: int | tuple = 1
    groups: int = 1
    note: str = ""
    kernel: str = field(default="conv2d", init=False)

    @property
    def x_shape(self) -> tuple[int, int, int, int]:
        return (self.n, self.c, self.h, self.w)

    @property
    def w_shape(self) -> tuple[int, int, int, int]:
        return (self.f, self.c // self.groups, self.kh, self.kw)

    @property
    def geometry(self) -> WindowGeometry:
        sh, sw = to_pair(self.name, "stride", self.stride)
        dh, dw = to_pair(self.name, "dilation", self.dilation)
        top, bottom, left, right = parse_padding(self.name, self.padding)
        return WindowGeometry(self.n, self.c, self.h, self.w, self.kh, self.kw, sh, sw,
                              top, bottom, left, right, dh, dw)

    def describe(self) -> str:
        """The arguments, as a failing check reports them."""
        extra = (f" dilation={self.dilation}" if self.dilation != 1 else "") + (
            f" groups={self.groups}" if self.groups != 1 else "")
        return (f"x.shape={self.x_shape} w.shape={self.w_shape} stride={self.stride} "
                f"padding={self.padding}{extra}")

    @property
    def shape_text(self) -> str:
        """A one-line summary for benchmark tables."""
        g = self.geometry
        pad = (f"pad {g.pad_top}" if g.is_symmetric and g.pad_top == g.pad_left
               else f"pad {g.pad_top},{g.pad_bottom},{g.pad_left},{g.pad_right}")
        extra = (f" d{self.dilation}" if self.dilation != 1 else "") + (
            f" g{self.groups}" if self.groups != 1 else "")
        return (f"N={self.n} {self.c}->{self.f} {self.h}x{self.w} {self.kh}x{self.kw}"
                f" s{self.stride} {pad}{extra}")

    @property
    def size(self) -> int:
        """Elements in x, w and b: decides whether a gradient check is cheap."""
        return int(np.prod(self.x_shape) + np.prod(self.w_shape) + self.f)

    @property
    def forward_flops(self) -> int:
        """``2 * N*F*(C/groups)*KH*KW*OH*OW``: one multiply and one add per term."""
        g = self.geometry
        return 2 * g.n * self.f * (g.c // self.groups) * g.kh * g.kw * g.oh * g.ow

    def make_inputs(self, rng: np.random.Generator, dtype) -> dict:
        """x ~ N(0, 1), w ~ N(0, 1/fan_in) so outputs are O(1) (float32 error stays
        relative), b ~ N(0, 1)."""
        fan_in = self.c // self.groups * self.kh * self.kw
        return {
            "x": rng.standard_normal(self.x_shape).astype(dtype),
            "w": (rng.standard_normal(self.w_shape) / np.sqrt(fan_in)).astype(dtype),
            "b": rng.standard_normal(self.f).astype(dtype),
        }


@dataclass(frozen=True, eq=False)
class PoolWindows:
    """The rectangles an average pooling sums, and what each sum is divided by.

    Output ``(oh, ow)`` of every ``(n, c)`` plane is::

        out[n, c, oh, ow] = sum(x[n, c, row_start[oh]:row_stop[oh],
                                    col_start[ow]:col_stop[ow]]) / divisor[oh, ow]

    The rectangles are already clipped to the input (padding adds zeros, nothing to
    the sum), so a kernel only reads real pixels. Average pooling with a fixed window
    (:func:`avgpool_windows`) and adaptive average pooling (:func:`adaptive_windows`)
    differ only in these tables, so one kernel per backend serves both.

    ``row_start``/``row_stop`` are int64 ``(OH,)``, ``col_start``/``col_stop`` int64
    ``(OW,)``, ``divisor`` float64 ``(OH, OW)`` (whole numbers, exact in float32 too).
    """

    n: int
    c: int
    h: int
    w: int
    row_start: np.ndarray
    row_stop: np.ndarray
    col_start: np.ndarray
    col_stop: np.ndarray
    divisor: np.ndarray

    @property
    def oh(self) -> int:
        return len(self.row_start)

    @property
    def ow(self) -> int:
        return len(self.col_start)

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        return (self.n, self.c, self.h, self.w)

    @property
    def output_shape(self) -> tuple[int, int, int, int]:
        return (self.n, self.c, self.oh, self.ow)


def _window_axis(size, kernel, stride, pad_before, pad_after, count):
    """One axis of a fixed-size window: the clipped ``[start, stop)`` of each of the
    ``count`` windows, and how many positions PyTorch's ``count_include_pad`` counts
    (the window clipped to the padded input ``[-pad_before, size + pad_after)`` only:
    the extra room of ceil mode never counts)."""
    start = np.arange(count, dtype=np.int64) * stride - pad_before
    stop = start + kernel
    counted = np.minimum(stop, size + pad_after) - start
    return np.maximum(start, 0), np.minimum(stop, size), counted


def avgpool_windows(g: WindowGeometry, count_include_pad: bool,
                    divisor_override) -> PoolWindows:
    """Windows of ``avg_pool2d``: each window's rectangle of real pixels, divided by
    ``divisor_override`` if given, else by the window's size within the padded input
    (``count_include_pad=True``, PyTorch's default) or by its number of real pixels
    (``count_include_pad=False``, Keras' ``"same"``)."""
    rs, re, rows = _window_axis(g.h, g.kh, g.sh, g.pad_top, g.pad_bottom, g.oh)
    cs, ce, cols = _window_axis(g.w, g.kw, g.sw, g.pad_left, g.pad_right, g.ow)
    if divisor_override is not None:
        divisor = np.full((g.oh, g.ow), float(divisor_override))
    elif count_include_pad:
        divisor = np.outer(rows, cols).astype(np.float64)
    else:
        divisor = np.outer(re - rs, ce - cs).astype(np.float64)
    return PoolWindows(g.n, g.c, g.h, g.w, rs, re, cs, ce, divisor)


def adaptive_windows(n: int, c: int, h: int, w: int, oh: int, ow: int) -> PoolWindows:
    """Windows of ``adaptive_avg_pool2d`` (PyTorch's rule): output row ``i`` of ``OH``
    averages input rows ``floor(i*H/OH) <= h < ceil((i+1)*H/OH)``, so the windows cover
    the input exactly and neighbours overlap by at most one row when ``H % OH != 0``.
    ``OH = OW = 1`` is global average pooling."""
    def axis(size, count):
        i = np.arange(count, dtype=np.int64)
        return (i * size) // count, -((-(i + 1) * size) // count)
    rs, re = axis(h, oh)
    cs, ce = axis(w, ow)
    divisor = np.outer(re - rs, ce - cs).astype(np.float64)
    return PoolWindows(n, c, h, w, rs, re, cs, ce, divisor)
