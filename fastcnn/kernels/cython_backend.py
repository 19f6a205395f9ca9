"""The "cython" backend: C99 kernels (``csrc/``) called through Cython, GEMMs through BLAS.

Same functions, signatures and results as :mod:`fastcnn.kernels.reference` (the contract;
tested against it). Inputs arrive validated, C-contiguous and of one dtype (float32 or
float64) from :mod:`fastcnn.kernels`; outputs have the input dtype. This module allocates
the outputs, handles empty batches (no C call ever sees an empty array) and builds the
caches; ``fastcnn/kernels/_cython/_kernels.pyx`` releases the GIL and calls C.

Convolution design (serial chunks, parallel inside a chunk: the "b" design)
---------------------------------------------------------------------------
The classic im2col + GEMM, but never a whole-batch column matrix. The batch is cut into
chunks of ``nb`` images, ``nb`` the largest count whose workspace fits ``WORKSPACE_BYTES``
(16 MiB; at least one image, so the workspace is bounded by
``max(WORKSPACE_BYTES, one image's share)`` whatever N is). Per chunk, in chunk order:

- forward:  ``cols = im2col(x[chunk])`` (C, OpenMP over planes), ``buf = W2 @ cols``
  (BLAS), ``out[chunk] = buf + b`` copied to NCHW with the bias add fused (C, OpenMP).
- backward: ``cols = im2col(x[chunk])``, ``buf = dout[chunk]`` gathered to (F, nb*P) while
  ``db`` is summed in double (C), ``dw (+)= buf @ cols.T`` (BLAS, accumulating with
  beta = 1 from the second chunk on), ``cols = W2.T @ buf`` (BLAS), ``dx[chunk] =
  col2im(cols)`` (C, OpenMP).

Threads: ``fastcnn.backend.get_num_threads()`` OpenMP threads, one level at a time. Each
GEMM is cut into fixed column blocks of its output, one single-threaded BLAS call per block,
shared out by OpenMP (``_gemm_par`` in _kernels.pyx); BLAS's own threads are limited to 1
with threadpoolctl during the call (no oversubscription). We do not use BLAS's threads
because OpenBLAS's threaded GEMM gives different bits for 1 and 2 threads on some shapes
(observed for dW), and every kernel here is bitwise identical for any thread count: the C
loops give each output element to exactly one iteration with a fixed order, GEMM blocks
depend on the shapes only, and dw accumulates chunk by chunk in chunk order, with chunks
that depend on the geometry only (tested in tests/kernels/test_cython_specific.py).

A 1x1 kernel with stride 1 and no padding needs no im2col: ``x[n]`` seen as (C, H*W) IS the
column matrix, so ``out[n] = W2 @ x[n]`` is one GEMM per image straight into NCHW.

Batch norm: statistics in double by two passes (mean, then centred squares), the
normalisation in double rounded once; the cache keeps ``x`` itself (not x-hat) and the
backward recomputes x-hat, so do not modify ``x`` in place between forward and backward.
"""

from __future__ import annotations

import contextlib

import numpy as np

from .. import backend as _backend
from .._shapes import WindowGeometry
from ._cython import _kernels  # ImportError here = extension not built -> backend missing

NAME = "cython"

__all__ = [
    "im2col", "col2im", "conv2d_forward", "conv2d_backward",
    "maxpool2d_forward", "maxpool2d_backward", "batchnorm_forward", "batchnorm_backward",
    "backend_info", "WORKSPACE_BYTES", "conv_chunk_images",
]

#: Budget of the conv workspace (column matrix + GEMM buffer) per call, in bytes.
WORKSPACE_BYTES = 16 * 2**20

_INT32_MAX = 2**31 - 1   # scipy's BLAS takes 32-bit int dimensions
_controller = None


def backend_info() -> dict:
    """Facts shown by ``fastcnn.show_config()``."""
    return {
        "openmp": _kernels.openmp_enabled(),
        "max_threads": _kernels.max_threads(),
        "conv_workspace_bytes": WORKSPACE_BYTES,
    }


def _threads() -> int:
    return max(1, int(_backend.get_num_threads()))


def _blas_threads(n: int):
    """Context manager: BLAS uses ``n`` threads inside (threadpoolctl), restored after.
    The conv calls use ``n = 1``: the parallelism is ours (see the module docstring)."""
    global _controller
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover - threadpoolctl is a dependency
        return contextlib.nullcontext()
    if _controller is None:
        _controller = ThreadpoolController()
    return _controller.limit(limits=n, user_api="blas")


def _is_1x1(g: WindowGeometry) -> bool:
    return (g.kh == 1 and g.kw == 1 and g.sh == 1 and g.sw == 1 and g.pad_top == 0
            and g.pad_bottom == 0 and g.pad_left == 0 and g.pad_right == 0)


