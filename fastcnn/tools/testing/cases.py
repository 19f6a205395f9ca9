"""The named shape grid of :mod:`fastcnn.testing`: one list of cases per kernel, each
case naming the corner of the geometry it exercises and making its own inputs, plus
random valid cases for property-style runs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fastcnn.kernels.geometry import ConvCase

__all__ = ["KERNELS", "ConvCase", "PoolCase", "AvgPoolCase", "AdaptivePoolCase",
           "BatchNormCase", "CONV_CASES", "IM2COL_CASES", "POOL_CASES", "AVGPOOL_CASES",
           "ADAPTIVE_CASES", "BATCHNORM_CASES", "cases_for", "check_kernel_name", "random_cases",
           "distinct_values"]

#: The kernels :func:`fastcnn.testing.check_kernel` knows.
KERNELS = ("conv2d", "maxpool2d", "avgpool2d", "adaptive_avgpool2d", "batchnorm", "im2col")



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
class PoolCase:
    """One max-pooling geometry: ``x (n, c, h, w)`` and a ``size`` window."""

    name: str
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

    name: str
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

    name: str
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

    name: str
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
    # dilation (taps DH, DW apart), groups (independent channel groups), depthwise
    ConvCase("dilated2", 2, 3, 9, 9, 4, 3, 3, 1, 2, dilation=2),
    ConvCase("dilated-hw-pairs", 2, 2, 9, 11, 3, 3, 2, (2, 1), (1, 2), dilation=(2, 3)),
    ConvCase("dilated-span-equals-input", 1, 2, 5, 5, 2, 3, 3, dilation=2),
    ConvCase("groups2", 2, 4, 6, 6, 6, 3, 3, 1, 1, groups=2),
    ConvCase("groups3-1x1", 2, 6, 5, 5, 9, 1, 1, groups=3),
    ConvCase("groups2-dilated-stride2", 2, 4, 9, 8, 4, 3, 3, 2, 2, dilation=2, groups=2),
    ConvCase("depthwise", 2, 4, 7, 7, 4, 3, 3, 1, 1, groups=4),
    ConvCase("depthwise-multiplier2", 2, 3, 6, 6, 6, 3, 3, 1, 1, groups=3),
    ConvCase("depthwise-stride2-asym-pad", 2, 5, 8, 7, 5, 3, 3, 2, ((0, 1), (1, 0)), groups=5),
    ConvCase("depthwise-dilated", 2, 3, 9, 9, 3, 3, 3, 1, 2, dilation=2, groups=3),
    ConvCase("depthwise-5x5-stride3", 2, 4, 11, 10, 8, 5, 5, (3, 2), 2, groups=4),
    ConvCase("depthwise-N0", 0, 4, 5, 5, 4, 3, 3, 1, 1, groups=4),
]

#: im2col/col2im run over the convolution geometries.
IM2COL_CASES: list[ConvCase] = [case for case in CONV_CASES if case.groups == 1]

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
    check_kernel_name(kernel)
    grid = _GRIDS[kernel]
    if cases is None:
        return list(grid)
    by_id = {case.name: case for case in grid}
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


def check_kernel_name(kernel):
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {list(KERNELS)}; got {kernel!r}.")


def _random_conv_case(name: str, rng: np.random.Generator) -> ConvCase:
    """A valid random convolution: window, stride, dilation and padding first, then an
    input at least as large as the dilated window needs; groups divide C and F (a
    quarter of the cases are depthwise, groups == C)."""
    kh, kw = (int(v) for v in rng.integers(1, 5, size=2))
    sh, sw = (int(v) for v in rng.integers(1, 4, size=2))
    dh, dw = (int(v) for v in rng.integers(1, 4, size=2)) if rng.random() < 0.4 else (1, 1)
    if rng.random() < 0.25:   # asymmetric padding, as Keras "same" with stride > 1
        pt, pb, pl, pr = (int(rng.integers(0, kk)) for kk in (kh, kh, kw, kw))
        padding = ((pt, pb), (pl, pr))
    else:
        pt = pb = int(rng.integers(0, kh))
        pl = pr = int(rng.integers(0, kw))
        padding = (pt, pl)
    h = int(rng.integers(max(1, (kh - 1) * dh + 1 - pt - pb), 12))
    w = int(rng.integers(max(1, (kw - 1) * dw + 1 - pl - pr), 12))
    groups = int(rng.integers(1, 4))
    c = groups * int(rng.integers(1, 3))
    f = groups * int(rng.integers(1, 3))
    if rng.random() < 0.25:   # depthwise, possibly with a multiplier
        c = groups
    return ConvCase(name, int(rng.integers(1, 4)), c, h, w, f, kh, kw, (sh, sw), padding,
                    (dh, dw), groups)


def random_cases(kernel: str, rng: np.random.Generator, count: int) -> list:
    """``count`` random valid cases for ``kernel``, ids ``"random-0"``, ...

    The geometry is *constructed* valid, never filtered: draw the window, stride,
    dilation and padding first, then an input at least as large as the window needs.
    Sizes stay small (<= 11 per spatial dim) so a whole run is quick.
    """
    check_kernel_name(kernel)
    out = []
    for k in range(count):
        cid = f"random-{k}"
        if kernel in ("conv2d", "im2col"):
            out.append(_random_conv_case(cid, rng))
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
