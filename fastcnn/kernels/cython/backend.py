"""The "cython" backend: C99 kernels (``csrc/``) called through Cython, GEMMs through BLAS.

Same functions, signatures and results as :mod:`fastcnn.kernels.reference` (the contract;
tested against it). Inputs arrive validated, C-contiguous and of one dtype (float32 or
float64) from :mod:`fastcnn.kernels`; outputs have the input dtype. This module allocates
the outputs, handles empty batches (no C call ever sees an empty array) and builds the
caches; ``fastcnn/kernels/cython/_kernels.pyx`` releases the GIL and calls C, where the
algorithms live (``csrc/``; convolution in ``csrc/fc_conv_impl.h``).

Convolution design (OpenMP over images, thread-private workspace, single-threaded BLAS)
------------------------------------------------------------------------------------------
The classic im2col + GEMM, but never a whole-batch column matrix. The batch is cut into
blocks of ``nb`` consecutive images (:func:`conv_chunk_images`: enough images for a GEMM
of about ``GEMM_MIN_COLUMNS`` columns, within ``BLOCK_BYTES``; from the geometry only).
One OpenMP thread does a whole block in its own workspace slot with single-threaded BLAS:

- forward:  ``cols = im2col(x[blk])``, ``out[blk] = W2 @ cols + b`` (the GEMM writes
  ``out[n]`` directly when nb == 1, else a buffer copied to NCHW with the bias fused).
- backward: ``cols = im2col(x[blk])``, ``dW_g (+)= dout[blk] @ cols.T``, ``db_g +=
  sum(dout[blk])`` (double), ``cols = W2.T @ dout[blk]``, ``dx[blk] = col2im(cols)``.

The blocks are split into ``R = min(blocks, MAX_RUNS)`` fixed runs of consecutive
blocks; a run's partial ``dW_r``/``db_r`` is accumulated in block order by one thread
and the partials are summed in run order at the end. Forward and dx are per-image
independent. Nothing depends on the thread count, so results are bitwise identical for
any number of threads (tested in tests/kernels/test_cython_specific.py). Why not BLAS's own
threads: OpenBLAS's threaded GEMM gives different bits for 1 and 2 threads on some shapes,
and many small per-block GEMMs are not worth splitting; BLAS is limited to one thread with
threadpoolctl during the call (no oversubscription).

Workspace: ``n_threads`` slots of one block's ``cols`` + ``buf`` (``(C*KH*KW + F) * nb*OH*OW``
elements each) plus the ``R`` partials of dW (``R * F*C*KH*KW``): bounded by the thread
count and the layer's size, never by N. The slots are kept between calls (reused, so no
page faults on fresh memory every call; see ``WorkspacePool`` in ``_common``).

Winograd F(2x2, 3x3) (``csrc/fc_winograd_impl.h``): for a 3x3, stride-1, undilated,
ungrouped convolution the forward and dx can instead run as 16 GEMMs on 4x4-transformed
tiles (2.25x fewer multiply-adds; dW stays on im2col). :func:`conv_algorithm` says which
algorithm a layer gets: with :data:`CONV_ALGORITHM` ``"auto"`` Winograd when both C and F
are at least :data:`WINOGRAD_MIN_CHANNELS` (the GEMMs' inner dimension is C, or F for dx)
and the output at least :data:`WINOGRAD_MIN_WIDTH` wide (its transforms run along a row of
tiles: narrower rows leave the vector units idle, and measured slower than im2col);
:func:`set_conv_algorithm` forces ``"im2col"`` (the simple version) or ``"winograd"``.
Its blocks hold about :data:`WINOGRAD_MIN_TILES` 2x2 output tiles; same determinism. Data
or weights holding NaN or infinity always run im2col (one sum per array checks): Winograd
would spread one bad value over its whole tile (0 * inf = NaN).

A 1x1 kernel with stride 1 and no padding needs no im2col: ``x[n]`` seen as (C, H*W) IS the
column matrix, so ``out[n] = W2 @ x[n]`` is one GEMM per image straight into NCHW.

Batch norm: statistics in double by two passes (mean, then centred squares), the
normalisation in double rounded once, all passes of one channel back to back while it is
in cache (one read of x from memory); the cache keeps ``x`` itself (not x-hat) and the
backward recomputes x-hat, so do not modify ``x`` in place between forward and backward.
"""

from __future__ import annotations

import math

import numpy as np

from fastcnn.kernels import _common
from fastcnn.kernels._common import conv_work, single_threaded_blas, threads_for
from fastcnn.kernels.geometry import WindowGeometry, is_depthwise, is_pointwise, is_pool2x2

