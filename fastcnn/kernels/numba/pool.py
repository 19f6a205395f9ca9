"""Numba max- and average-pooling kernels behind :mod:`fastcnn.kernels.numba.backend`.

Every kernel runs one thread per ``(n, c)`` plane (``prange`` over ``N*C``): planes are
independent, so the results are the same for any thread count.
"""

from __future__ import annotations

from numba import njit, prange

_JIT = dict(cache=True, nogil=True)


@njit(**_JIT)
def _later_wins(later, best):
    """True when ``later`` (scanned after ``best``) replaces it: strictly greater, or a
    NaN while ``best`` is not (``v != v`` is the NaN test). Bitwise ``|``/``&`` instead
    of ``or``/``and``: no branches, so random data costs no branch mispredictions."""
    return (later > best) | ((later != later) & (best == best))


@njit(**_JIT)
def _real_taps(start, k, d, size):
    """Taps ``i_lo <= i < i_hi`` of a window of ``k`` taps, ``d`` apart, starting at row
    ``start``, that land inside ``[0, size)`` (the simple version tests every tap)."""
    lo = (-start + d - 1) // d if start < 0 else 0
    room = size - start
    hi = (room + d - 1) // d if room > 0 else 0
    return lo, min(hi, k)


@njit(parallel=True, **_JIT)
def maxpool_forward_kernel(x, out, argmax, kh, kw, sh, sw, pt, pl, dh, dw):
    """``out[n, c, r, q] = max`` of the taps at rows ``r*sh - pt + i*dh`` (``i < kh``) and
    columns ``q*sw - pl + j*dw`` (``j < kw``) that lie in the real input (padding is never
    a candidate); ``argmax`` gets the winner's flat index ``h*W + w`` in its plane.

    The taps are scanned in row-major order and the best is replaced only by a later
    value that wins (:func:`_later_wins`): ties go to the first max, the first NaN wins.
    """
    N, C, H, W = x.shape
    OH, OW = out.shape[2], out.shape[3]
    for t in prange(N * C):
        n = t // C
        c = t - n * C
        plane = x[n, c]
        o = out[n, c]
        a = argmax[n, c]
        for r in range(OH):
            h0 = r * sh - pt
            i_lo, i_hi = _real_taps(h0, kh, dh, H)
            for q in range(OW):
                w0 = q * sw - pl
                j_lo, j_hi = _real_taps(w0, kw, dw, W)
                # Every window holds an input pixel (validated), so this one exists.
                best = plane[h0 + i_lo * dh, w0 + j_lo * dw]
                arg = (h0 + i_lo * dh) * W + w0 + j_lo * dw
                for i in range(i_lo, i_hi):
                    row = plane[h0 + i * dh]
                    for j in range(j_lo, j_hi):
                        v = row[w0 + j * dw]
                        take = _later_wins(v, best)
                        arg = (h0 + i * dh) * W + w0 + j * dw if take else arg
                        best = v if take else best
                o[r, q] = best
                a[r, q] = arg


@njit(parallel=True, **_JIT)
def maxpool_forward_2x2_kernel(x, out, argmax):
    """The same for the common 2x2 window, stride 2, no padding, as a tournament:
    the winner of each row pair, then the top winner against the bottom one (the
    later, bottom, winner must win outright). This picks the same element as the
    row-major scan (the first NaN, else the first max) with a shorter dependency chain."""
    N, C, H, W = x.shape
    OH, OW = out.shape[2], out.shape[3]
    for t in prange(N * C):
        n = t // C
        c = t - n * C
        plane = x[n, c]
        o = out[n, c]
        a = argmax[n, c]
        for r in range(OH):
            top = plane[2 * r]
            bottom = plane[2 * r + 1]
            for q in range(OW):
                w = 2 * q
                t0, t1, b0, b1 = top[w], top[w + 1], bottom[w], bottom[w + 1]
                take_t = _later_wins(t1, t0)
                take_b = _later_wins(b1, b0)
                vt = t1 if take_t else t0
                vb = b1 if take_b else b0
                jt = w + 1 if take_t else w
                jb = w + 1 if take_b else w
                take = _later_wins(vb, vt)
                o[r, q] = vb if take else vt
                a[r, q] = (2 * r + 1) * W + jb if take else 2 * r * W + jt


