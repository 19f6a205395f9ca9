"""The kernel API: validate once, make inputs contiguous, dispatch to a backend.

Every function here has the same name and meaning in every backend module
(``reference``, ``numba.backend``, ``cython.backend``); this module is the only
place that checks arguments, so the backends (and the C code under them) may
assume valid, C-contiguous, same-dtype input. See docs/architecture.md, "Kernel API".

=============================================================  ====================
call                                                           returns
=============================================================  ====================
``conv2d_forward(x, w, b, stride=1, padding=0, dilation=1,
groups=1)``                                                    ``out, cache``
``conv2d_backward(dout, cache, need_dx=True)``                ``dx, dw, db``
``maxpool2d_forward(x, size=2, stride=None, padding=0,
dilation=1, ceil_mode=False)``                                 ``out, cache``
``maxpool2d_backward(dout, cache)``                            ``dx``
``maxpool2d_indices(cache)``                                   ``indices (h*W + w)``
``avgpool2d_forward(x, size, stride=None, padding=0,
ceil_mode=False, count_include_pad=True,
divisor_override=None)``                                       ``out, cache``
``avgpool2d_backward(dout, cache)``                            ``dx``
``adaptive_avgpool2d_forward(x, output_size)``                 ``out, cache``
``adaptive_avgpool2d_backward(dout, cache)``                   ``dx``
``batchnorm_forward(x, gamma, beta, running_mean, running_var,
training=True, momentum=0.9, eps=1e-5)``                       ``out, cache``
``batchnorm_backward(dout, cache)``                            ``dx, dgamma, dbeta``
``im2col(x, kh, kw, stride=1, padding=0, dilation=1)``         ``cols``
``col2im(cols, x_shape, kh, kw, stride=1, padding=0,
dilation=1)``                                                  ``x``
=============================================================  ====================

``stride``/``padding``/``size``/``dilation`` take an int or an ``(h, w)`` pair; ``padding`` also
takes ``((top, bottom), (left, right))`` for the asymmetric padding of Keras'
``"same"`` with stride > 1. A backward call runs on the backend that produced its
``cache``, whatever the current backend is.
"""

from __future__ import annotations

import math

import numpy as np

from fastcnn.kernels import _dispatch as _backend
from fastcnn.kernels.cache import KernelCache
from fastcnn.kernels.cache import check_dout as _check_dout
from fastcnn.kernels.geometry import parse_padding, window_geometry
from fastcnn.kernels.pooling import (
    adaptive_avgpool2d_backward,
    adaptive_avgpool2d_forward,
    avgpool2d_backward,
    avgpool2d_forward,
    maxpool2d_backward,
    maxpool2d_forward,
    maxpool2d_indices,
)
from fastcnn.common.validation import (
    _is_int,
    as_float_array,
    check_float,
    check_same_dtype,
    check_shape,
    to_pair,
)

__all__ = [
    "KernelCache",
    "conv2d_forward",
    "conv2d_backward",
    "maxpool2d_forward",
    "maxpool2d_backward",
    "maxpool2d_indices",
    "avgpool2d_forward",
    "avgpool2d_backward",
    "adaptive_avgpool2d_forward",
    "adaptive_avgpool2d_backward",
    "batchnorm_forward",
    "batchnorm_backward",
    "im2col",
    "col2im",
    "parse_padding",
]


def _current():
    name = _backend.get_backend()
    return name, _backend.backend_module(name)


