"""The named shape grid of :mod:`fastcnn.testing`: one list of cases per kernel, each
case naming the corner of the geometry it exercises and making its own inputs, plus
random valid cases for property-style runs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fastcnn.kernels.geometry import ConvCase

__all__ = ["KERNELS", "ConvCase", "PoolCase", "BatchNormCase", "CONV_CASES", "IM2COL_CASES",
           "POOL_CASES", "BATCHNORM_CASES", "cases_for", "check_kernel_name", "random_cases",
           "distinct_values"]

#: The kernels :func:`fastcnn.testing.check_kernel` knows.
KERNELS = ("conv2d", "maxpool2d", "batchnorm", "im2col")



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

    @property
    def x_shape(self):
        return (self.n, self.c, self.h, self.w)

    def describe(self) -> str:
        return (f"x.shape={self.x_shape} size={self.size} stride={self.stride} "
                f"padding={self.padding}")

    @property
    def overlapping(self) -> bool:
        """True when some input element lies in two windows (stride < size)."""
        kh, kw = _pair(self.size)
        sh, sw = _pair(self.stride)
        return sh < kh or sw < kw

    def make_inputs(self, rng: np.random.Generator, dtype) -> dict:
        """Distinct values (no ties, see :func:`distinct_values`)."""
        return {"x": distinct_values(self.x_shape, rng, dtype)}


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
        elif kernel == "maxpool2d":
            kh, kw = (int(v) for v in rng.integers(1, 5, size=2))
            sh, sw = (int(v) for v in rng.integers(1, 4, size=2))
            ph, pw = int(rng.integers(0, kh)), int(rng.integers(0, kw))
            ph, pw = min(ph, kh // 2), min(pw, kw // 2)
            h = int(rng.integers(max(1, kh - 2 * ph), 10))
            w = int(rng.integers(max(1, kw - 2 * pw), 10))
            out.append(PoolCase(cid, int(rng.integers(1, 4)), int(rng.integers(1, 5)), h, w,
                                (kh, kw), (sh, sw), (ph, pw)))
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
