"""Numba kernels behind the convolution of :mod:`fastcnn.kernels.numba_backend`.

Each kernel writes into caller-allocated arrays and puts ``prange`` on its outermost
independent loop (images, or (image, channel) planes), so no two iterations write the
same element and every sum is taken in a fixed order: results do not depend on the
number of threads.

The convolution runs one block of images per thread: unfold the block into this
thread's column buffer ``(C*KH*KW, nb*OH*OW)``, then one GEMM (``np.dot``, i.e. BLAS)
with the weights, with the bias added (forward) or col2im (backward) while the data is
still in cache. Small feature maps group ``nb > 1`` consecutive images per block (see
``_common.conv_chunk_images``) so that a GEMM has enough columns to outweigh the BLAS
call; large ones run one image per thread (``nb == 1``, the per-image kernels, which
can also unfold a band of output rows at a time). The column memory is one block per
thread, whatever the batch size.

Column index, for window offset ``(i, j)`` of channel ``c`` and output ``(r, q)``::

    cols[base + (i*KW + j)*row_stride + r*OW + q],   base = c*KH*KW*row_stride + ...

``row_stride = OH*OW`` for one image's columns and ``N*OH*OW`` for the public
``im2col`` layout ``(C*KH*KW, N*OH*OW)`` (where ``base`` also adds ``n*OH*OW``).
"""

from __future__ import annotations

import numpy as np
from numba import get_thread_id, njit, prange

_JIT = dict(cache=True, nogil=True)


@njit(**_JIT)
def valid_range(offset, stride, size, count):
    """Output positions q in [0, count) whose input index q*stride + offset lies in
    [0, size): returns (lo, hi), a possibly empty range (lo == hi)."""
    lo = 0
    if offset < 0:
        lo = (-offset + stride - 1) // stride          # ceil(-offset / stride)
    hi = (size - offset + stride - 1) // stride        # first q with index >= size
    hi = min(max(hi, lo), count)
    return min(lo, count), hi


@njit(**_JIT)
def _im2col_plane(plane, cols, base, row_stride, r0, r1, kh, kw, sh, sw, pt, pl, ow,
                  dh, dw):
    """Unfold output rows ``r0 <= r < r1`` of one (H, W) input plane: for every window
    tap (i, j), ``cols[base + (i*kw + j)*row_stride + (r - r0)*ow + q] =
    plane_pad[r*sh + i*dh, q*sw + j*dw]`` (zero where the window covers padding)."""
    H, W = plane.shape
    for i in range(kh):
        for j in range(kw):
            row = base + (i * kw + j) * row_stride
            # Columns q in [lo, hi) read a real pixel; the rest read padding.
            lo, hi = valid_range(j * dw - pl, sw, W, ow)
            for r in range(r0, r1):
                h = r * sh - pt + i * dh
                dst = row + (r - r0) * ow
                if h < 0 or h >= H:
                    for q in range(ow):
                        cols[dst + q] = 0
                    continue
                src = plane[h]
                for q in range(lo):
                    cols[dst + q] = 0
                if sw == 1:                             # unit stride: a vectorisable copy
                    off = j * dw - pl
                    for q in range(lo, hi):
                        cols[dst + q] = src[q + off]
                else:
                    for q in range(lo, hi):
                        cols[dst + q] = src[q * sw - pl + j * dw]
                for q in range(hi, ow):
                    cols[dst + q] = 0


@njit(**_JIT)
def _col2im_plane(cols, base, row_stride, r0, r1, plane, kh, kw, sh, sw, pt, pl, ow,
                  dh, dw):
    """Adjoint of :func:`_im2col_plane`: add every column entry of output rows
    ``[r0, r1)`` back to the pixel it was read from (``plane +=``). Each pixel receives
    its contributions in row-major (i, j) order, as in the reference."""
    H, W = plane.shape
    for i in range(kh):
        for j in range(kw):
            row = base + (i * kw + j) * row_stride
            lo, hi = valid_range(j * dw - pl, sw, W, ow)
            for r in range(r0, r1):
                h = r * sh - pt + i * dh
                if h < 0 or h >= H:
                    continue
                dst = plane[h]
                src = row + (r - r0) * ow
                if sw == 1:
                    off = j * dw - pl
                    for q in range(lo, hi):
                        dst[q + off] += cols[src + q]
                else:
                    for q in range(lo, hi):
                        dst[q * sw - pl + j * dw] += cols[src + q]