def conv_chunk_images(g: WindowGeometry, f: int, itemsize: int) -> int:
    """Images per conv chunk: the most whose workspace ``(C*KH*KW + F) * OH*OW`` elements
    each fits :data:`WORKSPACE_BYTES`; at least 1, at most N (or 1 when N == 0)."""
    per_image = (g.c * g.kh * g.kw + f) * g.oh * g.ow * itemsize
    return int(max(1, min(max(g.n, 1), WORKSPACE_BYTES // per_image)))


def _check_blas_dims(where: str, **dims) -> None:
    for name, value in dims.items():
        if value > _INT32_MAX:
            raise ValueError(f"{where}: {name} = {value} exceeds the 32-bit BLAS limit "
                             f"{_INT32_MAX}; use the 'numpy' backend for this layer.")


def im2col(x, g: WindowGeometry):
    """``cols[(c*KH + i)*KW + j, (n*OH + oh)*OW + ow] = x_pad[n, c, oh*SH + i, ow*SW + j]``."""
    cols = np.empty(g.cols_shape, dtype=x.dtype)
    if g.n > 0:
        _kernels.im2col(x, cols, g, _threads())
    return cols


def col2im(cols, g: WindowGeometry):
    """Adjoint of :func:`im2col` (overlapping windows sum; padding is dropped)."""
    x = np.empty(g.input_shape, dtype=cols.dtype)
    if g.n > 0:
        _kernels.col2im(cols, x, g, _threads())
    return x


def conv2d_forward(x, w, b, g: WindowGeometry):
    """``out = W2 @ im2col(x) + b`` as (N, F, OH, OW), chunk by chunk. Cache ``(x, w, g)``."""
    f = w.shape[0]
    out = np.empty((g.n, f, g.oh, g.ow), dtype=x.dtype)
    if g.n == 0:
        return out, (x, w, g)
    nt = _threads()
    if _is_1x1(g):
        _check_blas_dims("conv2d_forward", pixels=g.h * g.w)
        with _blas_threads(1):
            _kernels.conv2d_forward_1x1(x, w, b, out, nt)
        return out, (x, w, g)
    nb = conv_chunk_images(g, f, x.dtype.itemsize)
    p = g.oh * g.ow
    _check_blas_dims("conv2d_forward", columns=nb * p, rows=g.c * g.kh * g.kw)
    cols = np.empty(g.c * g.kh * g.kw * nb * p, dtype=x.dtype)
    buf = np.empty(f * nb * p, dtype=x.dtype)
    with _blas_threads(1):
        _kernels.conv2d_forward(x, w, b, out, cols, buf, g, nb, nt)
    return out, (x, w, g)


def conv2d_backward(dout, cache):
    """``db = sum(dout)``, ``dw = dout2 @ cols.T``, ``dx = col2im(W2.T @ dout2)``."""
    x, w, g = cache
    f = w.shape[0]
    dx = np.empty_like(x)
    dw = np.empty_like(w)
    db = np.zeros(f, dtype=np.float64)     # summed in double, returned in the input dtype
    if g.n == 0:
        dw.fill(0)
        return dx, dw, db.astype(dout.dtype)
    nt = _threads()
    if _is_1x1(g):
        with _blas_threads(1):
            _kernels.conv2d_backward_1x1(dout, x, w, dx, dw, db, nt)
        return dx, dw, db.astype(dout.dtype)
    nb = conv_chunk_images(g, f, x.dtype.itemsize)
    p = g.oh * g.ow
    _check_blas_dims("conv2d_backward", columns=nb * p, rows=g.c * g.kh * g.kw)
    cols = np.empty(g.c * g.kh * g.kw * nb * p, dtype=x.dtype)
    buf = np.empty(f * nb * p, dtype=x.dtype)
    with _blas_threads(1):
        _kernels.conv2d_backward(dout, x, w, dx, dw, db, cols, buf, g, nb, nt)
    return dx, dw, db.astype(dout.dtype)


def maxpool2d_forward(x, g: WindowGeometry):
    """Window max and the winner's flat index ``h*W + w`` (int64). Cache ``(argmax, g)``."""
    out = np.empty((g.n, g.c, g.oh, g.ow), dtype=x.dtype)
    argmax = np.empty((g.n, g.c, g.oh, g.ow), dtype=np.int64)
    if g.n > 0:
        _kernels.maxpool2d_forward(x, out, argmax, g, _threads())
    return out, (argmax, g)


def maxpool2d_backward(dout, cache):
    """``dx[n, c].flat[argmax] += dout`` (overlapping windows add up)."""
    argmax, g = cache
    dx = np.empty(g.input_shape, dtype=dout.dtype)
    if g.n > 0:
        _kernels.maxpool2d_backward(dout, argmax, dx, g, _threads())
    return dx


def batchnorm_forward(x, gamma, beta, running_mean, running_var, training, momentum, eps):
    """``x`` is (N, C, L); statistics over axes 0 and 2 in double; running statistics
    updated in place in training mode. Cache ``(x, gamma, mean, invstd, training)``."""
    n, c, l = x.shape
    if training:
        mean = np.zeros(c, dtype=np.float64)
        var = np.zeros(c, dtype=np.float64)
        if x.size:
            _kernels.batchnorm_stats(x, mean, var, _threads())
        # the reference's expression, so the update rounds exactly as it does
        running_mean[...] = momentum * running_mean + (1 - momentum) * mean
        running_var[...] = momentum * running_var + (1 - momentum) * var
    else:
        mean = running_mean.astype(np.float64)
        var = running_var.astype(np.float64)
    invstd = 1.0 / np.sqrt(var + eps)
    out = np.empty_like(x)
    if x.size:
        _kernels.batchnorm_apply(x, gamma, beta, mean, invstd, out, _threads())
    return out, (x, gamma, mean, invstd, bool(training))


def batchnorm_backward(dout, cache):
    """``dbeta = sum(dout)``, ``dgamma = sum(dout * xhat)``; training:
    ``dx = gamma*invstd/M * (M*dout - dbeta - xhat*dgamma)``, inference:
    ``dx = gamma*invstd * dout``."""
    x, gamma, mean, invstd, training = cache
    c = x.shape[1]
    dx = np.empty_like(dout)
    dgamma = np.zeros(c, dtype=np.float64)
    dbeta = np.zeros(c, dtype=np.float64)
    if dout.size:
        _kernels.batchnorm_backward(dout, x, gamma, mean, invstd, dx, dgamma, dbeta,
                                    training, _threads())
    return dx, dgamma.astype(dout.dtype), dbeta.astype(dout.dtype)
