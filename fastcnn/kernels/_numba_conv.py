"""Numba kernels behind the convolution of :mod:`fastcnn.kernels.numba_backend`.

Only data movement and small reductions live here; the big products are BLAS GEMMs
called by the backend module. Every kernel writes into caller-allocated arrays and
puts ``prange`` on its outermost independent loop, so no two iterations ever write
the same element and every sum is done in a fixed order: results do not depend on
the number of threads.

One im2col/col2im pair serves two column layouts through two strides::

    cols.flat[row * row_stride + m * img_stride + oh * OW + ow]
    row = (c*KH + i)*KW + j,  m = image index within the chunk

- the public layout ``(C*KH*KW, N*OH*OW)``: ``row_stride = N*OH*OW``, ``img_stride = OH*OW``;
- the conv layout ``(nb, C*KH*KW, OH*OW)`` (one column block per image, so one stacked
  GEMM writes straight into ``out[n0:n0+nb]`` as ``(nb, F, OH*OW)``):
  ``row_stride = OH*OW``, ``img_stride = C*KH*KW*OH*OW``.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

_JIT = dict(cache=True, nogil=True)


@njit(**_JIT)
def _valid_range(offset, stride, size, count):
    """Output positions q in [0, count) whose input index q*stride + offset lies in
    [0, size): returns (lo, hi), a possibly empty range (lo == hi)."""
    lo = 0
    if offset < 0:
        lo = (-offset + stride - 1) // stride          # ceil(-offset / stride)
    hi = (size - offset + stride - 1) // stride        # first q with index >= size
    hi = min(max(hi, lo), count)
    return min(lo, count), hi


@njit(parallel=True, **_JIT)
def im2col_kernel(x, cols, n0, nb, kh, kw, sh, sw, pt, pl, oh, ow, row_stride, img_stride):
    """``cols`` (flat) <- windows of images ``x[n0:n0+nb]`` (zero where a window
    covers padding), in the layout given by ``row_stride``/``img_stride``."""
    C, H, W = x.shape[1], x.shape[2], x.shape[3]
    for t in prange(nb * C):                            # one (image, channel) plane each
        m = t // C
        c = t - m * C
        for i in range(kh):
            for j in range(kw):
                base = ((c * kh + i) * kw + j) * row_stride + m * img_stride
                # Columns ow in [lo, hi) read a real pixel; the rest read padding.
                lo, hi = _valid_range(j - pl, sw, W, ow)
                for r in range(oh):
                    h = r * sh - pt + i
                    dst = base + r * ow
                    if h < 0 or h >= H:
                        for q in range(ow):
                            cols[dst + q] = 0
                        continue
                    src = x[n0 + m, c, h]
                    for q in range(lo):
                        cols[dst + q] = 0
                    for q in range(lo, hi):
                        cols[dst + q] = src[q * sw - pl + j]
                    for q in range(hi, ow):
                        cols[dst + q] = 0


@njit(parallel=True, **_JIT)
def col2im_kernel(cols, dx, n0, nb, kh, kw, sh, sw, pt, pl, oh, ow, row_stride, img_stride):
    """``dx[n0:n0+nb] = col2im(cols)``: zero each plane, then add every column entry
    back to the pixel it was read from. Each pixel receives its contributions in
    row-major (i, j) order, as in the reference, so the sums match it exactly."""
    C, H, W = dx.shape[1], dx.shape[2], dx.shape[3]
    for t in prange(nb * C):                            # each plane is written by one thread
        m = t // C
        c = t - m * C
        plane = dx[n0 + m, c]
        plane[:, :] = 0
        for i in range(kh):
            for j in range(kw):
                base = ((c * kh + i) * kw + j) * row_stride + m * img_stride
                lo, hi = _valid_range(j - pl, sw, W, ow)
                for r in range(oh):
                    h = r * sh - pt + i
                    if h < 0 or h >= H:
                        continue
                    dst = plane[h]
                    src = base + r * ow
                    for q in range(lo, hi):
                        dst[q * sw - pl + j] += cols[src + q]


@njit(parallel=True, **_JIT)
def add_bias_kernel(out3, b, n0, nb):
    """``out3[n0:n0+nb] += b[None, :, None]`` for ``out3`` shaped (N, F, OH*OW)."""
    F, P = out3.shape[1], out3.shape[2]
    for t in prange(nb * F):
        m = t // F
        f = t - m * F
        row = out3[n0 + m, f]
        bf = b[f]
        for p in range(P):
            row[p] += bf


@njit(parallel=True, **_JIT)
def channel_sum_kernel(d3, out):
    """``out[f] = d3[:, f, :].sum()`` for ``d3`` shaped (N, F, P), accumulated in float64
    with four fixed interleaved partial sums (a fixed order: the same for any thread
    count; four chains instead of one let the CPU overlap the additions)."""
    N, F, P = d3.shape
    for f in prange(F):
        s0 = 0.0
        s1 = 0.0
        s2 = 0.0
        s3 = 0.0
        for n in range(N):
            row = d3[n, f]
            p = 0
            while p + 4 <= P:
                s0 += row[p]
                s1 += row[p + 1]
                s2 += row[p + 2]
                s3 += row[p + 3]
                p += 4
            while p < P:
                s0 += row[p]
                p += 1
        out[f] = (s0 + s1) + (s2 + s3)


@njit(parallel=True, **_JIT)
def accumulate_kernel(acc, parts):
    """``acc += parts.sum(axis=0)`` summing the stack in index order; ``acc`` is float64
    (F, K), ``parts`` (m, F, K) holds one partial product per image."""
    F, K = acc.shape
    for f in prange(F):
        dst = acc[f]
        for m in range(parts.shape[0]):
            src = parts[m, f]
            for k in range(K):
                dst[k] += src[k]