@njit(parallel=True, **_JIT)
def im2col_kernel(x, cols, kh, kw, sh, sw, pt, pl, oh, ow, dh, dw):
    """``cols`` (flat, public layout ``(C*KH*KW, N*OH*OW)``) <- every window of ``x``."""
    N, C = x.shape[0], x.shape[1]
    P = oh * ow
    for t in prange(N * C):                             # one (image, channel) plane each
        n = t // C
        c = t - n * C
        _im2col_plane(x[n, c], cols, c * kh * kw * N * P + n * P, N * P, 0, oh,
                      kh, kw, sh, sw, pt, pl, ow, dh, dw)


@njit(parallel=True, **_JIT)
def col2im_kernel(cols, dx, kh, kw, sh, sw, pt, pl, oh, ow, dh, dw):
    """``dx = col2im(cols)`` for ``cols`` (flat) in the public layout."""
    N, C = dx.shape[0], dx.shape[1]
    P = oh * ow
    for t in prange(N * C):                             # each plane is written by one thread
        n = t // C
        c = t - n * C
        dx[n, c] = 0
        _col2im_plane(cols, c * kh * kw * N * P + n * P, N * P, 0, oh, dx[n, c],
                      kh, kw, sh, sw, pt, pl, ow, dh, dw)


@njit(**_JIT)
def _dot_groups(w2, cols, out, groups):
    """``out[g] = w2[g] @ cols[g]`` for each group g: rows ``[g*F/G, (g+1)*F/G)`` of
    ``w2``/``out`` and the group's band of column rows ``[g*K/G, (g+1)*K/G)`` (one BLAS
    GEMM each; ``groups == 1`` is the plain ``np.dot(w2, cols, out)``)."""
    fg, kg = w2.shape[0] // groups, cols.shape[0] // groups
    for g in range(groups):
        f0, k0 = g * fg, g * kg
        np.dot(w2[f0:f0 + fg], cols[k0:k0 + kg], out[f0:f0 + fg])


@njit(**_JIT)
def _dot_groups_dw(d, cols, out, groups):
    """``out[g] = d[g] @ cols[g].T`` per group (this image's dw, (F, K/G))."""
    fg, kg = d.shape[0] // groups, cols.shape[0] // groups
    for g in range(groups):
        f0, k0 = g * fg, g * kg
        np.dot(d[f0:f0 + fg], cols[k0:k0 + kg].T, out[f0:f0 + fg])


@njit(**_JIT)
def _dot_groups_dcols(w2, d, out, groups):
    """``out[g] = w2[g].T @ d[g]`` per group (the column gradients, (K, P))."""
    fg, kg = w2.shape[0] // groups, out.shape[0] // groups
    for g in range(groups):
        f0, k0 = g * fg, g * kg
        np.dot(w2[f0:f0 + fg].T, d[f0:f0 + fg], out[k0:k0 + kg])


@njit(**_JIT)
def _unfold_tile(x, n, flat, r0, r1, kh, kw, sh, sw, pt, pl, ow, dh, dw):
    """Columns of image n for output rows [r0, r1): ``flat[:K*tp]`` as (K, tp)."""
    tp = (r1 - r0) * ow
    for c in range(x.shape[1]):
        _im2col_plane(x[n, c], flat, c * kh * kw * tp, tp, r0, r1, kh, kw, sh, sw, pt, pl, ow,
                      dh, dw)
    return flat[:kh * kw * x.shape[1] * tp].reshape((kh * kw * x.shape[1], tp))


