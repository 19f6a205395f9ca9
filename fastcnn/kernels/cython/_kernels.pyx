"""Thin Cython wrappers over the C kernels of ``csrc/``.

Every function takes C-contiguous arrays of one float dtype (the ``floating`` fused type
picks the ``_f32`` or ``_f64`` C symbol at compile time), writes caller-allocated outputs
and returns nothing. Allocation, N == 0 and the caches live in
:mod:`fastcnn.kernels.cython.backend`; argument validation in :mod:`fastcnn.kernels`.
Inputs are ``const`` memoryviews, so read-only arrays work. The C code runs without the
GIL; a non-zero C status (an impossible geometry: a bug) becomes a ``RuntimeError``.

Convolution (im2col + GEMM over blocks of images, csrc/fc_conv_impl.h) gets SciPy's BLAS
``sgemm``/``dgemm`` (``scipy.linalg.cython_blas``) as a C function pointer.
"""

from cython cimport floating
from libc.stdint cimport int8_t, int64_t
from scipy.linalg.cython_blas cimport sgemm, dgemm

from fastcnn.kernels.cython._csrc cimport *


cdef fc_geom _geom(g, Py_ssize_t n) except *:
    """The C geometry struct of a ``WindowGeometry`` with batch size ``n``."""
    cdef fc_geom cg
    cg.n, cg.c, cg.h, cg.w = n, g.c, g.h, g.w
    cg.kh, cg.kw, cg.sh, cg.sw = g.kh, g.kw, g.sh, g.sw
    cg.pad_top, cg.pad_left = g.pad_top, g.pad_left
    cg.oh, cg.ow = g.oh, g.ow
    cg.dh, cg.dw = g.dh, g.dw
    return cg


cdef inline int _check(int status, str what) except -1:
    if status != 0:
        raise RuntimeError(f"internal error: {what} returned status {status}; please report "
                           f"this as a fastcnn bug")
    return 0


def openmp_enabled():
    """True when the C kernels were compiled with OpenMP."""
    return bool(fc_openmp_enabled())


def max_threads():
    """OpenMP's default thread count (1 without OpenMP)."""
    return fc_max_threads()


def openmp_release():
    """Free this thread's OpenMP thread pool (before a fork); 0 on success."""
    return fc_openmp_release()


# ------------------------------------------------------------------ im2col / col2im


def im2col(const floating[:, :, :, ::1] x,     # IN  (N, C, H, W)
           floating[:, ::1] cols,               # OUT (C*KH*KW, N*OH*OW)
           g, int n_threads):
    """``cols[(c*KH+i)*KW+j, (n*OH+oh)*OW+ow] = x_pad[n, c, oh*SH+i, ow*SW+j]``."""
    if x.shape[0] == 0:
        return
    cdef fc_geom cg = _geom(g, x.shape[0])
    cdef int status
    with nogil:
        if floating is float:
            status = fc_im2col_f32(&x[0, 0, 0, 0], &cols[0, 0], &cg, n_threads)
        else:
            status = fc_im2col_f64(&x[0, 0, 0, 0], &cols[0, 0], &cg, n_threads)
    _check(status, "fc_im2col")


def col2im(const floating[:, ::1] cols,        # IN  (C*KH*KW, N*OH*OW)
           floating[:, :, :, ::1] x,            # OUT (N, C, H, W), fully overwritten
           g, int n_threads):
    """Adjoint of im2col: ``x = 0; x_pad[n, c, oh*SH+i, ow*SW+j] += cols[...]``."""
    if x.shape[0] == 0:
        return
    cdef fc_geom cg = _geom(g, x.shape[0])
    cdef int status
    with nogil:
        if floating is float:
            status = fc_col2im_f32(&cols[0, 0], &x[0, 0, 0, 0], &cg, n_threads)
        else:
            status = fc_col2im_f64(&cols[0, 0], &x[0, 0, 0, 0], &cg, n_threads)
    _check(status, "fc_col2im")


