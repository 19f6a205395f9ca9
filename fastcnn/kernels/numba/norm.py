"""Numba batch-norm kernels behind :mod:`fastcnn.kernels.numba_backend`.

``x`` is seen as ``(N, C, L)`` (``L = H*W``, or 1 for ``(N, D)`` input); each channel
reduces ``M = N*L`` values. One thread per channel (``prange`` over ``C``): a channel's
sums are always taken in the same order, so results do not depend on the thread
count. All statistics and the normalisation itself are computed in float64, as in
the reference, and only the stored results are rounded to the input dtype.

Sums use four interleaved float64 partial sums (fixed lanes ``l % 4``) so the CPU
can overlap additions; this is a fixed partition, not a thread-dependent one.
A channel's ``N*L`` values are read 2-3 times in a row, while they are still in cache.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

_JIT = dict(cache=True, nogil=True)


@njit(**_JIT)
def _sum(row):
    """``row.sum()`` in float64."""
    s0 = 0.0
    s1 = 0.0
    s2 = 0.0
    s3 = 0.0
    L = row.shape[0]
    l = 0  # noqa: E741
    while l + 4 <= L:
        s0 += row[l]
        s1 += row[l + 1]
        s2 += row[l + 2]
        s3 += row[l + 3]
        l += 4
    while l < L:
        s0 += row[l]
        l += 1
    return (s0 + s1) + (s2 + s3)


@njit(**_JIT)
def _sum_sq_dev(row, mu):
    """``((row - mu) ** 2).sum()`` in float64."""
    s0 = 0.0
    s1 = 0.0
    s2 = 0.0
    s3 = 0.0
    L = row.shape[0]
    l = 0  # noqa: E741
    while l + 4 <= L:
        d0 = row[l] - mu
        d1 = row[l + 1] - mu
        d2 = row[l + 2] - mu
        d3 = row[l + 3] - mu
        s0 += d0 * d0
        s1 += d1 * d1
        s2 += d2 * d2
        s3 += d3 * d3
        l += 4
    while l < L:
        d0 = row[l] - mu
        s0 += d0 * d0
        l += 1
    return (s0 + s1) + (s2 + s3)


@njit(**_JIT)
def _sum_and_dot_xhat(drow, xrow, mu, invstd):
    """``(drow.sum(), (drow * xhat).sum())`` with ``xhat = (xrow - mu) * invstd``, float64."""
    a0 = 0.0
    a1 = 0.0
    b0 = 0.0
    b1 = 0.0
    L = drow.shape[0]
    l = 0  # noqa: E741
    while l + 2 <= L:
        d0 = np.float64(drow[l])
        d1 = np.float64(drow[l + 1])
        a0 += d0
        a1 += d1
        b0 += d0 * ((xrow[l] - mu) * invstd)
        b1 += d1 * ((xrow[l + 1] - mu) * invstd)
        l += 2
    if l < L:
        d0 = np.float64(drow[l])
        a0 += d0
        b0 += d0 * ((xrow[l] - mu) * invstd)
    return a0 + a1, b0 + b1


@njit(parallel=True, **_JIT)
def batch_stats_kernel(x, mean, var):
    """``mean[c] = x[:, c].mean()``, ``var[c] = ((x[:, c] - mean[c])**2).mean()`` (biased),
    two passes in float64 (no cancellation, unlike E[x^2] - E[x]^2)."""
    N, C, L = x.shape
    M = N * L
    for c in prange(C):
        s = 0.0
        for n in range(N):
            s += _sum(x[n, c])
        mu = s / M
        q = 0.0
        for n in range(N):
            q += _sum_sq_dev(x[n, c], mu)
        mean[c] = mu
        var[c] = q / M


@njit(parallel=True, **_JIT)
def normalize_kernel(x, mean, invstd, gamma, beta, out):
    """``out = gamma * ((x - mean) * invstd) + beta`` per channel, in float64."""
    N, C, L = x.shape
    for c in prange(C):
        mu = mean[c]
        s = invstd[c]
        g = np.float64(gamma[c])
        b = np.float64(beta[c])
        for n in range(N):
            src = x[n, c]
            dst = out[n, c]
            for l in range(L):  # noqa: E741
                dst[l] = g * ((src[l] - mu) * s) + b


@njit(parallel=True, **_JIT)
def batchnorm_backward_kernel(dout, x, mean, invstd, gamma, training, dx, dgamma, dbeta):
    """``dbeta = sum(dout)``, ``dgamma = sum(dout * xhat)`` (float64 outputs), and

    training:  ``dx = gamma * invstd / M * (M * dout - dbeta - xhat * dgamma)``
    inference: ``dx = gamma * invstd * dout``
    """
    N, C, L = x.shape
    M = N * L
    for c in prange(C):
        mu = mean[c]
        s = invstd[c]
        sd = 0.0
        sdx = 0.0
        for n in range(N):
            a, b = _sum_and_dot_xhat(dout[n, c], x[n, c], mu, s)
            sd += a
            sdx += b
        dbeta[c] = sd
        dgamma[c] = sdx
        scale = np.float64(gamma[c]) * s
        k = scale / M
        for n in range(N):
            d = dout[n, c]
            xr = x[n, c]
            dst = dx[n, c]
            if training:
                for l in range(L):  # noqa: E741
                    dst[l] = k * (M * np.float64(d[l]) - sd - ((xr[l] - mu) * s) * sdx)
            else:
                for l in range(L):  # noqa: E741
                    dst[l] = scale * d[l]


# ----------------------------------------------------------------------------- (N, D)
# With L == 1 a "channel" is one column of the (N, D) matrix: the kernels above would walk
# it with stride D, one 1-element view per value. These read the matrix row by row instead,
# a block of DENSE_BLOCK features per thread (a fixed partition of the features, so results
# do not depend on the thread count): the inner loops run over contiguous features, with one
# float64 accumulator per feature (the same sums, each in row order n = 0, 1, ...).

DENSE_BLOCK = 64


@njit(parallel=True, **_JIT)
def batch_stats_dense_kernel(x2, mean, var):
    """``x2`` (N, D): ``mean[d] = x2[:, d].mean()``, ``var[d] = ((x2[:, d] - mean[d])**2).mean()``,
    two passes in float64 (as :func:`batch_stats_kernel`)."""
    N, D = x2.shape
    nblocks = (D + DENSE_BLOCK - 1) // DENSE_BLOCK
    for blk in prange(nblocks):
        d0 = blk * DENSE_BLOCK
        d1 = min(D, d0 + DENSE_BLOCK)
        s = np.zeros(d1 - d0)
        for n in range(N):
            row = x2[n, d0:d1]
            for k in range(d1 - d0):
                s[k] += row[k]
        mu = s / N
        q = np.zeros(d1 - d0)
        for n in range(N):
            row = x2[n, d0:d1]
            for k in range(d1 - d0):
                dv = row[k] - mu[k]
                q[k] += dv * dv
        for k in range(d1 - d0):
            mean[d0 + k] = mu[k]
            var[d0 + k] = q[k] / N


@njit(parallel=True, **_JIT)
def normalize_dense_kernel(x2, mean, invstd, gamma, beta, out2):
    """``out2 = gamma * ((x2 - mean) * invstd) + beta`` per feature, in float64, a block of
    rows per thread (elementwise: any partition gives the same bits)."""
    N, D = x2.shape
    rows = max(1, 16384 // max(D, 1))
    for blk in prange((N + rows - 1) // rows):
        for n in range(blk * rows, min(N, (blk + 1) * rows)):
            src = x2[n]
            dst = out2[n]
            for d in range(D):
                dst[d] = np.float64(gamma[d]) * ((src[d] - mean[d]) * invstd[d]) \
                    + np.float64(beta[d])


@njit(parallel=True, **_JIT)
def batchnorm_backward_dense_kernel(dout2, x2, mean, invstd, gamma, training, dx2, dgamma,
                                    dbeta):
    """:func:`batchnorm_backward_kernel` for ``(N, D)``: the sums per block of features in
    row order, then ``dx`` row by row with the same formula."""
    N, D = x2.shape
    nblocks = (D + DENSE_BLOCK - 1) // DENSE_BLOCK
    for blk in prange(nblocks):
        d0 = blk * DENSE_BLOCK
        d1 = min(D, d0 + DENSE_BLOCK)
        w = d1 - d0
        sd = np.zeros(w)
        sdx = np.zeros(w)
        mu = mean[d0:d1]
        s = invstd[d0:d1]
        for n in range(N):
            drow = dout2[n, d0:d1]
            xrow = x2[n, d0:d1]
            for k in range(w):
                dv = np.float64(drow[k])
                sd[k] += dv
                sdx[k] += dv * ((xrow[k] - mu[k]) * s[k])
        scale = np.empty(w)
        for k in range(w):
            dbeta[d0 + k] = sd[k]
            dgamma[d0 + k] = sdx[k]
            scale[k] = np.float64(gamma[d0 + k]) * s[k]
        kk = scale / N
        for n in range(N):
            drow = dout2[n, d0:d1]
            xrow = x2[n, d0:d1]
            dst = dx2[n, d0:d1]
            if training:
                for k in range(w):
                    dst[k] = kk[k] * (N * np.float64(drow[k]) - sd[k]
                                      - ((xrow[k] - mu[k]) * s[k]) * sdx[k])
            else:
                for k in range(w):
                    dst[k] = scale[k] * drow[k]