# Loading the extension loads libgomp, which reads its wait policy right then (see
# fastcnn/kernels/_common.py, rule 2). ImportError here = extension not built -> the
# backend is reported missing.
with _common.openmp_environment():
    from fastcnn.kernels.cython import _avgpool, _kernels
_common.register_fork_release(_kernels.openmp_release)
_common.refresh_blas_libraries()     # SciPy's BLAS (our GEMMs) is loaded by now

NAME = "cython"

__all__ = [
    "im2col", "col2im", "conv2d_forward", "conv2d_backward",
    "maxpool2d_forward", "maxpool2d_backward", "avgpool2d_forward", "avgpool2d_backward",
    "batchnorm_forward", "batchnorm_backward", "backend_info", "conv_chunk_images",
    "maxpool_argmax", "conv_algorithm", "set_conv_algorithm", "CONV_ALGORITHMS",
]

#: Upper bound of one block's workspace (``cols`` + ``buf``) per thread, in bytes.
BLOCK_BYTES = 8 * 2**20
#: Images are grouped into a block until its GEMMs have about this many columns. One
#: image per block lets the forward GEMM write out[n] and the backward read dout[n]
#: directly (no scatter / gather copies): for 14x14 outputs (196 columns) that measured
#: 10-19% faster fwd+bwd than blocks of 2 images, so only smaller planes are grouped.
GEMM_MIN_COLUMNS = 128
#: Number of dW partials (runs of blocks) in the backward; fixed, not the thread count.
MAX_RUNS = 8
#: The choices of :func:`set_conv_algorithm`.
CONV_ALGORITHMS = ("auto", "im2col", "winograd")
#: Which algorithm runs convolutions Winograd applies to (see :func:`conv_algorithm`).
CONV_ALGORITHM = "auto"
#: ``"auto"`` picks Winograd only when C and F are both at least this.
WINOGRAD_MIN_CHANNELS = 16
#: ``"auto"`` picks Winograd only when the output is at least this wide (8 tiles per row).
WINOGRAD_MIN_WIDTH = 16
#: Winograd blocks hold images until their 16 GEMMs have about this many tile columns.
WINOGRAD_MIN_TILES = 256

_INT32_MAX = 2**31 - 1   # scipy's BLAS takes 32-bit int dimensions
_workspaces = _common.WorkspacePool()   # conv workspaces kept between calls


def backend_info() -> dict:
    """Facts shown by ``fastcnn.show_config()``."""
    return {
        "openmp": _kernels.openmp_enabled(),
        "max_threads": _kernels.max_threads(),
        "openmp_wait_policy": _common.openmp_policy(),
        "conv_block_bytes": BLOCK_BYTES,
        "conv_algorithm": CONV_ALGORITHM,
    }


def set_conv_algorithm(name: str) -> str:
    """Choose the algorithm of 3x3 stride-1 convolutions for this process: ``"auto"``
    (the default), ``"im2col"`` (always the blocked im2col + GEMM) or ``"winograd"``
    (wherever it applies). Returns the previous choice, to restore it."""
    global CONV_ALGORITHM
    if name not in CONV_ALGORITHMS:
        raise ValueError(f"set_conv_algorithm: name must be one of {CONV_ALGORITHMS}, "
                         f"got {name!r}")
    previous, CONV_ALGORITHM = CONV_ALGORITHM, name
    return previous


def winograd_applies(g: WindowGeometry, groups: int = 1) -> bool:
    """Winograd F(2x2, 3x3) computes this convolution: 3x3, stride 1, dilation 1, groups 1."""
    return ((g.kh, g.kw, g.sh, g.sw, g.dh, g.dw) == (3, 3, 1, 1, 1, 1) and groups == 1)


def conv_algorithm(g: WindowGeometry, f: int, groups: int = 1, finite: bool = True) -> str:
    """``"winograd"`` or ``"im2col"``: what :func:`conv2d_forward` / :func:`conv2d_backward`
    run for this geometry under :data:`CONV_ALGORITHM` (depthwise and 1x1 paths aside).

    ``finite=False`` (the data or the weights hold NaN or infinity) always gives im2col:
    Winograd's transforms multiply every value of a 4x4 tile, some by 0, and 0 * inf is
    NaN, so one infinite input would turn outputs that never read it into NaN. im2col
    reads exactly each output's window, so NaN and infinity land where the reference
    puts them."""
    if not finite or not winograd_applies(g, groups) or CONV_ALGORITHM == "im2col":
        return "im2col"
    if CONV_ALGORITHM == "winograd":
        return "winograd"
    pays = min(g.c, f) >= WINOGRAD_MIN_CHANNELS and g.ow >= WINOGRAD_MIN_WIDTH
    return "winograd" if pays else "im2col"


