"""NumPy reference kernels: the ground truth every fast backend is tested against.

Written to be read, not to be fast. Each function takes arguments already
validated by :mod:`fastcnn.kernels` (C-contiguous, one float dtype, a
:class:`~fastcnn._shapes.WindowGeometry`) and returns what the kernel API returns.
Batch norm sees ``x`` as ``(N, C, L)``: ``L = H*W`` for images, ``L = 1`` for ``(N, D)``.

No Numba, no Cython: this module runs wherever NumPy runs. Its own correctness is
checked against naive loops and numeric gradients in ``tests/kernels``.
"""

from __future__ import annotations

import numpy as np

from fastcnn.kernels.geometry import PoolWindows, WindowGeometry

NAME = "numpy"

__all__ = [
    "im2col", "col2im", "conv2d_forward", "conv2d_backward",
    "maxpool2d_forward", "maxpool2d_backward", "maxpool_argmax",
    "avgpool2d_forward", "avgpool2d_backward", "batchnorm_forward", "batchnorm_backward",
]


def _pad(x: np.ndarray, g: WindowGeometry, value: float = 0.0) -> np.ndarray:
    """x padded with ``value`` per the geometry's four sides: (N, C, H+PT+PB, W+PL+PR)."""
    return np.pad(x, ((0, 0), (0, 0), (g.pad_top, g.pad_bottom), (g.pad_left, g.pad_right)),
                  constant_values=value)


def _window_views(x_pad: np.ndarray, g: WindowGeometry):
    """Yield ``(i, j, view)`` for every tap ``(i, j)`` of the window, in row-major
    order, where ``view[n, c, oh, ow] = x_pad[n, c, oh*SH + i*DH, ow*SW + j*DW]``.

    This is the whole trick of im2col without index tables: for a fixed tap of the
    window, the pixels it touches across all output positions form a strided slice
    (starting ``i*DH`` rows down: the dilation only moves where each slice starts).
    """
    for i in range(g.kh):
        for j in range(g.kw):
            top, left = i * g.dh, j * g.dw
            yield i, j, x_pad[:, :, top:top + g.sh * (g.oh - 1) + 1:g.sh,
                              left:left + g.sw * (g.ow - 1) + 1:g.sw]


def im2col(x: np.ndarray, g: WindowGeometry) -> np.ndarray:
    """``cols[(c*KH + i)*KW + j, (n*OH + oh)*OW + ow] =
    x_pad[n, c, oh*SH + i*DH, ow*SW + j*DW]``."""
    cols6 = np.empty((g.c, g.kh, g.kw, g.n, g.oh, g.ow), dtype=x.dtype)
    for i, j, view in _window_views(_pad(x, g), g):
        cols6[:, i, j] = view.transpose(1, 0, 2, 3)  # (C, N, OH, OW)
    return cols6.reshape(g.cols_shape)


def col2im(cols: np.ndarray, g: WindowGeometry) -> np.ndarray:
    """Adjoint of :func:`im2col`: every column entry is *added* back to the pixel it
    was read from (``+=``, so overlapping windows sum); padding is cropped away."""
    cols6 = cols.reshape(g.c, g.kh, g.kw, g.n, g.oh, g.ow)
    x_pad = np.zeros((g.n, g.c, g.h + g.pad_top + g.pad_bottom,
                      g.w + g.pad_left + g.pad_right), dtype=cols.dtype)
    for i, j, view in _window_views(x_pad, g):
        view += cols6[:, i, j].transpose(1, 0, 2, 3)  # view writes through to x_pad
    return np.ascontiguousarray(x_pad[:, :, g.pad_top:g.pad_top + g.h,
                                      g.pad_left:g.pad_left + g.w])


def _group_slices(f: int, c_rows: int, groups: int):
    """``(filters, rows)`` slices of each group: output channels ``[g*F/G, (g+1)*F/G)`` and
    the im2col rows of its input channels ``[g*C/G*KH*KW, (g+1)*C/G*KH*KW)`` (the rows of
    one channel are consecutive, so a group's rows are one band)."""
    fg, kg = f // groups, c_rows // groups
    return [(slice(k * fg, (k + 1) * fg), slice(k * kg, (k + 1) * kg)) for k in range(groups)]


