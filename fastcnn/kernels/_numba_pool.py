"""Numba max-pooling kernels behind :mod:`fastcnn.kernels.numba_backend`.

Both kernels run one thread per ``(n, c)`` plane (``prange`` over ``N*C``): planes are
independent, so the results are the same for any thread count.
"""

from __future__ import annotations

from numba import njit, prange

_JIT = dict(cache=True, nogil=True)


@njit(parallel=True, **_JIT)
def maxpool_forward_kernel(x, out, argmax, kh, kw, sh, sw, pt, pl):
    """``out[n, c, r, q] = max`` of the window at rows ``r*sh - pt + [0, kh)`` and
    columns ``q*sw - pl + [0, kw)``, clipped to the real input (padding is never a
    candidate); ``argmax`` gets the winner's flat index ``h*W + w`` in its plane.

    Scan in row-major window order and replace the best only when the new value is
    strictly greater (ties: first max wins) or is a NaN while the best is not (the
    first NaN wins and nothing replaces it); ``v != v`` is the NaN test.
    """
    N, C, H, W = x.shape
    OH, OW = out.shape[2], out.shape[3]
    for t in prange(N * C):
        n = t // C
        c = t - n * C
        plane = x[n, c]
        for r in range(OH):
            h0 = r * sh - pt
            i_lo = max(0, -h0)
            i_hi = min(kh, H - h0)
            for q in range(OW):
                w0 = q * sw - pl
                j_lo = max(0, -w0)
                j_hi = min(kw, W - w0)
                # Padding < window on every side, so the clipped window is never empty.
                best = plane[h0 + i_lo, w0 + j_lo]
                arg = (h0 + i_lo) * W + w0 + j_lo
                for i in range(i_lo, i_hi):
                    row = plane[h0 + i]
                    for j in range(j_lo, j_hi):
                        v = row[w0 + j]
                        if v > best or (v != v and best == best):
                            best = v
                            arg = (h0 + i) * W + w0 + j
                out[n, c, r, q] = best
                argmax[n, c, r, q] = arg


@njit(parallel=True, **_JIT)
def maxpool_forward_2x2_kernel(x, out, argmax):
    """The same as :func:`maxpool_forward_kernel` for the common 2x2 window, stride 2,
    no padding: the four candidates are compared unrolled, in the same order."""
    N, C, H, W = x.shape
    OH, OW = out.shape[2], out.shape[3]
    for t in prange(N * C):
        n = t // C
        c = t - n * C
        plane = x[n, c]
        for r in range(OH):
            top = plane[2 * r]
            bottom = plane[2 * r + 1]
            for q in range(OW):
                w = 2 * q
                best = top[w]
                arg = 2 * r * W + w
                v = top[w + 1]
                if v > best or (v != v and best == best):
                    best = v
                    arg = 2 * r * W + w + 1
                v = bottom[w]
                if v > best or (v != v and best == best):
                    best = v
                    arg = (2 * r + 1) * W + w
                v = bottom[w + 1]
                if v > best or (v != v and best == best):
                    best = v
                    arg = (2 * r + 1) * W + w + 1
                out[n, c, r, q] = best
                argmax[n, c, r, q] = arg


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