# ----------------------------------------------------------------------------- conv
#
# The algorithm (blocks of nb images, one OpenMP thread per block with its own workspace
# slot, single-threaded BLAS, dW/db partial sums in fixed runs) lives in csrc/fc_conv_impl.h.
# Here: the BLAS GEMM handed to C as a function pointer (SciPy's, so fastcnn links no BLAS
# of its own), the plan struct, and the workspace size check C cannot make.


cdef fc_conv_plan _plan(Py_ssize_t f, Py_ssize_t groups, Py_ssize_t nb, Py_ssize_t slot,
                        bint is_1x1, Py_ssize_t shared):
    # shared > 0: the Winograd algorithm, its transformed filters in work[:shared]
    cdef fc_conv_plan p
    p.f, p.groups, p.nb, p.slot, p.is_1x1 = f, groups, nb, slot, is_1x1
    p.shared, p.winograd = shared, shared > 0
    return p


def conv2d_forward(const floating[:, :, :, ::1] x,    # IN  (N, C, H, W), N >= 1
                   const floating[:, :, :, ::1] w,    # IN  (F, C/groups, KH, KW)
                   const floating[::1] b,             # IN  (F,)
                   floating[:, :, :, ::1] out,        # OUT (N, F, OH, OW)
                   floating[::1] work,                # workspace: n_threads slots of `slot`
                   Py_ssize_t slot,                   # >= (C*KH*KW + F) * nb*P (0 for 1x1)
                   g, Py_ssize_t nb, Py_ssize_t groups, bint is_1x1, int n_threads,
                   Py_ssize_t shared=0):              # > 0: Winograd (see _plan)
    """``out[n] = W2 @ im2col(x[n]) + b`` (per group), blocks of ``nb`` images shared out by
    OpenMP (csrc/fc_conv_impl.h)."""
    if x.shape[0] == 0:
        return
    if work.shape[0] < shared + n_threads * slot:
        raise ValueError("conv2d_forward: workspace too small")
    cdef fc_geom cg = _geom(g, x.shape[0])
    cdef fc_conv_plan p = _plan(w.shape[0], groups, nb, slot, is_1x1, shared)
    cdef int status
    with nogil:
        if floating is float:
            status = fc_conv2d_fwd_f32(&x[0, 0, 0, 0], &w[0, 0, 0, 0], &b[0], &out[0, 0, 0, 0],
                                       &work[0], &cg, &p, <fc_sgemm_fn>sgemm, n_threads)
        else:
            status = fc_conv2d_fwd_f64(&x[0, 0, 0, 0], &w[0, 0, 0, 0], &b[0], &out[0, 0, 0, 0],
                                       &work[0], &cg, &p, <fc_dgemm_fn>dgemm, n_threads)
    _check(status, "fc_conv2d_fwd")


def conv2d_backward(const floating[:, :, :, ::1] dout,  # IN  (N, F, OH, OW), N >= 1
                    const floating[:, :, :, ::1] x,     # IN  (N, C, H, W)
                    const floating[:, :, :, ::1] w,     # IN  (F, C/groups, KH, KW)
                    floating[:, :, :, ::1] dx,          # OUT (N, C, H, W)
                    floating[:, :, :, ::1] dw,          # OUT (F, C/groups, KH, KW)
                    double[::1] db,                     # OUT (F,) sum of dout, in double
                    floating[:, ::1] dw_parts,          # workspace (R, F*C/groups*KH*KW)
                    double[:, ::1] db_parts,            # workspace (R, F)
                    floating[::1] work, Py_ssize_t slot,   # as in conv2d_forward
                    g, Py_ssize_t nb, Py_ssize_t groups, bint is_1x1, int n_threads,
                    bint need_dx=True,                  # False: dx is a stand-in, untouched
                    Py_ssize_t shared=0):               # > 0: Winograd (see _plan)
    """``db = sum(dout)``, ``dW = sum_n dout[n] @ cols[n].T``, ``dx[n] = col2im(W2.T @
    dout[n])``; R fixed runs of blocks shared out by OpenMP, partials summed in run order."""
    if x.shape[0] == 0:
        return
    if (work.shape[0] < shared + n_threads * slot or dw_parts.shape[1] != dw.size
            or db_parts.shape[0] != dw_parts.shape[0] or db_parts.shape[1] != db.shape[0]):
        raise ValueError("conv2d_backward: bad workspace")
    cdef fc_geom cg = _geom(g, x.shape[0])
    cdef fc_conv_plan p = _plan(w.shape[0], groups, nb, slot, is_1x1, shared)
    cdef Py_ssize_t n_parts = dw_parts.shape[0]
    cdef int status
    with nogil:
        if floating is float:
            status = fc_conv2d_bwd_f32(&dout[0, 0, 0, 0], &x[0, 0, 0, 0], &w[0, 0, 0, 0],
                                       &dx[0, 0, 0, 0], &dw[0, 0, 0, 0], &db[0], &dw_parts[0, 0],
                                       &db_parts[0, 0], n_parts, &work[0], &cg, &p, need_dx,
                                       <fc_sgemm_fn>sgemm, n_threads)
        else:
            status = fc_conv2d_bwd_f64(&dout[0, 0, 0, 0], &x[0, 0, 0, 0], &w[0, 0, 0, 0],
                                       &dx[0, 0, 0, 0], &dw[0, 0, 0, 0], &db[0], &dw_parts[0, 0],
                                       &db_parts[0, 0], n_parts, &work[0], &cg, &p, need_dx,
                                       <fc_dgemm_fn>dgemm, n_threads)
    _check(status, "fc_conv2d_bwd")


