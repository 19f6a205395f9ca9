"""Numba backend: the kernels of :mod:`fastcnn.kernels.reference`, compiled with Numba.

Same functions, same arguments, same results (see the reference for the maths);
the jitted loops live in ``numba/conv.py``, ``numba/depthwise.py``, ``numba/pool.py`` and
``numba/norm.py``, and this module does the orchestration: thread count, chunking, BLAS
calls.

How it is fast:

- Convolution is im2col + GEMM over blocks of ``nb`` consecutive images, never a
  whole-batch column matrix. ``nb`` (:func:`conv_chunk_images`, the compiled backend's
  rule) groups enough images of a small feature map for a GEMM of >= 128 columns: on
  8x8 maps one GEMM of 2 images instead of 2 GEMMs dominated by BLAS call overhead.
  Each Numba thread unfolds its block into its own column buffer ``(C*KH*KW,
  nb*OH*OW)`` (reused across blocks and calls: fresh temporaries cost page faults),
  multiplies with one BLAS GEMM (``np.dot`` inside the jitted loop), and adds the bias
  while the result is in cache. Column memory is one block per thread, whatever N.
  BLAS is limited to one thread meanwhile: the parallelism is ours, over blocks.
- Large feature maps (``nb == 1``) run one image per thread, the GEMM writing straight
  into ``out[n]`` (an image larger than :data:`COLUMN_TILE_BYTES` is unfolded in bands
  of output rows). A 1x1, stride-1, unpadded convolution is already a product,
  ``w2 @ x[n]``, and needs no im2col.
- Backward, per block: ``dx[blk] = col2im(w2.T @ dout[blk])`` and ``dout[blk] @
  cols_blk.T``, the block's share of ``dw``. The blocks are cut into fixed runs of
  consecutive blocks (``_common.conv_dw_runs``), one thread per run summing its blocks
  in order in float64; the run partials are then added in run order. With ``nb == 1``
  each image's share goes to its own slot and the slots of a chunk of images
  (:data:`DW_PARTS_BUDGET_BYTES`) are added in image order, in float64.
- Pooling and batch norm are single jitted passes, one thread per plane / channel.

Every reduction runs in an order fixed by the shapes, so results are bitwise the same
for any thread count; ``fastcnn.set_num_threads`` sets Numba's thread count.

Importing this module imports Numba: it is how :mod:`fastcnn.backend` knows Numba works.
With ``NUMBA_DISABLE_JIT=1`` everything runs as plain (slow) Python.
"""

from __future__ import annotations

import contextlib
import threading

import numba
import numpy as np
import scipy.linalg.cython_blas  # noqa: F401  (loads the BLAS Numba's np.dot calls)

from fastcnn.kernels import _common
from fastcnn.kernels._common import (conv_chunk_images, conv_work, single_threaded_blas,
                                     threads_for)
from fastcnn.kernels.geometry import WindowGeometry, is_depthwise, is_pointwise, is_pool2x2
from fastcnn.kernels.numba import conv as _conv
from fastcnn.kernels.numba import depthwise as _depthwise
from fastcnn.kernels.numba import norm as _norm
from fastcnn.kernels.numba import pool as _pool

# A fork-safe threading layer before the first parallel launch, and SciPy's BLAS known to
# the single-threaded-BLAS guard (see fastcnn/kernels/_common.py, rules 1 and 3).
_common.choose_numba_threading_layer(numba)
_common.refresh_blas_libraries()

NAME = "numba"