def conv2d_forward(x, w, b, g: WindowGeometry, groups: int = 1):
    """``out = W2 @ im2col(x) + b`` with ``W2 = w.reshape(F, C/G*KH*KW)``, one product per
    group (``groups == 1``: one product), reshaped to ``(N, F, OH, OW)``.
    Cache: ``(x, w, geometry, groups)``."""
    f = w.shape[0]
    cols = im2col(x, g)                                   # (C*KH*KW, N*OH*OW)
    w2 = w.reshape(f, -1)
    out = np.empty((f, cols.shape[1]), dtype=x.dtype)
    for filters, rows in _group_slices(f, cols.shape[0], groups):
        out[filters] = w2[filters] @ cols[rows]
    out += b[:, None]
    out = out.reshape(f, g.n, g.oh, g.ow).transpose(1, 0, 2, 3)
    return np.ascontiguousarray(out), (x, w, g, groups)


def conv2d_backward(dout, cache, need_dx=True):
    """``db = sum(dout)``, ``dw = dout2 @ cols.T``, ``dx = col2im(W2.T @ dout2)`` (per group)
    where ``dout2 = dout`` as ``(F, N*OH*OW)``; ``dx`` is None when ``need_dx`` is False."""
    x, w, g, groups = cache
    f = w.shape[0]
    dout2 = dout.transpose(1, 0, 2, 3).reshape(f, -1)     # (F, N*OH*OW)
    db = dout2.sum(axis=1)
    cols = im2col(x, g)
    w2 = w.reshape(f, -1)
    dw = np.empty_like(w2)
    dcols = np.empty_like(cols) if need_dx else None
    for filters, rows in _group_slices(f, cols.shape[0], groups):
        dw[filters] = dout2[filters] @ cols[rows].T
        if need_dx:
            dcols[rows] = w2[filters].T @ dout2[filters]
    dx = col2im(dcols, g) if need_dx else None
    return dx, dw.reshape(w.shape), db


def _pool_views(x: np.ndarray, g: WindowGeometry, value: float):
    """Like :func:`_window_views` for a (possibly dilated, ceil-mode) pooling window:
    yield ``(i, j, view)`` with ``view[n, c, oh, ow] = x_pad[n, c, oh*SH + i*DH,
    ow*SW + j*DW]``, where ``x_pad`` is ``x`` padded with ``value`` far enough at the
    bottom/right for every window (ceil mode may need more than ``pad_bottom``)."""
    bottom = max(0, (g.oh - 1) * g.sh + g.extent_h - g.h - g.pad_top)
    right = max(0, (g.ow - 1) * g.sw + g.extent_w - g.w - g.pad_left)
    x_pad = np.pad(x, ((0, 0), (0, 0), (g.pad_top, bottom), (g.pad_left, right)),
                   constant_values=value)
    for i in range(g.kh):
        for j in range(g.kw):
            top, left = i * g.dh, j * g.dw
            yield i, j, x_pad[:, :, top:top + g.sh * (g.oh - 1) + 1:g.sh,
                              left:left + g.sw * (g.ow - 1) + 1:g.sw]


def maxpool2d_forward(x, g: WindowGeometry):
    """Max over each window; ``argmax`` holds the winner's flat index ``h*W + w`` in
    its input plane. Scanning taps in row-major order and replacing only on a
    *strictly* greater value makes ties go to the first maximum. A NaN replaces a
    non-NaN best, and nothing replaces a NaN, so the first NaN wins and propagates.
    Padding positions are never candidates."""
    best = np.full((g.n, g.c, g.oh, g.ow), -np.inf, dtype=x.dtype)
    argmax = np.full((g.n, g.c, g.oh, g.ow), -1, dtype=np.int64)
    rows = np.arange(g.oh)[:, None] * g.sh - g.pad_top     # window top row per output row
    cols = np.arange(g.ow)[None, :] * g.sw - g.pad_left    # window left column
    for i, j, view in _pool_views(x, g, -np.inf):
        h, w = rows + i * g.dh, cols + j * g.dw              # input coordinates (OH, OW)
        real = (h >= 0) & (h < g.h) & (w >= 0) & (w < g.w)   # not padding
        first = argmax < 0
        take = real & (first | (view > best) | (np.isnan(view) & ~np.isnan(best)))
        best = np.where(take, view, best)
        argmax = np.where(take, h * g.w + w, argmax)
    return best, (argmax, g)


def maxpool_argmax(data) -> np.ndarray:
    """The flat index ``h*W + w`` of each window's winner, from a maxpool cache's data."""
    return data[0]