def depthwise_forward(const floating[:, :, :, ::1] x,   # IN  (N, C, H, W), N >= 1
                      const floating[:, :, :, ::1] w,   # IN  (F, 1, KH, KW), F = M*C
                      const floating[::1] b,            # IN  (F,)
                      floating[:, :, :, ::1] out,       # OUT (N, F, OH, OW)
                      g, int n_threads):
    """Depthwise convolution (groups == C) by direct loops (csrc/fc_conv_impl.h)."""
    cdef fc_geom cg = _geom(g, x.shape[0])
    cdef int status
    with nogil:
        if floating is float:
            status = fc_depthwise_fwd_f32(&x[0, 0, 0, 0], &w[0, 0, 0, 0], &b[0],
                                          &out[0, 0, 0, 0], &cg, w.shape[0], n_threads)
        else:
            status = fc_depthwise_fwd_f64(&x[0, 0, 0, 0], &w[0, 0, 0, 0], &b[0],
                                          &out[0, 0, 0, 0], &cg, w.shape[0], n_threads)
    _check(status, "fc_depthwise_fwd")


def depthwise_backward(const floating[:, :, :, ::1] dout,  # IN  (N, F, OH, OW), N >= 1
                       const floating[:, :, :, ::1] x,     # IN  (N, C, H, W)
                       const floating[:, :, :, ::1] w,     # IN  (F, 1, KH, KW)
                       floating[:, :, :, ::1] dx,          # OUT (N, C, H, W) if need_dx
                       double[:, :, :, ::1] dw,            # OUT (F, 1, KH, KW) in double
                       double[::1] db,                     # OUT (F,) in double
                       g, bint need_dx, int n_threads):
    """Gradients of :func:`depthwise_forward` (dx untouched when ``need_dx`` is false)."""
    cdef fc_geom cg = _geom(g, x.shape[0])
    cdef int status
    with nogil:
        if floating is float:
            status = fc_depthwise_bwd_f32(&dout[0, 0, 0, 0], &x[0, 0, 0, 0], &w[0, 0, 0, 0],
                                          &dx[0, 0, 0, 0], &dw[0, 0, 0, 0], &db[0], &cg,
                                          w.shape[0], need_dx, n_threads)
        else:
            status = fc_depthwise_bwd_f64(&dout[0, 0, 0, 0], &x[0, 0, 0, 0], &w[0, 0, 0, 0],
                                          &dx[0, 0, 0, 0], &dw[0, 0, 0, 0], &db[0], &cg,
                                          w.shape[0], need_dx, n_threads)
    _check(status, "fc_depthwise_bwd")


# -------------------------------------------------------------------------- maxpool