@njit(parallel=True, **_JIT)
def conv_forward_kernel(x, w2, b, out3, cols, obuf, rows, pointwise, groups,
                        kh, kw, sh, sw, pt, pl, oh, ow, dh, dw):
    """Per image n (one thread each): ``out3[n] = w2 @ cols_n + b[:, None]``.

    ``cols_n`` (C*KH*KW, OH*OW) is unfolded ``rows`` output rows at a time into this
    thread's row of ``cols`` (usually the whole image in one tile: then the GEMM writes
    straight into ``out3[n]``; else into ``obuf`` and is copied). For a pointwise
    (1x1, stride 1, unpadded) conv ``cols_n`` is ``x[n]`` itself. ``np.dot`` is a BLAS
    GEMM, single-threaded here (the caller limits BLAS): we parallelise over images.
    """
    N, C = x.shape[0], x.shape[1]
    F, P = w2.shape[0], out3.shape[2]
    for n in prange(N):
        o = out3[n]
        if pointwise:
            _dot_groups(w2, x[n].reshape((C, P)), o, groups)
            for f in range(F):
                o[f] += b[f]
            continue
        tid = get_thread_id()
        for r0 in range(0, oh, rows):
            r1 = min(oh, r0 + rows)
            tp = (r1 - r0) * ow
            cv = _unfold_tile(x, n, cols[tid], r0, r1, kh, kw, sh, sw, pt, pl, ow, dh, dw)
            res = o if tp == P else obuf[tid, :F * tp].reshape((F, tp))
            _dot_groups(w2, cv, res, groups)
            for f in range(F):                          # bias, while the tile is in cache
                bf = b[f]
                dst = o[f]
                src = res[f]
                for p in range(tp):
                    dst[r0 * ow + p] = src[p] + bf


@njit(parallel=True, **_JIT)
def conv_backward_kernel(x, w2, dout3, dx, parts, cols, dbuf, pbuf, n0, nb, rows, pointwise,
                         groups, need_dx, kh, kw, sh, sw, pt, pl, oh, ow, dh, dw):
    """Per image n in ``[n0, n0+nb)`` (one thread each), with ``d = dout3[n]`` (F, P):
    ``parts[n - n0] = d @ cols_n.T`` (this image's share of dw) and
    ``dx[n] = col2im(w2.T @ d)`` (the GEMM result overwrites the column buffer),
    ``rows`` output rows at a time (tiles in a fixed order, so sums are deterministic;
    a partial tile's ``dout`` is copied to ``dbuf`` and its dw product to ``pbuf``).
    With ``need_dx`` False only ``parts`` is computed and ``dx`` is never touched."""
    C = x.shape[1]
    F, P = w2.shape[0], dout3.shape[2]
    for m in prange(nb):
        n = n0 + m
        d = dout3[n]
        if pointwise:
            _dot_groups_dw(d, x[n].reshape((C, P)), parts[m], groups)
            if need_dx:
                _dot_groups_dcols(w2, d, dx[n].reshape((C, P)), groups)
            continue
        tid = get_thread_id()
        if need_dx:
            dx[n] = 0
        for r0 in range(0, oh, rows):
            r1 = min(oh, r0 + rows)
            tp = (r1 - r0) * ow
            cv = _unfold_tile(x, n, cols[tid], r0, r1, kh, kw, sh, sw, pt, pl, ow, dh, dw)
            if tp == P:                                 # the whole image in one tile
                _dot_groups_dw(d, cv, parts[m], groups)
                if need_dx:
                    _dot_groups_dcols(w2, d, cv, groups)   # dcols_n, overwriting cols_n
            else:
                dt = dbuf[tid, :F * tp].reshape((F, tp))
                for f in range(F):
                    dt[f] = d[f, r0 * ow:r1 * ow]
                if r0 == 0:
                    _dot_groups_dw(dt, cv, parts[m], groups)
                else:
                    ptile = pbuf[tid].reshape(parts[m].shape)
                    _dot_groups_dw(dt, cv, ptile, groups)
                    parts[m] += ptile
                if need_dx:
                    _dot_groups_dcols(w2, dt, cv, groups)
            if not need_dx:
                continue
            flat = cols[tid]
            for c in range(C):
                _col2im_plane(flat, c * kh * kw * tp, tp, r0, r1, dx[n, c],
                              kh, kw, sh, sw, pt, pl, ow, dh, dw)


@njit(**_JIT)
def _unfold_block(x, n0, m, flat, kh, kw, sh, sw, pt, pl, oh, ow, dh, dw):
    """Columns of the ``m`` images ``[n0, n0+m)`` side by side: ``flat[:K*m*P]`` as
    (K, m*P), image i in columns ``[i*P, (i+1)*P)`` (the public im2col layout of the
    block)."""
    C = x.shape[1]
    P = oh * ow
    cp = m * P
    for i in range(m):
        for c in range(C):
            _im2col_plane(x[n0 + i, c], flat, c * kh * kw * cp + i * P, cp, 0, oh,
                          kh, kw, sh, sw, pt, pl, ow, dh, dw)
    return flat[:kh * kw * C * cp].reshape((kh * kw * C, cp))