def _winograd_tiles(g: WindowGeometry) -> int:
    """2x2 tiles per image of the larger of the forward's output and dx."""
    return max(((g.oh + 1) // 2) * ((g.ow + 1) // 2), ((g.h + 1) // 2) * ((g.w + 1) // 2))


def conv_chunk_images(g: WindowGeometry, f: int, itemsize: int, groups: int = 1,
                      finite: bool = True) -> int:
    """Images per conv block ``nb``: ``ceil(GEMM_MIN_COLUMNS / (OH*OW))`` (so a GEMM has
    enough columns to run well), at most what fits :data:`BLOCK_BYTES` (``(C*KH*KW + F) *
    OH*OW`` elements per image), at least 1, at most N. 1 for the 1x1 path (x[n] is its own
    column matrix). Winograd: enough images for :data:`WINOGRAD_MIN_TILES` tiles, its
    ``16 * (C + F) * tiles`` elements per image counted too. Depends on the geometry (and
    the algorithm choice) only, never on the thread count."""
    if is_pointwise(g):
        return 1
    p = g.oh * g.ow
    per_image = (g.c * g.kh * g.kw + f) * p * itemsize
    want = -(-GEMM_MIN_COLUMNS // p)
    if conv_algorithm(g, f, groups, finite) == "winograd":   # its GEMMs' columns are tiles
        tiles = _winograd_tiles(g)
        per_image = max(per_image, 16 * (g.c + f) * tiles * itemsize)
        want = -(-WINOGRAD_MIN_TILES // tiles)
    return int(max(1, min(max(g.n, 1), want, BLOCK_BYTES // per_image)))


def _all_finite(*arrays) -> bool:
    """True when no array holds NaN or infinity. One sum per array (no temporary array,
    about 1% of a convolution's time); a sum that overflows to infinity from huge finite
    values says False too, which only costs the faster algorithm, never correctness."""
    return all(math.isfinite(np.add.reduce(a, axis=None)) for a in arrays)


def _conv_plan(g: WindowGeometry, f: int, groups: int, dtype, finite: bool = True):
    """``(nb, slot, nblocks, shared)``: images per block, workspace elements per thread
    slot, number of blocks, and elements before the slots (Winograd's transformed
    filters, 16*F*C; 0 = im2col), for :func:`conv2d_forward` / :func:`conv2d_backward`.
    ``finite``: see :func:`conv_algorithm`."""
    nb = conv_chunk_images(g, f, np.dtype(dtype).itemsize, groups, finite)
    p = g.oh * g.ow
    slot = 0 if is_pointwise(g) else (g.c * g.kh * g.kw + f) * nb * p
    shared = 0
    if not is_pointwise(g) and conv_algorithm(g, f, groups, finite) == "winograd":
        slot = max(slot, 16 * (g.c + f) * nb * _winograd_tiles(g))
        shared = 16 * f * g.c
        _check_blas_dims("conv2d", tiles=nb * _winograd_tiles(g), workspace=slot)
    nblocks = -(-g.n // nb)
    _check_blas_dims("conv2d", columns=nb * p, rows=g.c * g.kh * g.kw)
    return nb, slot, nblocks, shared


def _check_blas_dims(where: str, **dims) -> None:
    for name, value in dims.items():
        if value > _INT32_MAX:
            raise ValueError(f"{where}: {name} = {value} exceeds the 32-bit BLAS limit "
                             f"{_INT32_MAX}; use the 'numpy' backend for this layer.")


def im2col(x, g: WindowGeometry):
    """``cols[(c*KH + i)*KW + j, (n*OH + oh)*OW + ow] =
    x_pad[n, c, oh*SH + i*DH, ow*SW + j*DW]``."""
    cols = np.empty(g.cols_shape, dtype=x.dtype)
    if g.n > 0:
        _kernels.im2col(x, cols, g, threads_for())
    return cols


def col2im(cols, g: WindowGeometry):
    """Adjoint of :func:`im2col` (overlapping windows sum; padding is dropped)."""
    x = np.empty(g.input_shape, dtype=cols.dtype)
    if g.n > 0:
        _kernels.col2im(cols, x, g, threads_for())
    return x


def _conv_threads(g: WindowGeometry, f: int, groups: int) -> int:
    """Threads for a convolution: its multiply-adds / 16 against ``_common.GRAIN``."""
    return threads_for(conv_work(g, f, groups))


def conv2d_forward(x, w, b, g: WindowGeometry, groups: int = 1):
    """``out = W2 @ im2col(x) + b`` as (N, F, OH, OW), block by block (one GEMM per group);
    depthwise (``groups == C``) by the direct kernel. Cache ``(x, w, g, groups)``."""
    f = w.shape[0]
    out = np.empty((g.n, f, g.oh, g.ow), dtype=x.dtype)
    if g.n == 0:
        return out, (x, w, g, groups)
    nt = _conv_threads(g, f, groups)
    if is_depthwise(g, groups):
        _kernels.depthwise_forward(x, w, b, out, g, nt)
        return out, (x, w, g, groups)
    # the sums only where Winograd would run (auto skips it for small layers)
    finite = conv_algorithm(g, f, groups) != "winograd" or _all_finite(x, w)
    nb, slot, _, shared = _conv_plan(g, f, groups, x.dtype, finite)
    with _workspaces.borrow("conv_work", shared + nt * slot, x.dtype) as work, \
            single_threaded_blas():
        _kernels.conv2d_forward(x, w, b, out, work, slot, g, nb, groups, is_pointwise(g), nt,
                                shared)
    return out, (x, w, g, groups)


def conv2d_backward(dout, cache, need_dx=True):
    """``db = sum(dout)``, ``dw = dout2 @ cols.T``, ``dx = col2im(W2.T @ dout2)`` (per group;
    depthwise by the direct kernel); with ``need_dx=False`` the ``dx`` work is skipped and
    dx is None."""
    x, w, g, groups = cache
    f = w.shape[0]
    # without dx the C code gets a 1-element stand-in it never touches (a memoryview
    # cannot be None and &dx[0, 0, 0, 0] needs an element)
    dx = np.empty_like(x) if need_dx else np.empty((1, 1, 1, 1), dtype=x.dtype)
    dw = np.empty_like(w)
    db = np.zeros(f, dtype=np.float64)     # summed in double, returned in the input dtype
    if g.n == 0:
        dw.fill(0)
        return (dx if need_dx else None), dw, db.astype(dout.dtype)
    nt = _conv_threads(g, f, groups)
    if is_depthwise(g, groups):   # dw and db summed in double, rounded once here
        dw64 = np.empty(w.shape, dtype=np.float64)
        _kernels.depthwise_backward(dout, x, w, dx, dw64, db, g, need_dx, nt)
        return (dx if need_dx else None), dw64.astype(dout.dtype), db.astype(dout.dtype)
    # Winograd computes only dx: it is the one that must see finite dout and weights
    finite = (not need_dx or conv_algorithm(g, f, groups) != "winograd"
              or _all_finite(dout, w))
    nb, slot, nblocks, shared = _conv_plan(g, f, groups, x.dtype, finite)
    runs = min(nblocks, MAX_RUNS)
    db_parts = np.empty((runs, f), dtype=np.float64)
    with _workspaces.borrow("conv_work", shared + nt * slot, x.dtype) as work, \
            _workspaces.borrow("conv_dw_parts", runs * w.size, x.dtype) as parts, \
            single_threaded_blas():
        _kernels.conv2d_backward(dout, x, w, dx, dw, db, parts.reshape(runs, w.size),
                                 db_parts, work, slot, g, nb, groups, is_pointwise(g), nt,
                                 need_dx, shared)
    return (dx if need_dx else None), dw, db.astype(dout.dtype)


def maxpool2d_forward(x, g: WindowGeometry):
    """Window max and where it came from. Cache ``(where, g)``: for 2x2/2 pooling ``where``
    is an int8 code per window (0..3: which of its 4 pixels won, row-major), 8x less memory
    traffic than an int64 index; otherwise the winner's flat index ``h*W + w`` (int64).
    :func:`maxpool_argmax` turns either into the flat index of the reference."""
    out = np.empty((g.n, g.c, g.oh, g.ow), dtype=x.dtype)
    if is_pool2x2(g):
        code = np.empty(out.shape, dtype=np.int8)
        if g.n > 0:
            _kernels.maxpool2x2_forward(x, out, code, g, threads_for(x.size))
        return out, (code, g)
    argmax = np.empty((g.n, g.c, g.oh, g.ow), dtype=np.int64)
    if g.n > 0:
        _kernels.maxpool2d_forward(x, out, argmax, g, threads_for(x.size))
    return out, (argmax, g)


def maxpool_argmax(data) -> np.ndarray:
    """The reference's ``argmax`` (flat index ``h*W + w`` of each window's winner, int64)
    from the ``data`` of a maxpool cache of this backend (for tests and inspection)."""
    where, g = data
    if where.dtype != np.int8:
        return where
    code = where.astype(np.int64)
    rows = 2 * np.arange(g.oh)[:, None] + code // 2
    cols = 2 * np.arange(g.ow)[None, :] + code % 2
    return rows * g.w + cols


def maxpool2d_backward(dout, cache):
    """``dx[n, c].flat[argmax] += dout`` (overlapping windows add up); for 2x2/2 pooling
    the same as one write-only pass (the winner gets ``0 + dout``, the others 0)."""
    where, g = cache
    dx = np.empty(g.input_shape, dtype=dout.dtype)
    if g.n > 0:
        if where.dtype == np.int8:
            _kernels.maxpool2x2_backward(dout, where, dx, g, threads_for(dx.size))
        else:
            _kernels.maxpool2d_backward(dout, where, dx, g, threads_for(dx.size))
    return dx


def avgpool2d_forward(x, win):
    """``out = (sum of x over each window's rectangle) / divisor`` (see ``PoolWindows``);
    the C kernel recognises 2x2/2 tiles itself. Cache: ``win``."""
    out = np.empty(win.output_shape, dtype=x.dtype)
    if win.n > 0:
        _avgpool.avgpool2d_forward(x, win.divisor.astype(x.dtype), out, win,
                                   threads_for(x.size))
    return out, win


def avgpool2d_backward(dout, win):
    """Every pixel of a window gets ``dout / divisor`` (overlapping windows add up)."""
    dx = np.empty(win.input_shape, dtype=dout.dtype)
    if win.n > 0:
        _avgpool.avgpool2d_backward(dout, win.divisor.astype(dout.dtype), dx, win,
                                    threads_for(dx.size))
    return dx


def batchnorm_forward(x, gamma, beta, running_mean, running_var, training, momentum, eps):
    """``x`` is (N, C, L); statistics over axes 0 and 2 in double; running statistics
    updated in place in training mode. Cache ``(x, gamma, mean, invstd, training)``.

    The C kernels write every element of ``out``, ``mean``, ``var`` and ``invstd``, so
    they are allocated uninitialised (``np.empty``), one (3, C) block for the three."""
    n, c, l = x.shape
    out = np.empty_like(x)
    if training:
        mean, var, invstd = np.empty((3, c), dtype=np.float64)
        if x.size:   # statistics and normalisation, channel by channel (one pass over memory)
            _kernels.batchnorm_forward_train(x, gamma, beta, float(eps), mean, var, invstd,
                                             out, threads_for(x.size))
        else:        # an empty (N, C, 0) batch: the reference's zero statistics
            mean.fill(0.0)
            var.fill(0.0)
            invstd = 1.0 / np.sqrt(var + eps)
        _running_update_(running_mean, mean, momentum)
        _running_update_(running_var, var, momentum)
    else:
        mean = running_mean.astype(np.float64)
        invstd = running_var.astype(np.float64)
        invstd += eps                 # 1 / sqrt(var + eps), as the C kernel computes it,
        np.sqrt(invstd, out=invstd)   # in place: one (C,) array instead of three
        np.divide(1.0, invstd, out=invstd)
        if x.size:
            _kernels.batchnorm_apply(x, gamma, beta, mean, invstd, out, threads_for(x.size))
    return out, (x, gamma, mean, invstd, bool(training))


def _running_update_(running, batch_stat, momentum: float) -> None:
    """``running = momentum * running + (1 - momentum) * batch_stat`` in place, with the
    same operations and dtypes as the reference's expression, so the same bits: the
    first product in the dtype of ``running`` (a Python float does not promote it), the
    second and the sum in double (``batch_stat`` is double), one rounding at the end."""
    scaled = running * momentum
    scaled += (1 - momentum) * batch_stat     # computed in double, stored rounded once
    running[...] = scaled


def batchnorm_backward(dout, cache):
    """``dbeta = sum(dout)``, ``dgamma = sum(dout * xhat)``; training:
    ``dx = gamma*invstd/M * (M*dout - dbeta - xhat*dgamma)``, inference:
    ``dx = gamma*invstd * dout``. The C kernel writes every element of ``dx``, ``dgamma``
    and ``dbeta``."""
    x, gamma, mean, invstd, training = cache
    c = x.shape[1]
    dx = np.empty_like(dout)
    if dout.size:
        dgamma, dbeta = np.empty((2, c), dtype=np.float64)
        _kernels.batchnorm_backward(dout, x, gamma, mean, invstd, dx, dgamma, dbeta,
                                    training, threads_for(x.size))
    else:
        dgamma = dbeta = np.zeros(c, dtype=np.float64)
    return dx, dgamma.astype(dout.dtype), dbeta.astype(dout.dtype)
