"""Numba backend: the kernels of :mod:`fastcnn.kernels.reference`, compiled with Numba.

Same functions, same arguments, same results (see the reference for the maths);
the jitted loops live in ``_numba_conv.py``, ``_numba_pool.py`` and ``_numba_norm.py``
and this module does the orchestration: thread count, chunking, BLAS calls.

How it is fast:

- Convolution is im2col + GEMM, one image per thread, never a whole-batch column
  matrix: each Numba thread unfolds its image into its own column buffer
  ``(C*KH*KW, OH*OW)`` (reused across images and calls: fresh temporaries cost page
  faults), multiplies with one BLAS GEMM (``np.dot`` inside the jitted loop) straight
  into ``out[n]``, and adds the bias while ``out[n]`` is in cache. Column memory is
  one image per thread, whatever N (a larger image than :data:`COLUMN_TILE_BYTES` is
  unfolded in bands of output rows). BLAS is limited to one
  thread meanwhile: the parallelism is ours, over images. A 1x1, stride-1, unpadded
  convolution is already a product, ``w2 @ x[n]``, and needs no im2col.
- Backward, per image: ``dx[n] = col2im(w2.T @ dout[n])`` and ``dout[n] @ cols_n.T``,
  this image's share of ``dw``, stored in its own slot; the slots of a chunk of images
  (:data:`DW_PARTS_BUDGET_BYTES`) are added in image order, in float64.
- Pooling and batch norm are single jitted passes, one thread per plane / channel.

Every reduction runs in an order fixed by the shapes, so results are bitwise the same
for any thread count; ``fastcnn.set_num_threads`` sets Numba's thread count.

Importing this module imports Numba: it is how :mod:`fastcnn.backend` knows Numba works.
With ``NUMBA_DISABLE_JIT=1`` everything runs as plain (slow) Python.
"""

from __future__ import annotations

import contextlib

import numba
import numpy as np
import scipy.linalg.cython_blas  # noqa: F401  (loads the BLAS Numba's np.dot calls)

from fastcnn.kernels import _common
from fastcnn.kernels._common import conv_work, single_threaded_blas, threads_for
from fastcnn.kernels.geometry import WindowGeometry
from fastcnn.kernels.numba import conv as _conv
from fastcnn.kernels.numba import norm as _norm
from fastcnn.kernels.numba import pool as _pool

NAME = "numba"

# A fork-safe threading layer before the first parallel launch, and SciPy's BLAS known to
# the single-threaded-BLAS guard (see fastcnn/kernels/_common.py, rules 1 and 3).
_common.choose_numba_threading_layer(numba)
_common.refresh_blas_libraries()

__all__ = [
    "im2col", "col2im", "conv2d_forward", "conv2d_backward",
    "maxpool2d_forward", "maxpool2d_backward", "batchnorm_forward", "batchnorm_backward",
    "backend_info", "DW_PARTS_BUDGET_BYTES", "COLUMN_TILE_BYTES",
]

#: Memory for the convolution backward's per-image ``dw`` products, kept for a chunk of
#: images and then added in image order (a chunk holds at least 8 images, so that
#: 8 threads have work even when one ``dw`` is larger than this budget).
DW_PARTS_BUDGET_BYTES = 16 * 2**20

#: Largest column tile of one thread: an image whose columns ``(C*KH*KW, OH*OW)`` are
#: larger is unfolded a band of output rows at a time (at least one row).
COLUMN_TILE_BYTES = 8 * 2**20


def backend_info() -> dict:
    """Numba version, threading layer and thread limits, for ``fastcnn.show_config()``."""
    try:
        layer = numba.threading_layer()
    except ValueError:  # no parallel region has run yet in this process
        layer = f"{numba.config.THREADING_LAYER} (not started yet)"
    return {
        "numba": numba.__version__,
        "threading_layer": layer,
        "max_threads": numba.config.NUMBA_NUM_THREADS,
        "jit_disabled": bool(numba.config.DISABLE_JIT),
    }


@contextlib.contextmanager
def _threads(work: int | None = None):
    """Run Numba's parallel loops on :func:`~fastcnn.kernels._common.threads_for` threads
    (bounded by ``NUMBA_NUM_THREADS``, fixed when Numba starts), holding the launch lock
    (see ``_common.LAUNCH_LOCK``) and restoring this thread's previous Numba count."""
    wanted = threads_for(work, limit=numba.config.NUMBA_NUM_THREADS)
    with _common.LAUNCH_LOCK:
        previous = numba.get_num_threads()
        if wanted == previous:
            yield
            return
        numba.set_num_threads(wanted)
        try:
            yield
        finally:
            numba.set_num_threads(previous)


_workspaces = _common.WorkspacePool()   # scratch arrays kept between calls


