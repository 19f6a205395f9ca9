"""The kernel API: validate once, make inputs contiguous, dispatch to a backend.

Every function here has the same name and meaning in every backend module
(``reference``, ``numba_backend``, ``cython_backend``); this module is the only
place that checks arguments, so the backends (and the C code under them) may
assume valid, C-contiguous, same-dtype input. See DESIGN.md, "Kernel API".

=============================================================  ====================
call                                                           returns
=============================================================  ====================
``conv2d_forward(x, w, b, stride=1, padding=0)``               ``out, cache``
``conv2d_backward(dout, cache, need_dx=True)``                ``dx, dw, db``
``maxpool2d_forward(x, size=2, stride=None, padding=0)``       ``out, cache``
``maxpool2d_backward(dout, cache)``                            ``dx``
``batchnorm_forward(x, gamma, beta, running_mean, running_var,
training=True, momentum=0.9, eps=1e-5)``                       ``out, cache``
``batchnorm_backward(dout, cache)``                            ``dx, dgamma, dbeta``
``im2col(x, kh, kw, stride=1, padding=0)``                     ``cols``
``col2im(cols, x_shape, kh, kw, stride=1, padding=0)``         ``x``
=============================================================  ====================

``stride``/``padding``/``size`` take an int or an ``(h, w)`` pair; ``padding`` also
takes ``((top, bottom), (left, right))`` for the asymmetric padding of Keras'
``"same"`` with stride > 1. A backward call runs on the backend that produced its
``cache``, whatever the current backend is.
"""

from __future__ import annotations

import functools

import numpy as np

from fastcnn.kernels import _dispatch as _backend
from fastcnn.kernels.geometry import WindowGeometry
from fastcnn.common.validation import (
    MAX_WINDOW_INT,
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
    "batchnorm_forward",
    "batchnorm_backward",
    "im2col",
    "col2im",
    "parse_padding",
]


class KernelCache:
    """What a forward call hands to its backward: opaque backend data plus enough
    bookkeeping to check ``dout`` and to route the call to the same backend."""

    __slots__ = ("op", "backend", "out_shape", "dtype", "data", "extra")

    def __init__(self, op, backend, out_shape, dtype, data, extra=None):
        self.op = op
        self.backend = backend
        self.out_shape = tuple(out_shape)
        self.dtype = dtype
        self.data = data
        self.extra = extra

    def __repr__(self):
        return (f"KernelCache(op={self.op!r}, backend={self.backend!r}, "
                f"out_shape={self.out_shape}, dtype={self.dtype})")


def _current():
    name = _backend.get_backend()
    return name, _backend.backend_module(name)


def parse_padding(where: str, padding) -> tuple[int, int, int, int]:
    """``p``, ``(ph, pw)`` or ``((top, bottom), (left, right))`` -> (top, bottom, left, right)."""
    if (isinstance(padding, (tuple, list)) and len(padding) == 2
            and all(isinstance(p, (tuple, list)) for p in padding)):
        flat = [v for p in padding for v in p]
        if len(flat) != 4 or not all(_is_int(v) and 0 <= v <= MAX_WINDOW_INT for v in flat):
            raise ValueError(
                f"{where}: padding must be an int, an (h, w) pair or ((top, bottom), "
                f"(left, right)) of non-negative ints up to 2**31 - 1; got {padding!r}."
            )
        return tuple(int(v) for v in flat)
    ph, pw = to_pair(where, "padding", padding, minimum=0)
    return ph, ph, pw, pw


def _window_geometry(where, x_shape, kh, kw, stride, padding, what="kernel"):
    """The checked :class:`WindowGeometry` of a call. A layer calls with the same
    arguments every step, so valid geometries are remembered (the simple version is
    :func:`_new_window_geometry` every call); unhashable arguments (lists) skip the
    memory."""
    try:
        return _remembered_geometry(where, tuple(x_shape), kh, kw, stride, padding, what)
    except TypeError as err:
        if "unhashable" not in str(err):
            raise
        return _new_window_geometry(where, x_shape, kh, kw, stride, padding, what)


def _new_window_geometry(where, x_shape, kh, kw, stride, padding, what="kernel"):
    sh, sw = to_pair(where, "stride", stride)
    top, bottom, left, right = parse_padding(where, padding)
    n, c, h, w = x_shape
    padded_h, padded_w = h + top + bottom, w + left + right
    if kh > padded_h or kw > padded_w:
        raise ValueError(
            f"{where}: {what} {kh}x{kw} does not fit the padded input {padded_h}x{padded_w} "
            f"(input {h}x{w}, padding top/bottom/left/right = {top}/{bottom}/{left}/{right}); "
            f"output would be empty."
        )
    return WindowGeometry(n, c, h, w, kh, kw, sh, sw, top, bottom, left, right)