def maxpool2d_forward(const floating[:, :, :, ::1] x,   # IN  (N, C, H, W)
                      floating[:, :, :, ::1] y,         # OUT (N, C, OH, OW)
                      int64_t[:, :, :, ::1] argmax,     # OUT (N, C, OH, OW), h*W + w
                      g, int n_threads):
    """Window max (padding never a candidate, first maximum wins ties, NaN wins)."""
    if x.shape[0] == 0:
        return
    cdef fc_geom cg = _geom(g, x.shape[0])
    cdef int status
    with nogil:
        if floating is float:
            status = fc_maxpool2d_fwd_f32(&x[0, 0, 0, 0], &y[0, 0, 0, 0], &argmax[0, 0, 0, 0],
                                          &cg, n_threads)
        else:
            status = fc_maxpool2d_fwd_f64(&x[0, 0, 0, 0], &y[0, 0, 0, 0], &argmax[0, 0, 0, 0],
                                          &cg, n_threads)
    _check(status, "fc_maxpool2d_fwd")


def maxpool2d_backward(const floating[:, :, :, ::1] dy,      # IN  (N, C, OH, OW)
                       const int64_t[:, :, :, ::1] argmax,   # IN  (N, C, OH, OW)
                       floating[:, :, :, ::1] dx,            # OUT (N, C, H, W)
                       g, int n_threads):
    """``dx = 0; dx[n, c].flat[argmax] += dy`` (adds: overlapping windows)."""
    if dx.shape[0] == 0:
        return
    cdef fc_geom cg = _geom(g, dx.shape[0])
    cdef int status
    with nogil:
        if floating is float:
            status = fc_maxpool2d_bwd_f32(&dy[0, 0, 0, 0], &argmax[0, 0, 0, 0], &dx[0, 0, 0, 0],
                                          &cg, n_threads)
        else:
            status = fc_maxpool2d_bwd_f64(&dy[0, 0, 0, 0], &argmax[0, 0, 0, 0], &dx[0, 0, 0, 0],
                                          &cg, n_threads)
    _check(status, "fc_maxpool2d_bwd")


def maxpool2x2_forward(const floating[:, :, :, ::1] x,   # IN  (N, C, H, W), N >= 1
                       floating[:, :, :, ::1] y,         # OUT (N, C, OH, OW)
                       int8_t[:, :, :, ::1] code,        # OUT (N, C, OH, OW), 0..3
                       g, int n_threads):
    """2x2 stride-2 unpadded pooling: window max and which of its 4 pixels won."""
    cdef fc_geom cg = _geom(g, x.shape[0])
    cdef int status
    with nogil:
        if floating is float:
            status = fc_maxpool2x2_fwd_f32(&x[0, 0, 0, 0], &y[0, 0, 0, 0], &code[0, 0, 0, 0],
                                           &cg, n_threads)
        else:
            status = fc_maxpool2x2_fwd_f64(&x[0, 0, 0, 0], &y[0, 0, 0, 0], &code[0, 0, 0, 0],
                                           &cg, n_threads)
    _check(status, "fc_maxpool2x2_fwd")


def maxpool2x2_backward(const floating[:, :, :, ::1] dy,     # IN  (N, C, OH, OW), N >= 1
                        const int8_t[:, :, :, ::1] code,     # IN  (N, C, OH, OW)
                        floating[:, :, :, ::1] dx,           # OUT (N, C, H, W)
                        g, int n_threads):
    """dx of :func:`maxpool2x2_forward`: the winner gets dy, the other pixels 0."""
    cdef fc_geom cg = _geom(g, dx.shape[0])
    cdef int status
    with nogil:
        if floating is float:
            status = fc_maxpool2x2_bwd_f32(&dy[0, 0, 0, 0], &code[0, 0, 0, 0], &dx[0, 0, 0, 0],
                                           &cg, n_threads)
        else:
            status = fc_maxpool2x2_bwd_f64(&dy[0, 0, 0, 0], &code[0, 0, 0, 0], &dx[0, 0, 0, 0],
                                           &cg, n_threads)
    _check(status, "fc_maxpool2x2_bwd")