@njit(parallel=True, **_JIT)
def conv_forward_blocks_kernel(x, w2, b, out3, work, nb, groups,
                               kh, kw, sh, sw, pt, pl, oh, ow, dh, dw):
    """Per block of ``nb`` consecutive images (one thread each; the last block may be
    shorter): ``res = w2 @ cols_blk`` with ``cols_blk`` (K, m*P) (one GEMM of m*P columns
    instead of m GEMMs of P), then ``out3[n0 + i, f] = res[f, i*P:(i+1)*P] + b[f]``.

    ``work[t]`` is thread t's workspace: ``K*nb*P`` column elements, then ``F*nb*P``
    for ``res``."""
    N, C = x.shape[0], x.shape[1]
    F, P = w2.shape[0], out3.shape[2]
    K = C * kh * kw
    for blk in prange((N + nb - 1) // nb):
        n0 = blk * nb
        m = min(nb, N - n0)
        flat = work[get_thread_id()]
        cv = _unfold_block(x, n0, m, flat, kh, kw, sh, sw, pt, pl, oh, ow, dh, dw)
        res = flat[K * nb * P:K * nb * P + F * m * P].reshape((F, m * P))
        _dot_groups(w2, cv, res, groups)
        for i in range(m):                              # back to NCHW, bias added
            for f in range(F):
                bf = b[f]
                dst = out3[n0 + i, f]
                src = res[f]
                for p in range(P):
                    dst[p] = src[i * P + p] + bf


@njit(**_JIT)
def _backward_block(x, w2, dout3, dx, acc, flat, n0, m, nb, groups, need_dx,
                    kh, kw, sh, sw, pt, pl, oh, ow, dh, dw):
    """One block of images ``[n0, n0+m)``: ``acc += dout_blk @ cols_blk.T`` (float64),
    and ``dx[n] = col2im(w2.T @ dout_blk)`` for its images. ``flat`` holds the columns
    (K*nb*P), then ``dout_blk`` gathered to (F, m*P), then the (F, K/G) product."""
    C = x.shape[1]
    F, P = w2.shape[0], dout3.shape[2]
    K = C * kh * kw
    cp = m * P
    cv = _unfold_block(x, n0, m, flat, kh, kw, sh, sw, pt, pl, oh, ow, dh, dw)
    d = flat[K * nb * P:K * nb * P + F * cp].reshape((F, cp))
    for i in range(m):                                  # dout[n0:n0+m] (m, F, P) -> (F, m*P)
        for f in range(F):
            d[f, i * P:(i + 1) * P] = dout3[n0 + i, f]
    start = (K + F) * nb * P
    prod = flat[start:start + acc.size].reshape(acc.shape)
    _dot_groups_dw(d, cv, prod, groups)
    for f in range(acc.shape[0]):
        for k in range(acc.shape[1]):
            acc[f, k] += prod[f, k]
    if not need_dx:
        return
    _dot_groups_dcols(w2, d, cv, groups)                # dcols, overwriting the columns
    for i in range(m):
        n = n0 + i
        dx[n] = 0
        for c in range(C):
            _col2im_plane(flat, c * kh * kw * cp + i * P, cp, 0, oh, dx[n, c],
                          kh, kw, sh, sw, pt, pl, ow, dh, dw)


@njit(parallel=True, **_JIT)
def conv_backward_blocks_kernel(x, w2, dout3, dx, dw_runs, run_bounds, work, nb, groups,
                                need_dx, kh, kw, sh, sw, pt, pl, oh, ow, dh, dw):
    """Per run r of consecutive blocks (one thread each; ``run_bounds[r]`` = first and
    stop block): ``dw_runs[r] = sum over its blocks, in block order, of dout_blk @
    cols_blk.T`` (float64), and ``dx`` of its images. The caller adds the runs in run
    order, so ``dw`` does not depend on the thread count."""
    N = x.shape[0]
    for r in prange(run_bounds.shape[0]):
        flat = work[get_thread_id()]
        acc = dw_runs[r]
        acc[:] = 0.0
        for blk in range(run_bounds[r, 0], run_bounds[r, 1]):
            n0 = blk * nb
            _backward_block(x, w2, dout3, dx, acc, flat, n0, min(nb, N - n0), nb, groups,
                            need_dx, kh, kw, sh, sw, pt, pl, oh, ow, dh, dw)


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