_remembered_geometry = functools.lru_cache(maxsize=512)(_new_window_geometry)


def _check_dout(where: str, dout, cache) -> np.ndarray:
    if not isinstance(cache, KernelCache) or cache.op != where.replace("_backward", ""):
        raise TypeError(
            f"{where}: cache must be the cache returned by "
            f"{where.replace('_backward', '_forward')}; got {type(cache).__name__}"
            + (f" from {cache.op}" if isinstance(cache, KernelCache) else "") + "."
        )
    dout = as_float_array(where, "dout", dout)
    if dout.dtype != cache.dtype:
        raise TypeError(
            f"{where}: dout has dtype {dout.dtype} but the forward pass ran in "
            f"{cache.dtype}; mixed dtypes are not cast silently."
        )
    check_shape(where, "dout", dout, cache.out_shape)
    return dout


# --------------------------------------------------------------------------- conv


def conv2d_forward(x, w, b, stride=1, padding=0):
    """2-D convolution (cross-correlation, as in every deep-learning library).

    .. math::
        out[n, f, i, j] = b[f] + \\sum_{c, p, q} x_{pad}[n, c, i S_H + p, j S_W + q] \\, w[f, c, p, q]

    Parameters
    ----------
    x : ndarray (N, C, H, W), float32 or float64
    w : ndarray (F, C, KH, KW), same dtype
    b : ndarray (F,), same dtype, or None for no bias
    stride : int or (SH, SW)
    padding : int, (PH, PW) or ((top, bottom), (left, right)); zeros

    Returns
    -------
    out : ndarray (N, F, OH, OW) with ``OH = (H + PT + PB - KH) // SH + 1``
    cache : KernelCache for :func:`conv2d_backward`
    """
    where = "conv2d_forward"
    x = as_float_array(where, "x", x, ndim=4)
    w = as_float_array(where, "w", w, ndim=4)
    if b is not None:
        b = as_float_array(where, "b", b, ndim=1)
    dtype = check_same_dtype(where, x=x, w=w, b=b)
    f, wc, kh, kw = w.shape
    if x.shape[1] != wc:
        raise ValueError(
            f"{where}: x must have C == {wc} channels to match w (F, C, KH, KW) = "
            f"{w.shape}; got x.shape={x.shape}."
        )
    if kh == 0 or kw == 0 or f == 0 or wc == 0:
        raise ValueError(f"{where}: w must have no zero-sized dimension; got w.shape={w.shape}.")
    if x.shape[2] == 0 or x.shape[3] == 0:
        raise ValueError(f"{where}: x must have H, W >= 1; got x.shape={x.shape}.")
    has_bias = b is not None
    if has_bias:
        check_shape(where, "b", b, (f,))
    else:
        b = np.zeros(f, dtype=dtype)
    geom = _window_geometry(where, x.shape, kh, kw, stride, padding)
    name, module = _current()
    out, data = module.conv2d_forward(x, w, b, geom)
    return out, KernelCache("conv2d", name, out.shape, dtype, data, extra=has_bias)


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


def im2col(x, kh, kw, stride=1, padding=0):
    """Unfold every ``(C, KH, KW)`` window of ``x`` into a column.

    ``cols[(c*KH + i)*KW + j, (n*OH + oh)*OW + ow] = x_pad[n, c, oh*SH + i, ow*SW + j]``
    (zero where the window covers padding). Shape ``(C*KH*KW, N*OH*OW)``.
    """
    where = "im2col"
    x = as_float_array(where, "x", x, ndim=4)
    kh, kw = to_pair(where, "kernel size (kh, kw)", (kh, kw))
    geom = _window_geometry(where, x.shape, kh, kw, stride, padding)
    return _current()[1].im2col(x, geom)


def col2im(cols, x_shape, kh, kw, stride=1, padding=0):
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
    geom = _window_geometry(where, x_shape, kh, kw, stride, padding)
    check_shape(where, "cols", cols, geom.cols_shape)
    return _current()[1].col2im(cols, geom)


# ----------------------------------------------------------------------- maxpool