# ------------------------------------------------------------------------ batchnorm


def batchnorm_forward_train(const floating[:, :, ::1] x,   # IN  (N, C, L), N*L >= 1
                            const floating[::1] gamma,       # IN  (C,)
                            const floating[::1] beta,        # IN  (C,)
                            double eps,
                            double[::1] mean,                # OUT (C,)
                            double[::1] var,                 # OUT (C,) biased
                            double[::1] invstd,              # OUT (C,) 1/sqrt(var + eps)
                            floating[:, :, ::1] out,         # OUT (N, C, L)
                            int n_threads):
    """Statistics over axes 0 and 2 (double, two passes) and ``out = gamma * ((x - mean) *
    invstd) + beta``, channel by channel (see csrc/fc_batchnorm_impl.h)."""
    cdef int status
    with nogil:
        if floating is float:
            status = fc_batchnorm_fwd_train_f32(&x[0, 0, 0], &gamma[0], &beta[0], eps, &mean[0],
                                                &var[0], &invstd[0], &out[0, 0, 0], x.shape[0],
                                                x.shape[1], x.shape[2], n_threads)
        else:
            status = fc_batchnorm_fwd_train_f64(&x[0, 0, 0], &gamma[0], &beta[0], eps, &mean[0],
                                                &var[0], &invstd[0], &out[0, 0, 0], x.shape[0],
                                                x.shape[1], x.shape[2], n_threads)
    _check(status, "fc_batchnorm_fwd_train")


def batchnorm_apply(const floating[:, :, ::1] x,    # IN  (N, C, L), not empty
                    const floating[::1] gamma,      # IN  (C,)
                    const floating[::1] beta,       # IN  (C,)
                    const double[::1] mean,         # IN  (C,)
                    const double[::1] invstd,       # IN  (C,)
                    floating[:, :, ::1] out,        # OUT (N, C, L)
                    int n_threads):
    """``out = gamma * ((x - mean) * invstd) + beta`` computed in double."""
    cdef int status
    with nogil:
        if floating is float:
            status = fc_batchnorm_apply_f32(&x[0, 0, 0], &gamma[0], &beta[0], &mean[0],
                                            &invstd[0], &out[0, 0, 0], x.shape[0], x.shape[1],
                                            x.shape[2], n_threads)
        else:
            status = fc_batchnorm_apply_f64(&x[0, 0, 0], &gamma[0], &beta[0], &mean[0],
                                            &invstd[0], &out[0, 0, 0], x.shape[0], x.shape[1],
                                            x.shape[2], n_threads)
    _check(status, "fc_batchnorm_apply")


def batchnorm_backward(const floating[:, :, ::1] dout,   # IN  (N, C, L), not empty
                       const floating[:, :, ::1] x,      # IN  (N, C, L)
                       const floating[::1] gamma,        # IN  (C,)
                       const double[::1] mean,           # IN  (C,)
                       const double[::1] invstd,         # IN  (C,)
                       floating[:, :, ::1] dx,           # OUT (N, C, L)
                       double[::1] dgamma,               # OUT (C,) sum(dout * xhat)
                       double[::1] dbeta,                # OUT (C,) sum(dout)
                       bint training, int n_threads):
    """Per channel: the sums, then the dx formula while the channel is in cache (csrc)."""
    cdef int status
    with nogil:
        if floating is float:
            status = fc_batchnorm_bwd_f32(&dout[0, 0, 0], &x[0, 0, 0], &gamma[0], &mean[0],
                                          &invstd[0], &dx[0, 0, 0], &dgamma[0], &dbeta[0],
                                          x.shape[0], x.shape[1], x.shape[2], training,
                                          n_threads)
        else:
            status = fc_batchnorm_bwd_f64(&dout[0, 0, 0], &x[0, 0, 0], &gamma[0], &mean[0],
                                          &invstd[0], &dx[0, 0, 0], &dgamma[0], &dbeta[0],
                                          x.shape[0], x.shape[1], x.shape[2], training,
                                          n_threads)
    _check(status, "fc_batchnorm_bwd")