@njit(parallel=True, **_JIT)
def maxpool_backward_kernel(dout2, argmax2, dx2):
    """Per plane ``p`` (rows of the (N*C, ...) views): ``dx2[p] = 0`` then
    ``dx2[p, argmax2[p, k]] += dout2[p, k]`` in order k = 0, 1, ... (overlapping
    windows accumulate, in the same order as the reference's ``np.add.at``)."""
    planes, K = dout2.shape
    for p in prange(planes):
        dst = dx2[p]
        dst[:] = 0
        src = dout2[p]
        idx = argmax2[p]
        for k in range(K):
            dst[idx[k]] += src[k]


@njit(parallel=True, **_JIT)
def avgpool_forward_kernel(x, divisor, out, row_start, row_stop, col_start, col_stop):
    """``out[n, c, oh, ow] = (sum of x[n, c] over rows [row_start[oh], row_stop[oh]) and
    columns [col_start[ow], col_stop[ow]), row by row from 0) / divisor[oh, ow]``."""
    N, C = x.shape[0], x.shape[1]
    OH, OW = out.shape[2], out.shape[3]
    for t in prange(N * C):
        n = t // C
        c = t - n * C
        plane = x[n, c]
        o = out[n, c]
        for oh in range(OH):
            for ow in range(OW):
                s = plane.dtype.type(0)
                for h in range(row_start[oh], row_stop[oh]):
                    for w in range(col_start[ow], col_stop[ow]):
                        s += plane[h, w]
                o[oh, ow] = s / divisor[oh, ow]


@njit(parallel=True, **_JIT)
def avgpool_backward_kernel(dout, divisor, dx, row_start, row_stop, col_start, col_stop):
    """``dx = 0``, then each window (in ``(oh, ow)`` order) adds ``dout / divisor`` to
    every pixel of its rectangle (overlapping windows add up)."""
    N, C = dx.shape[0], dx.shape[1]
    OH, OW = dout.shape[2], dout.shape[3]
    for t in prange(N * C):
        n = t // C
        c = t - n * C
        d = dx[n, c]
        d[:, :] = 0
        g = dout[n, c]
        for oh in range(OH):
            for ow in range(OW):
                v = g[oh, ow] / divisor[oh, ow]
                for h in range(row_start[oh], row_stop[oh]):
                    for w in range(col_start[ow], col_stop[ow]):
                        d[h, w] += v


@njit(parallel=True, **_JIT)
def avgpool_forward_2x2_kernel(x, divisor, out):
    """:func:`avgpool_forward_kernel` for 2x2 windows at stride 2 (window ``(oh, ow)`` is
    rows ``2oh, 2oh+1`` and columns ``2ow, 2ow+1``), without the window loops: the same
    additions in the same order, so the same bits."""
    N, C = x.shape[0], x.shape[1]
    OH, OW = out.shape[2], out.shape[3]
    zero = x.dtype.type(0)
    for t in prange(N * C):
        n = t // C
        c = t - n * C
        plane = x[n, c]
        o = out[n, c]
        for oh in range(OH):
            top = plane[2 * oh]
            bottom = plane[2 * oh + 1]
            d = divisor[oh]
            for ow in range(OW):
                w = 2 * ow
                o[oh, ow] = ((((zero + top[w]) + top[w + 1]) + bottom[w]) + bottom[w + 1]) / d[ow]


@njit(parallel=True, **_JIT)
def avgpool_backward_2x2_kernel(dout, divisor, dx):
    """:func:`avgpool_backward_kernel` for 2x2/2 windows, write-only: each pixel of a
    window gets ``0 + dout / divisor``; pixels in no window (an odd last row or column) 0."""
    N, C, H, W = dx.shape
    OH, OW = dout.shape[2], dout.shape[3]
    zero = dx.dtype.type(0)
    for t in prange(N * C):
        n = t // C
        c = t - n * C
        d = dx[n, c]
        g = dout[n, c]
        for oh in range(OH):
            top = d[2 * oh]
            bottom = d[2 * oh + 1]
            for ow in range(OW):
                v = zero + g[oh, ow] / divisor[oh, ow]
                top[2 * ow] = v
                top[2 * ow + 1] = v
                bottom[2 * ow] = v
                bottom[2 * ow + 1] = v
            top[2 * OW:] = 0
            bottom[2 * OW:] = 0
        d[2 * OH:, :] = 0