__all__ = [
    "im2col", "col2im", "conv2d_forward", "conv2d_backward",
    "maxpool2d_forward", "maxpool2d_backward", "maxpool_argmax",
    "avgpool2d_forward", "avgpool2d_backward", "batchnorm_forward", "batchnorm_backward",
    "backend_info", "conv_chunk_images", "DW_PARTS_BUDGET_BYTES", "COLUMN_TILE_BYTES",
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


_workspace = threading.local()


def _buffer(key: str, size: int, dtype) -> np.ndarray:
    """A flat scratch array of ``size`` elements, reused across calls (per Python thread)."""
    store = getattr(_workspace, "store", None)
    if store is None:
        store = _workspace.store = {}
    buf = store.get((key, np.dtype(dtype)))
    if buf is None or buf.size < size:
        buf = store[(key, np.dtype(dtype))] = np.empty(size, dtype=dtype)
    return buf[:size]


def _chunk(per_image_elements: int, itemsize: int) -> int:
    """Images per chunk so that ``nb * per_image_elements`` fits the budget (>= 8)."""
    return max(8, DW_PARTS_BUDGET_BYTES // max(1, per_image_elements * itemsize))


def _window_args(g: WindowGeometry):
    return g.kh, g.kw, g.sh, g.sw, g.pad_top, g.pad_left, g.oh, g.ow, g.dh, g.dw


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


def _per_thread(key: str, elements: int, dtype) -> np.ndarray:
    """A reused (T, elements) scratch array, one row per Numba thread (>= 1 column)."""
    t = numba.get_num_threads()
    elements = max(1, elements)
    return _buffer(key, t * elements, dtype).reshape(t, elements)


def conv2d_forward(x, w, b, g: WindowGeometry, groups: int = 1):
    """``out[n] = w2 @ cols_n + b`` (one product per group) with ``w2 = w.reshape(F,
    C/G*KH*KW)`` and ``cols_n`` the ``(C*KH*KW, OH*OW)`` columns of image n, computed for
    a block of ``nb`` images per GEMM (:func:`conv_chunk_images`), one block per thread;
    depthwise (``groups == C``) by direct loops. Cache: ``(x, w, g, groups)``."""
    f, k, kg = w.shape[0], g.c * g.kh * g.kw, w[0].size
    out = np.empty((g.n, f, g.oh, g.ow), dtype=x.dtype)
    if g.n == 0:
        return out, (x, w, g, groups)
    if is_depthwise(g, groups):
        with _threads(conv_work(g, f, groups)):
            _depthwise.forward_kernel(x, w, b, out, *_window_args(g))
        return out, (x, w, g, groups)
    nb = conv_chunk_images(g, f, x.itemsize)
    if nb > 1:                      # small feature maps: a GEMM per block of nb images
        with _threads(conv_work(g, f, groups)), single_threaded_blas():
            work = _per_thread("cols", (k + f) * nb * g.oh * g.ow, x.dtype)
            _conv.conv_forward_blocks_kernel(x, w.reshape(f, kg), b, out.reshape(g.n, f, -1),
                                             work, nb, groups, *_window_args(g))
        return out, (x, w, g, groups)
    pointwise = is_pointwise(g)
    rows = _tile_rows(g, x.itemsize)
    tiled = rows < g.oh and not pointwise
    with _threads(conv_work(g, f, groups)), single_threaded_blas():
        cols = _per_thread("cols", 0 if pointwise else k * rows * g.ow, x.dtype)
        obuf = _per_thread("obuf", f * rows * g.ow if tiled else 0, x.dtype)
        _conv.conv_forward_kernel(x, w.reshape(f, kg), b, out.reshape(g.n, f, -1), cols, obuf,
                                  rows, pointwise, groups, *_window_args(g))
    return out, (x, w, g, groups)


def conv2d_backward(dout, cache, need_dx=True):
    """``db = sum(dout)``, ``dw = sum_n dout[n] @ cols_n.T``, ``dx[n] = col2im(w2.T @ dout[n])``
    (per group; skipped, and dx None, when ``need_dx`` is False).

    ``dw`` is deterministic: with blocks of several images (small feature maps) it is
    summed over fixed runs of blocks (:func:`_backward_blocks`); with one image per
    block each image's product goes to its own slot of a chunk of images (fixed by
    :data:`DW_PARTS_BUDGET_BYTES` and the shapes, never by the thread count), and the
    slots are added in image order, in float64."""
    x, w, g, groups = cache
    f, k, kg = w.shape[0], g.c * g.kh * g.kw, w[0].size
    dtype = dout.dtype
    # without dx the jitted kernel gets a 1-element stand-in of the same type (4-D) that
    # it never touches
    dx = np.empty(g.input_shape if need_dx else (1, 1, 1, 1), dtype=dtype)
    if g.n == 0:
        return (dx if need_dx else None), np.zeros(w.shape, dtype=dtype), np.zeros(f, dtype=dtype)
    dout3 = dout.reshape(g.n, f, -1)
    db64 = np.empty(f, dtype=np.float64)
    if is_depthwise(g, groups):
        dw64 = np.empty(w.shape, dtype=np.float64)
        with _threads(conv_work(g, f, groups)):
            _conv.channel_sum_kernel(dout3, db64)
            _depthwise.backward_kernel(dout, x, w, dx, dw64, need_dx, *_window_args(g))
        return (dx if need_dx else None), dw64.astype(dtype), db64.astype(dtype)
    nb = conv_chunk_images(g, f, dtype.itemsize)
    if nb > 1:
        dw64 = _backward_blocks(x, w, dout3, dx, db64, g, nb, groups, need_dx)
        return (dx if need_dx else None), dw64.astype(dtype).reshape(w.shape), db64.astype(dtype)
    dw64 = np.zeros((f, kg), dtype=np.float64)
    nb = min(g.n, _chunk(f * kg, dtype.itemsize))
    parts = _buffer("dw_parts", nb * f * kg, dtype).reshape(nb, f, kg)
    pointwise = is_pointwise(g)
    rows = _tile_rows(g, dtype.itemsize)
    tiled = rows < g.oh and not pointwise
    with _threads(conv_work(g, f, groups)), single_threaded_blas():
        _conv.channel_sum_kernel(dout3, db64)
        cols = _per_thread("cols", 0 if pointwise else k * rows * g.ow, dtype)
        dbuf = _per_thread("dbuf", f * rows * g.ow if tiled else 0, dtype)
        pbuf = _per_thread("pbuf", f * kg if tiled else 0, dtype)
        for n0 in range(0, g.n, nb):
            m = min(nb, g.n - n0)
            _conv.conv_backward_kernel(x, w.reshape(f, kg), dout3, dx, parts, cols, dbuf, pbuf,
                                       n0, m, rows, pointwise, groups, need_dx,
                                       *_window_args(g))
            _conv.accumulate_kernel(dw64, parts[:m])
    return (dx if need_dx else None), dw64.astype(dtype).reshape(w.shape), db64.astype(dtype)


def _backward_blocks(x, w, dout3, dx, db64, g: WindowGeometry, nb: int, groups: int,
                     need_dx: bool) -> np.ndarray:
    """The backward of :func:`conv2d_backward` in blocks of ``nb`` images: fills ``db64``
    and ``dx`` (if ``need_dx``) and returns ``dw`` (float64, (F, C/G*KH*KW)) as the sum,
    in run order, of the partials of the fixed runs of ``_common.conv_dw_runs``."""
    f, k, kg = w.shape[0], g.c * g.kh * g.kw, w[0].size
    run_bounds = np.array(_common.conv_dw_runs(-(-g.n // nb)), dtype=np.int64)
    dw_runs = np.empty((len(run_bounds), f, kg), dtype=np.float64)
    dw64 = np.zeros((f, kg), dtype=np.float64)
    with _threads(conv_work(g, f, groups)), single_threaded_blas():
        _conv.channel_sum_kernel(dout3, db64)
        work = _per_thread("cols", (k + f) * nb * g.oh * g.ow + f * kg, dout3.dtype)
        _conv.conv_backward_blocks_kernel(x, w.reshape(f, kg), dout3, dx, dw_runs, run_bounds,
                                          work, nb, groups, need_dx, *_window_args(g))
        _conv.accumulate_kernel(dw64, dw_runs)
    return dw64


# -------------------------------------------------------------------------- maxpool


def maxpool2d_forward(x, g: WindowGeometry):
    """Window max and the winner's flat index ``h*W + w`` (int64) in its input plane;
    ties go to the first max in row-major window order; NaN wins; padding never does."""
    out = np.empty((g.n, g.c, g.oh, g.ow), dtype=x.dtype)
    argmax = np.empty(out.shape, dtype=np.int64)
    if out.size:
        with _threads(x.size):
            if is_pool2x2(g):
                _pool.maxpool_forward_2x2_kernel(x, out, argmax)
            else:
                _pool.maxpool_forward_kernel(x, out, argmax, g.kh, g.kw, g.sh, g.sw,
                                             g.pad_top, g.pad_left, g.dh, g.dw)
    return out, (argmax, g)


def maxpool_argmax(data) -> np.ndarray:
    """The flat index ``h*W + w`` of each window's winner, from a maxpool cache's data."""
    return data[0]


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


# -------------------------------------------------------------------------- avgpool


def _tiles_2x2(win) -> bool:
    """Window ``(oh, ow)`` is rows ``[2oh, 2oh+2)`` and columns ``[2ow, 2ow+2)`` for all."""
    rows, cols = 2 * np.arange(win.oh), 2 * np.arange(win.ow)
    return (np.array_equal(win.row_start, rows) and np.array_equal(win.row_stop, rows + 2)
            and np.array_equal(win.col_start, cols) and np.array_equal(win.col_stop, cols + 2))


def avgpool2d_forward(x, win):
    """``out = (sum of x over each window's rectangle) / divisor`` (see ``PoolWindows``);
    2x2/2 tiles run a loop without the window loops. Cache: ``win``."""
    out = np.empty(win.output_shape, dtype=x.dtype)
    if out.size:
        divisor = win.divisor.astype(x.dtype)
        with _threads(x.size):
            if _tiles_2x2(win):
                _pool.avgpool_forward_2x2_kernel(x, divisor, out)
            else:
                _pool.avgpool_forward_kernel(x, divisor, out, win.row_start, win.row_stop,
                                             win.col_start, win.col_stop)
    return out, win


def avgpool2d_backward(dout, win):
    """Every pixel of a window gets ``dout / divisor`` (overlapping windows add up)."""
    dx = np.empty(win.input_shape, dtype=dout.dtype)
    if dx.size:
        divisor = win.divisor.astype(dout.dtype)
        with _threads(dx.size):
            if _tiles_2x2(win):
                _pool.avgpool_backward_2x2_kernel(dout, divisor, dx)
            else:
                _pool.avgpool_backward_kernel(dout, divisor, dx, win.row_start, win.row_stop,
                                              win.col_start, win.col_stop)
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