def maxpool2d_forward(x, size=2, stride=None, padding=0):
    """Max pooling over ``size`` windows moved by ``stride`` (default: ``size``).

    ``out[n, c, i, j] = max_{p, q} x_pad[n, c, i*SH + p, j*SW + q]`` where padding is
    ``-inf`` (it never wins). Ties go to the *first* maximum in row-major window
    order; a NaN in a window wins (NaN propagates). Windows that do not tile the
    input are dropped (floor mode). Each side's padding must be < the window size,
    so every window holds at least one real element.

    Returns ``out (N, C, OH, OW)`` and a cache for :func:`maxpool2d_backward`.
    """
    where = "maxpool2d_forward"
    x = as_float_array(where, "x", x, ndim=4)
    kh, kw = to_pair(where, "size", size)
    stride = (kh, kw) if stride is None else stride
    if x.shape[2] == 0 or x.shape[3] == 0 or x.shape[1] == 0:
        raise ValueError(f"{where}: x must have C, H, W >= 1; got x.shape={x.shape}.")
    geom = _window_geometry(where, x.shape, kh, kw, stride, padding, what="window")
    if max(geom.pad_top, geom.pad_bottom) >= kh or max(geom.pad_left, geom.pad_right) >= kw:
        raise ValueError(
            f"{where}: padding must be smaller than the window on every side (else a "
            f"window could hold only padding); got padding={padding!r} with size {kh}x{kw}."
        )
    name, module = _current()
    out, data = module.maxpool2d_forward(x, geom)
    return out, KernelCache("maxpool2d", name, out.shape, x.dtype, data)


def maxpool2d_backward(dout, cache):
    """Gradient of :func:`maxpool2d_forward`: each ``dout`` element is *added* to the
    input position that won its window (overlapping windows accumulate)."""
    dout = _check_dout("maxpool2d_backward", dout, cache)
    return _backend.backend_module(cache.backend).maxpool2d_backward(dout, cache.data)


# --------------------------------------------------------------------- batchnorm


def batchnorm_forward(x, gamma, beta, running_mean, running_var,
                      training=True, momentum=0.9, eps=1e-5):
    """Batch normalization, per feature of ``(N, D)`` or per channel of ``(N, C, H, W)``.

    Training: ``mu, var`` = mean and *biased* variance over the batch (and H, W);
    ``out = gamma * (x - mu) / sqrt(var + eps) + beta``; the running statistics are
    updated in place: ``running = momentum * running + (1 - momentum) * batch_stat``.
    Inference (``training=False``): the running statistics replace ``mu, var`` and
    are left unchanged. Statistics are accumulated in float64 by every fast backend.

    Returns ``out`` (same shape as ``x``) and a cache for :func:`batchnorm_backward`.
    """
    where = "batchnorm_forward"
    x = as_float_array(where, "x", x, ndim=(2, 4))
    c = x.shape[1]
    arrays = {}
    for name, value in (("gamma", gamma), ("beta", beta),
                        ("running_mean", running_mean), ("running_var", running_var)):
        arrays[name] = as_float_array(where, name, value, ndim=1)
        check_shape(where, name, arrays[name], (c,))
    check_same_dtype(where, x=x, **arrays)
    if not isinstance(training, (bool, np.bool_)):
        raise TypeError(f"{where}: training must be a bool; got {training!r}.")
    momentum = check_float(where, "momentum", momentum, 0.0, 1.0)
    eps = check_float(where, "eps", eps, 0.0, None, low_inclusive=False)
    n = x.shape[0]
    spatial = int(np.prod(x.shape[2:])) if x.ndim == 4 else 1
    if training and n * spatial == 0:
        raise ValueError(f"{where}: training mode needs a non-empty batch to compute "
                         f"statistics; got x.shape={x.shape}.")
    for name in ("running_mean", "running_var"):
        original = running_mean if name == "running_mean" else running_var
        if training and not original.flags.writeable:
            raise ValueError(f"{where}: {name} must be writeable in training mode "
                             f"(it is updated in place).")
    x3 = x.reshape(n, c, spatial)
    rm, rv = arrays["running_mean"], arrays["running_var"]
    name, module = _current()
    out3, data = module.batchnorm_forward(x3, arrays["gamma"], arrays["beta"], rm, rv,
                                          bool(training), momentum, eps)
    if training:
        # The backend updated contiguous copies if the caller's arrays were not
        # contiguous; write the update back so nothing is lost.
        if rm is not running_mean:
            running_mean[...] = rm
        if rv is not running_var:
            running_var[...] = rv
    return out3.reshape(x.shape), KernelCache("batchnorm", name, x.shape, x.dtype, data)


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
    spatial = int(np.prod(shape[2:])) if len(shape) == 4 else 1
    dx3, dgamma, dbeta = _backend.backend_module(cache.backend).batchnorm_backward(
        dout.reshape(n, c, spatial), cache.data)
    return dx3.reshape(shape), dgamma, dbeta