def _window_geometry(where, x_shape, kh, kw, stride, padding, what="kernel", dilation=1):
    sh, sw = to_pair(where, "stride", stride)
    dh, dw = to_pair(where, "dilation", dilation)
    top, bottom, left, right = parse_padding(where, padding)
    n, c, h, w = x_shape
    padded_h, padded_w = h + top + bottom, w + left + right
    span_h, span_w = (kh - 1) * dh + 1, (kw - 1) * dw + 1   # what the dilated window covers
    if span_h > padded_h or span_w > padded_w:
        spread = f" (dilation {dh}x{dw}: it spans {span_h}x{span_w})" if (dh, dw) != (1, 1) else ""
        raise ValueError(
            f"{where}: {what} {kh}x{kw}{spread} does not fit the padded input "
            f"{padded_h}x{padded_w} (input {h}x{w}, padding top/bottom/left/right = "
            f"{top}/{bottom}/{left}/{right}); output would be empty."
        )
    return window_geometry(n, c, h, w, kh, kw, sh, sw, top, bottom, left, right, dh, dw)


# --------------------------------------------------------------------------- conv


def conv2d_forward(x, w, b, stride=1, padding=0, dilation=1, groups=1):
    """2-D convolution (cross-correlation, as in every deep-learning library).

    .. math::
        out[n, f, i, j] = b[f] + \\sum_{c, p, q} x_{pad}[n, g C_g + c, i S_H + p D_H,
        j S_W + q D_W] \\, w[f, c, p, q]

    where ``g = f // (F / groups)`` is the group of output channel ``f`` and ``C_g =
    C / groups`` the channels of a group: with ``groups`` > 1 the channels are split into
    ``groups`` independent convolutions (``groups == C`` is a *depthwise* convolution,
    one filter per input channel, or ``F / C`` of them).

    Parameters
    ----------
    x : ndarray (N, C, H, W), float32 or float64
    w : ndarray (F, C / groups, KH, KW), same dtype
    b : ndarray (F,), same dtype, or None for no bias
    stride : int or (SH, SW)
    padding : int, (PH, PW) or ((top, bottom), (left, right)); zeros
    dilation : int or (DH, DW): distance between the taps of the kernel (1 = dense)
    groups : int dividing both C and F

    Returns
    -------
    out : ndarray (N, F, OH, OW) with ``OH = (H + PT + PB - ((KH-1)*DH + 1)) // SH + 1``
    cache : KernelCache for :func:`conv2d_backward`
    """
    where = "conv2d_forward"
    x = as_float_array(where, "x", x, ndim=4)
    w = as_float_array(where, "w", w, ndim=4)
    if b is not None:
        b = as_float_array(where, "b", b, ndim=1)
    dtype = check_same_dtype(where, x=x, w=w, b=b)
    groups = _check_groups(where, x.shape, w.shape, groups)
    if x.shape[2] == 0 or x.shape[3] == 0:
        raise ValueError(f"{where}: x must have H, W >= 1; got x.shape={x.shape}.")
    has_bias = b is not None
    if has_bias:
        check_shape(where, "b", b, (w.shape[0],))
    else:
        b = np.zeros(w.shape[0], dtype=dtype)
    geom = _window_geometry(where, x.shape, w.shape[2], w.shape[3], stride, padding,
                            dilation=dilation)
    name, module = _current()
    out, data = module.conv2d_forward(x, w, b, geom, groups)
    return out, KernelCache("conv2d", name, out.shape, dtype, data, extra=has_bias)


def _check_groups(where, x_shape, w_shape, groups) -> int:
    """``groups`` must divide C and F, and w must be (F, C / groups, KH, KW)."""
    if not _is_int(groups) or groups < 1:
        raise ValueError(f"{where}: groups must be a positive int; got {groups!r}.")
    groups = int(groups)
    f, wc, kh, kw = w_shape
    if kh == 0 or kw == 0 or f == 0 or wc == 0:
        raise ValueError(f"{where}: w must have no zero-sized dimension; got w.shape={w_shape}.")
    c = x_shape[1]
    if c % groups or f % groups:
        raise ValueError(f"{where}: groups must divide both the input channels C = {c} and "
                         f"the filters F = {f}; got groups={groups}.")
    if wc * groups != c:
        layout = "(F, C, KH, KW)" if groups == 1 else f"(F, C/groups, KH, KW) with groups={groups}"
        raise ValueError(f"{where}: x must have C == {wc * groups} channels to match w "
                         f"{layout} = {w_shape}; got x.shape={x_shape}.")
    return groups


