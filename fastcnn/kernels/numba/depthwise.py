"""Numba kernels of the depthwise convolution (``groups == C``) of
:mod:`fastcnn.kernels.numba.backend`: direct loops, no im2col, no GEMM.

Output channel ``f`` reads only input channel ``c = f // M`` (``M = F / C`` filters per
channel, Keras' ``depth_multiplier``)::

    out[n, f, oh, ow] = b[f] + sum_{i, j} w[f, 0, i, j]
                                   * x_pad[n, c, oh*SH + i*DH, ow*SW + j*DW]

As ``C`` tiny GEMMs ``(M, KH*KW) @ (KH*KW, OH*OW)`` this would spend its time in call
overhead and im2col copies for a few multiply-adds per pixel. For a fixed output row and
tap ``(i, j)`` the output columns whose input is real (not padding) form one range
``[lo, hi)`` (``valid_range`` of :mod:`fastcnn.kernels.numba.conv`), so the inner loops
have no bounds test.

Threading: the forward runs one ``prange`` iteration per (image, filter) plane; the
backward one per filter for ``dw`` (all images in order, in float64) and one per
(image, channel) plane for ``dx``. Each output element is computed by one iteration in a
fixed order, so results do not depend on the number of threads.
"""

from __future__ import annotations

from numba import njit, prange

from fastcnn.kernels.numba.conv import valid_range

_JIT = dict(cache=True, nogil=True)


@njit(parallel=True, **_JIT)
def forward_kernel(x, w, b, out, kh, kw, sh, sw, pt, pl, oh, ow, dh, dw):
    """``out`` (N, F, OH, OW) <- the depthwise convolution of ``x`` with ``w`` (F, 1, KH, KW)."""
    N, C, H, W = x.shape
    F = w.shape[0]
    M = F // C
    for t in prange(N * F):
        n = t // F
        f = t - n * F
        plane = x[n, f // M]
        o = out[n, f]
        for r in range(oh):
            orow = o[r]
            orow[:] = b[f]
            for i in range(kh):
                h = r * sh - pt + i * dh
                if h < 0 or h >= H:
                    continue                            # a padding row adds zeros
                src = plane[h]
                for j in range(kw):
                    wij = w[f, 0, i, j]
                    lo, hi = valid_range(j * dw - pl, sw, W, ow)
                    off = j * dw - pl
                    for q in range(lo, hi):
                        orow[q] += wij * src[q * sw + off]


@njit(parallel=True, **_JIT)
def _dw_kernel(dout, x, dw_out, kh, kw, sh, sw, pt, pl, oh, ow, dh, dw):
    """``dw_out[f, 0, i, j] = sum_{n, oh, ow} dout[n, f, oh, ow] * x_pad[n, f // M, ...]``
    in float64 (``dw_out`` is float64), one filter per iteration, images in order."""
    N, C, H, W = x.shape
    F = dout.shape[1]
    M = F // C
    for f in prange(F):
        c = f // M
        for i in range(kh):
            for j in range(kw):
                lo, hi = valid_range(j * dw - pl, sw, W, ow)
                off = j * dw - pl
                acc = 0.0
                for n in range(N):
                    for r in range(oh):
                        h = r * sh - pt + i * dh
                        if h < 0 or h >= H:
                            continue
                        src = x[n, c, h]
                        drow = dout[n, f, r]
                        for q in range(lo, hi):
                            acc += drow[q] * src[q * sw + off]
                dw_out[f, 0, i, j] = acc


@njit(parallel=True, **_JIT)
def _dx_kernel(dout, w, dx, kh, kw, sh, sw, pt, pl, oh, ow, dh, dw):
    """``dx[n, c]`` = the adjoint of the forward: every filter of channel c sends
    ``w[f, 0, i, j] * dout[n, f]`` back to the pixels tap (i, j) read."""
    N, C, H, W = dx.shape
    F = dout.shape[1]
    M = F // C
    for t in prange(N * C):
        n = t // C
        c = t - n * C
        plane = dx[n, c]
        plane[:, :] = 0
        for m in range(M):
            f = c * M + m
            for r in range(oh):
                drow = dout[n, f, r]
                for i in range(kh):
                    h = r * sh - pt + i * dh
                    if h < 0 or h >= H:
                        continue                        # a padding row: dropped
                    dst = plane[h]
                    for j in range(kw):
                        wij = w[f, 0, i, j]
                        lo, hi = valid_range(j * dw - pl, sw, W, ow)
                        off = j * dw - pl
                        for q in range(lo, hi):
                            dst[q * sw + off] += wij * drow[q]


def backward_kernel(dout, x, w, dx, dw_out, need_dx, kh, kw, sh, sw, pt, pl, oh, ow, dh, dw):
    """``dw_out`` (float64, shape of w) and, when ``need_dx``, ``dx`` (the input's shape)."""
    _dw_kernel(dout, x, dw_out, kh, kw, sh, sw, pt, pl, oh, ow, dh, dw)
    if need_dx:
        _dx_kernel(dout, w, dx, kh, kw, sh, sw, pt, pl, oh, ow, dh, dw)