def _chunk(per_image_elements: int, itemsize: int) -> int:
    """Images per chunk so that ``nb * per_image_elements`` fits the budget (>= 8)."""
    return max(8, DW_PARTS_BUDGET_BYTES // max(1, per_image_elements * itemsize))


def _window_args(g: WindowGeometry):
    return g.kh, g.kw, g.sh, g.sw, g.pad_top, g.pad_left, g.oh, g.ow


def _is_pointwise(g: WindowGeometry) -> bool:
    """1x1 kernel, stride 1, no padding: the convolution is ``w2 @ x[n]`` per image."""
    return (g.kh, g.kw, g.sh, g.sw, g.pad_top, g.pad_bottom, g.pad_left, g.pad_right) == (
        1, 1, 1, 1, 0, 0, 0, 0)


# --------------------------------------------------------------------------- im2col


def im2col(x: np.ndarray, g: WindowGeometry) -> np.ndarray:
    """``cols[(c*KH + i)*KW + j, (n*OH + oh)*OW + ow] = x_pad[n, c, oh*SH + i, ow*SW + j]``."""
    cols = np.empty(g.cols_shape, dtype=x.dtype)
    if cols.size:
        with _threads():
            _conv.im2col_kernel(x, cols.reshape(-1), *_window_args(g))
    return cols


def col2im(cols: np.ndarray, g: WindowGeometry) -> np.ndarray:
    """Adjoint of :func:`im2col`: overlapping windows sum; padding is cropped away."""
    dx = np.zeros(g.input_shape, dtype=cols.dtype)
    if cols.size:
        with _threads():
            _conv.col2im_kernel(cols.reshape(-1), dx, *_window_args(g))
    return dx


# ----------------------------------------------------------------------------- conv


def _tile_rows(g: WindowGeometry, itemsize: int) -> int:
    """Output rows per column tile: the whole image unless its columns exceed
    :data:`COLUMN_TILE_BYTES` (fixed, so the tiling never depends on the thread count)."""
    per_row = g.c * g.kh * g.kw * g.ow * itemsize
    return max(1, min(g.oh, COLUMN_TILE_BYTES // per_row))


def _per_thread(stack: contextlib.ExitStack, key: str, elements: int, dtype) -> np.ndarray:
    """A reused (T, elements) scratch array, one row per Numba thread (>= 1 column),
    borrowed from the workspace pool until ``stack`` closes."""
    t = numba.get_num_threads()
    elements = max(1, elements)
    return stack.enter_context(_workspaces.borrow(key, t * elements, dtype)).reshape(t, elements)


def conv2d_forward(x, w, b, g: WindowGeometry):
    """``out[n] = w2 @ cols_n + b`` with ``w2 = w.reshape(F, C*KH*KW)`` and ``cols_n`` the
    ``(C*KH*KW, OH*OW)`` columns of image n, one image per thread. Cache: ``(x, w, g)``."""
    f, k = w.shape[0], g.c * g.kh * g.kw
    out = np.empty((g.n, f, g.oh, g.ow), dtype=x.dtype)
    if g.n == 0:
        return out, (x, w, g)
    pointwise = _is_pointwise(g)
    rows = _tile_rows(g, x.itemsize)
    tiled = rows < g.oh and not pointwise
    with _threads(conv_work(g, f)), single_threaded_blas(), contextlib.ExitStack() as stack:
        cols = _per_thread(stack, "cols", 0 if pointwise else k * rows * g.ow, x.dtype)
        obuf = _per_thread(stack, "obuf", f * rows * g.ow if tiled else 0, x.dtype)
        _conv.conv_forward_kernel(x, w.reshape(f, k), b, out.reshape(g.n, f, -1), cols, obuf,
                                  rows, pointwise, *_window_args(g))
    return out, (x, w, g)


def conv2d_backward(dout, cache, need_dx=True):
    """``db = sum(dout)``, ``dw = sum_n dout[n] @ cols_n.T``, ``dx[n] = col2im(w2.T @ dout[n])``
    (skipped, and dx None, when ``need_dx`` is False).

    ``dw`` is deterministic: each image's product goes to its own slot of a chunk of
    ``nb`` images (``nb`` fixed by :data:`DW_PARTS_BUDGET_BYTES` and the shapes, never
    by the thread count), and the slots are added in image order, in float64."""
    x, w, g = cache
    f, k = w.shape[0], g.c * g.kh * g.kw
    dtype = dout.dtype
    # without dx the jitted kernel gets a 1-element stand-in of the same type (4-D) that
    # it never touches
    dx = np.empty(g.input_shape if need_dx else (1, 1, 1, 1), dtype=dtype)
    if g.n == 0:
        return (dx if need_dx else None), np.zeros(w.shape, dtype=dtype), np.zeros(f, dtype=dtype)
    dout3 = dout.reshape(g.n, f, -1)
    db64 = np.empty(f, dtype=np.float64)
    dw64 = np.zeros((f, k), dtype=np.float64)
    nb = min(g.n, _chunk(f * k, dtype.itemsize))
    pointwise = _is_pointwise(g)
    rows = _tile_rows(g, dtype.itemsize)
    tiled = rows < g.oh and not pointwise
    with _threads(conv_work(g, f)), single_threaded_blas(), contextlib.ExitStack() as stack:
        parts = stack.enter_context(_workspaces.borrow("dw_parts", nb * f * k, dtype))
        parts = parts.reshape(nb, f, k)
        _conv.channel_sum_kernel(dout3, db64)
        cols = _per_thread(stack, "cols", 0 if pointwise else k * rows * g.ow, dtype)
        dbuf = _per_thread(stack, "dbuf", f * rows * g.ow if tiled else 0, dtype)
        pbuf = _per_thread(stack, "pbuf", f * k if tiled else 0, dtype)
        for n0 in range(0, g.n, nb):
            m = min(nb, g.n - n0)
            _conv.conv_backward_kernel(x, w.reshape(f, k), dout3, dx, parts, cols, dbuf, pbuf,
                                       n0, m, rows, pointwise, need_dx, *_window_args(g))
            _conv.accumulate_kernel(dw64, parts[:m])
    return (dx if need_dx else None), dw64.astype(dtype).reshape(w.shape), db64.astype(dtype)


# -------------------------------------------------------------------------- maxpool


def maxpool2d_forward(x, g: WindowGeometry):
    """Window max and the winner's flat index ``h*W + w`` (int64) in its input plane;
    ties go to the first max in row-major window order; NaN wins; padding never does."""
    out = np.empty((g.n, g.c, g.oh, g.ow), dtype=x.dtype)
    argmax = np.empty(out.shape, dtype=np.int64)
    if out.size:
        with _threads(x.size):
            if (g.kh, g.kw, g.sh, g.sw) == (2, 2, 2, 2) and g.is_symmetric and \
                    g.pad_top == 0 and g.pad_left == 0:
                _pool.maxpool_forward_2x2_kernel(x, out, argmax)
            else:
                _pool.maxpool_forward_kernel(x, out, argmax, g.kh, g.kw, g.sh, g.sw,
                                             g.pad_top, g.pad_left)
    return out, (argmax, g)


def maxpool2d_backward(dout, cache):
    """``dx[n, c].flat[argmax[n, c, i, j]] += dout[n, c, i, j]`` (overlaps accumulate)."""
    argmax, g = cache
    dx = np.empty(g.input_shape, dtype=dout.dtype)
    planes = g.n * g.c
    if dx.size:
        with _threads(dx.size):
            _pool.maxpool_backward_kernel(dout.reshape(planes, -1), argmax.reshape(planes, -1),
                                          dx.reshape(planes, -1))
    return dx


# ------------------------------------------------------------------------ batchnorm


def batchnorm_forward(x, gamma, beta, running_mean, running_var, training, momentum, eps):
    """``x`` is (N, C, L); per-channel statistics over N*L values in float64; running
    statistics updated in place in training mode (same NumPy expression as the
    reference). Cache: ``(x, mean, invstd, gamma, training)``; xhat is recomputed in
    the backward pass instead of being stored (it would be a float64 copy of x)."""
    n, c, l = x.shape
    dense = l == 1   # (N, D): row-by-row kernels (see _numba_norm.py)
    out = np.empty_like(x)
    with _threads(x.size):
        if training:
            mean = np.empty(c, dtype=np.float64)
            var = np.empty(c, dtype=np.float64)
            if dense:
                _norm.batch_stats_dense_kernel(x.reshape(n, c), mean, var)
            else:
                _norm.batch_stats_kernel(x, mean, var)
            running_mean[...] = momentum * running_mean + (1 - momentum) * mean
            running_var[...] = momentum * running_var + (1 - momentum) * var
        else:
            mean = running_mean.astype(np.float64)
            var = running_var.astype(np.float64)
        invstd = 1.0 / np.sqrt(var + eps)
        if x.size and dense:
            _norm.normalize_dense_kernel(x.reshape(n, c), mean, invstd, gamma, beta,
                                         out.reshape(n, c))
        elif x.size:
            _norm.normalize_kernel(x, mean, invstd, gamma, beta, out)
    return out, (x, mean, invstd, gamma, training)


def batchnorm_backward(dout, cache):
    """``dbeta = sum(dout)``, ``dgamma = sum(dout * xhat)`` and the fused ``dx`` (training)
    or ``gamma * invstd * dout`` (inference); see the reference."""
    x, mean, invstd, gamma, training = cache
    dx = np.empty_like(dout)
    dgamma = np.zeros(x.shape[1], dtype=np.float64)
    dbeta = np.zeros(x.shape[1], dtype=np.float64)
    n, c, l = x.shape
    if x.size:
        with _threads(x.size):
            if l == 1:   # (N, D)
                _norm.batchnorm_backward_dense_kernel(
                    dout.reshape(n, c), x.reshape(n, c), mean, invstd, gamma, bool(training),
                    dx.reshape(n, c), dgamma, dbeta)
            else:
                _norm.batchnorm_backward_kernel(dout, x, mean, invstd, gamma, bool(training),
                                                dx, dgamma, dbeta)
    return dx, dgamma.astype(dout.dtype), dbeta.astype(dout.dtype)