def conv2d_backward(dout, cache, need_dx=True):
    """Gradients of :func:`conv2d_forward`.

    .. math::
        dx = \\mathrm{col2im}(W^T \\, dout), \\quad dw = dout \\cdot \\mathrm{im2col}(x)^T,
        \\quad db[f] = \\sum_{n,i,j} dout[n, f, i, j]

    Returns ``dx (N, C, H, W), dw (F, C, KH, KW), db (F,)`` (``db`` is None when the
    forward pass had no bias).

    ``need_dx=False`` skips the whole ``dx`` computation (the ``W^T @ dout`` GEMMs and
    col2im, about a third of the backward) and returns ``dx = None``: a network's first
    layer never needs the gradient of its input. ``dw`` and ``db`` are the same bits
    either way.
    """
    dout = _check_dout("conv2d_backward", dout, cache)
    if not isinstance(need_dx, (bool, np.bool_)):
        raise TypeError(f"conv2d_backward: need_dx must be a bool; got {need_dx!r}.")
    need_dx = bool(need_dx)
    dx, dw, db = _backend.backend_module(cache.backend).conv2d_backward(
        dout, cache.data, need_dx)
    return (dx if need_dx else None), dw, (db if cache.extra else None)


# ------------------------------------------------------------------------ im2col


def im2col(x, kh, kw, stride=1, padding=0, dilation=1):
    """Unfold every ``(C, KH, KW)`` window of ``x`` into a column.

    ``cols[(c*KH + i)*KW + j, (n*OH + oh)*OW + ow] = x_pad[n, c, oh*SH + i*DH, ow*SW + j*DW]``
    (zero where the window covers padding). Shape ``(C*KH*KW, N*OH*OW)``.
    """
    where = "im2col"
    x = as_float_array(where, "x", x, ndim=4)
    kh, kw = to_pair(where, "kernel size (kh, kw)", (kh, kw))
    geom = _window_geometry(where, x.shape, kh, kw, stride, padding, dilation=dilation)
    return _current()[1].im2col(x, geom)


def col2im(cols, x_shape, kh, kw, stride=1, padding=0, dilation=1):
    """Adjoint of :func:`im2col`: scatter-add every column back to its window.

    Overlapping windows *sum* their contributions, so ``<im2col(x), c> == <x, col2im(c)>``.
    Returns an array of shape ``x_shape`` = ``(N, C, H, W)``.
    """
    where = "col2im"
    cols = as_float_array(where, "cols", cols, ndim=2)
    if (not isinstance(x_shape, (tuple, list)) or len(x_shape) != 4
            or not all(_is_int(v) and v >= 0 for v in x_shape)):
        raise ValueError(f"{where}: x_shape must be (N, C, H, W) of non-negative ints; got {x_shape!r}.")
    kh, kw = to_pair(where, "kernel size (kh, kw)", (kh, kw))
    x_shape = tuple(int(v) for v in x_shape)
    if min(x_shape[1:]) < 1:
        raise ValueError(f"{where}: x_shape must have C, H, W >= 1; got {x_shape!r}.")
    geom = _window_geometry(where, x_shape, kh, kw, stride, padding, dilation=dilation)
    check_shape(where, "cols", cols, geom.cols_shape)
    return _current()[1].col2im(cols, geom)


# --------------------------------------------------------------------- batchnorm