def maxpool2d_backward(dout, cache):
    """``dx[n, c].flat[argmax[n, c, i, j]] += dout[n, c, i, j]`` (``np.add.at`` sums
    repeated indices, which overlapping windows produce)."""
    argmax, g = cache
    dx = np.zeros((g.n * g.c, g.h * g.w), dtype=dout.dtype)
    planes = np.arange(g.n * g.c)[:, None]
    outputs = g.oh * g.ow  # explicit, not -1: reshape cannot infer -1 when N == 0
    np.add.at(dx, (planes, argmax.reshape(g.n * g.c, outputs)),
              dout.reshape(g.n * g.c, outputs))
    return dx.reshape(g.input_shape)


def avgpool2d_forward(x, win: PoolWindows):
    """``out[n, c, oh, ow] = sum(x[n, c, rows(oh), cols(ow)]) / divisor[oh, ow]`` over
    the rectangles of ``win`` (see :class:`~fastcnn.kernels.geometry.PoolWindows`),
    as two passes of 1-D window sums: ``rowsum[n, c, oh, w]`` = sum over the rows of
    window ``oh``, then the columns of window ``ow`` of ``rowsum``. Cache: ``win``."""
    rowsum = np.empty((win.n, win.c, win.oh, win.w), dtype=x.dtype)
    for oh in range(win.oh):
        rowsum[:, :, oh] = x[:, :, win.row_start[oh]:win.row_stop[oh]].sum(axis=2)
    out = np.empty(win.output_shape, dtype=x.dtype)
    for ow in range(win.ow):
        out[:, :, :, ow] = rowsum[:, :, :, win.col_start[ow]:win.col_stop[ow]].sum(axis=3)
    out /= win.divisor.astype(x.dtype)
    return out, win


def avgpool2d_backward(dout, win: PoolWindows):
    """Every pixel of window ``(oh, ow)`` gets ``dout / divisor`` of that window; the
    adjoint of the forward's two passes, in reverse order (spread over the columns,
    then over the rows; overlapping windows add up)."""
    share = dout / win.divisor.astype(dout.dtype)                      # (N, C, OH, OW)
    colspread = np.zeros((win.n, win.c, win.oh, win.w), dtype=dout.dtype)
    for ow in range(win.ow):
        colspread[:, :, :, win.col_start[ow]:win.col_stop[ow]] += share[:, :, :, ow, None]
    dx = np.zeros(win.input_shape, dtype=dout.dtype)
    for oh in range(win.oh):
        dx[:, :, win.row_start[oh]:win.row_stop[oh]] += colspread[:, :, oh, None]
    return dx


def batchnorm_forward(x, gamma, beta, running_mean, running_var, training, momentum, eps):
    """``x`` is (N, C, L); statistics run over axes 0 and 2 (M = N*L values each),
    computed in float64. Running statistics are updated in place in training mode."""
    if training:
        x64 = x.astype(np.float64)
        mean = x64.mean(axis=(0, 2))
        var = x64.var(axis=(0, 2))                        # biased: divide by M
        running_mean[...] = momentum * running_mean + (1 - momentum) * mean
        running_var[...] = momentum * running_var + (1 - momentum) * var
    else:
        mean = running_mean.astype(np.float64)
        var = running_var.astype(np.float64)
    invstd = 1.0 / np.sqrt(var + eps)
    xhat = (x - mean[None, :, None]) * invstd[None, :, None]          # float64
    out = (gamma[None, :, None] * xhat + beta[None, :, None]).astype(x.dtype)
    return out, (xhat, gamma, invstd, training)


def batchnorm_backward(dout, cache):
    """Training mode, with ``M`` values per channel (derivation in the docstring of
    :func:`fastcnn.kernels.batchnorm_backward`)::

        dbeta = sum(dout);  dgamma = sum(dout * xhat)
        dx = gamma * invstd / M * (M * dout - dbeta - xhat * dgamma)

    Inference mode: the statistics are constants, so ``dx = gamma * invstd * dout``.
    """
    xhat, gamma, invstd, training = cache
    d64 = dout.astype(np.float64)
    dbeta = d64.sum(axis=(0, 2))
    dgamma = (d64 * xhat).sum(axis=(0, 2))
    scale = (gamma * invstd)[None, :, None]
    if training:
        m = dout.shape[0] * dout.shape[2]
        dx = scale / m * (m * d64 - dbeta[None, :, None] - xhat * dgamma[None, :, None])
    else:
        dx = scale * d64
    dt = dout.dtype
    return dx.astype(dt), dgamma.astype(dt), dbeta.astype(dt)