def batchnorm_forward(x, gamma, beta, running_mean, running_var,
                      training=True, momentum=0.9, eps=1e-5):
    """Batch normalization, per feature of ``(N, D)`` or per channel of ``(N, C, H, W)``.

    Training: ``mu, var`` = mean and *biased* variance over the batch (and H, W);
    ``out = gamma * (x - mu) / sqrt(var + eps) + beta``; the running statistics are
    updated in place: ``running = momentum * running + (1 - momentum) * batch_stat``.
    Inference (``training=False``): the running statistics replace ``mu, var`` and
    are left unchanged. An empty batch (``N == 0``) gives an empty output in both
    modes and never touches the running statistics (as in PyTorch). Statistics are
    accumulated in float64 by every fast backend.

    Returns ``out`` (same shape as ``x``) and a cache for :func:`batchnorm_backward`.
    """
    where = "batchnorm_forward"
    x = as_float_array(where, "x", x, ndim=(2, 4))
    c = x.shape[1]
    gamma = _channel_vector(where, "gamma", gamma, c)
    beta = _channel_vector(where, "beta", beta, c)
    rm = _channel_vector(where, "running_mean", running_mean, c)
    rv = _channel_vector(where, "running_var", running_var, c)
    dtype = x.dtype
    if not (gamma.dtype is dtype and beta.dtype is dtype and rm.dtype is dtype
            and rv.dtype is dtype):          # the full check only when it may fail
        check_same_dtype(where, x=x, gamma=gamma, beta=beta, running_mean=rm,
                         running_var=rv)
    if not isinstance(training, (bool, np.bool_)):
        raise TypeError(f"{where}: training must be a bool; got {training!r}.")
    momentum = check_float(where, "momentum", momentum, 0.0, 1.0)
    eps = check_float(where, "eps", eps, 0.0, None, low_inclusive=False)
    n = x.shape[0]
    spatial = math.prod(x.shape[2:])       # 1 for (N, D)
    if training and n > 0 and spatial == 0:
        raise ValueError(f"{where}: training mode needs a non-empty batch to compute "
                         f"statistics; got x.shape={x.shape}.")
    if training:
        for name, original in (("running_mean", running_mean), ("running_var", running_var)):
            if not original.flags.writeable:
                raise ValueError(f"{where}: {name} must be writeable in training mode "
                                 f"(it is updated in place).")
    if training and n == 0:
        # PyTorch's rule: an empty batch has no statistics, so it gives an empty output
        # and leaves the running statistics alone. Its gradients are empty (dx) and zero
        # (dgamma, dbeta) -- exactly what inference mode computes on an empty batch.
        training = False
    x3 = x.reshape(n, c, spatial)
    name, module = _current()
    out3, data = module.batchnorm_forward(x3, gamma, beta, rm, rv, bool(training), momentum,
                                          eps)
    if training:
        # The backend updated contiguous copies if the caller's arrays were not
        # contiguous; write the update back so nothing is lost.
        if rm is not running_mean:
            running_mean[...] = rm
        if rv is not running_var:
            running_var[...] = rv
    return out3.reshape(x.shape), KernelCache("batchnorm", name, x.shape, x.dtype, data)


def _channel_vector(where: str, name: str, value, c: int) -> np.ndarray:
    """One of batch norm's per-channel vectors: a float array of shape ``(C,)``."""
    value = as_float_array(where, name, value, ndim=1)
    if value.shape[0] != c:
        check_shape(where, name, value, (c,))      # raises, quoting both shapes
    return value


def batchnorm_backward(dout, cache):
    """Gradients of :func:`batchnorm_forward` (fused formula in training mode)::

        xhat = (x - mu) * invstd ;  M = N (dense) or N*H*W (spatial)
        dbeta  = sum(dout)                       dgamma = sum(dout * xhat)
        dx = gamma * invstd / M * (M * dout - dbeta - xhat * dgamma)

    In inference mode ``dx = gamma * invstd_running * dout``.
    Returns ``dx`` (shape of x), ``dgamma (C,)``, ``dbeta (C,)``.
    """
    dout = _check_dout("batchnorm_backward", dout, cache)
    shape = dout.shape
    n, c = shape[0], shape[1]
    spatial = math.prod(shape[2:])         # 1 for (N, D)
    dx3, dgamma, dbeta = _backend.backend_module(cache.backend).batchnorm_backward(
        dout.reshape(n, c, spatial), cache.data)
    return dx3.reshape(shape), dgamma, dbeta
