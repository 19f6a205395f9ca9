"""Thin Cython wrappers over the C kernels of ``csrc/`` (plus BLAS GEMMs for convolution).

Every function takes C-contiguous arrays of one float dtype (the ``floating`` fused type
picks the ``_f32`` or ``_f64`` C symbol at compile time), writes caller-allocated outputs
and returns nothing. Allocation, N == 0 and the caches live in
:mod:`fastcnn.kernels.cython_backend`; argument validation in :mod:`fastcnn.kernels`.
Inputs are ``const`` memoryviews, so read-only arrays work. The C code runs without the
GIL; a non-zero C status (an impossible geometry: a bug) becomes a ``RuntimeError``.

Convolution = im2col + GEMM (BLAS through ``scipy.linalg.cython_blas``), over CHUNKS of
``nb`` images so that the workspace (``cols``: C*KH*KW x nb*OH*OW, ``buf``: F x nb*OH*OW)
never grows with the batch size. See ``conv2d_forward``/``conv2d_backward`` and the design
notes in :mod:`fastcnn.kernels.cython_backend`.
"""

from cython cimport floating
from cython.parallel cimport prange
from libc.stdint cimport int64_t
from scipy.linalg.cython_blas cimport sgemm, dgemm

from fastcnn.kernels._cython._csrc cimport *


cdef void _gemm(bint trans_a, bint trans_b, int m, int n, int k, floating alpha,
                const floating *a, int lda, const floating *b, int ldb, floating beta,
                floating *c, int ldc) noexcept nogil:
    """Row-major ``c = alpha * op(a) @ op(b) + beta * c``, op(a): (m, k), op(b): (k, n).

    BLAS is column-major. A row-major (r x s) matrix with leading dimension ld is, in
    memory, the column-major (s x r) matrix of its transpose. So instead of C = A B we ask
    BLAS for C^T = op(B)^T op(A)^T: swap the operands (b first), swap m and n, keep each
    operand's own transpose flag (sklearn's _cython_blas trick). No copy is made.
    """
    cdef char ta = b't' if trans_a else b'n'
    cdef char tb = b't' if trans_b else b'n'
    if floating is float:
        sgemm(&tb, &ta, &n, &m, &k, &alpha, <float *>b, &ldb, <float *>a, &lda, &beta, c, &ldc)
    else:
        dgemm(&tb, &ta, &n, &m, &k, &alpha, <double *>b, &ldb, <double *>a, &lda, &beta, c, &ldc)


cdef inline int _block_width(int n) noexcept nogil:
    """Columns per block of ``_gemm_par``: about n/16 rounded up to a multiple of 16, at
    least 64. Depends on n only (never on the thread count), so the blocks, and hence
    every result, are the same for any number of threads."""
    cdef int width = ((n + 15) // 16 + 15) // 16 * 16
    return width if width > 64 else 64


cdef void _gemm_par(bint trans_a, bint trans_b, int m, int n, int k, floating alpha,
                    const floating *a, int lda, const floating *b, int ldb, floating beta,
                    floating *c, int ldc, int n_threads) noexcept nogil:
    """``_gemm`` with the n output columns cut into fixed blocks, one single-threaded BLAS
    call per block, blocks shared out by OpenMP (dynamic schedule: a block's result does
    not depend on which thread computes it). Why not BLAS's own threads: OpenBLAS gives
    different bits with 1 and 2 threads for some shapes (seen for dW), and we promise
    bitwise-identical results for any thread count. The caller limits BLAS to 1 thread.

    Column block [j0, j0+nj) of C needs op(B)[:, j0:j0+nj]: columns j0.. of B (offset j0)
    when B is not transposed, rows j0.. of B (offset j0*ldb) when it is.
    """
    cdef int width = _block_width(n)
    cdef int nblocks = (n + width - 1) // width
    cdef int blk, j0, nj
    for blk in prange(nblocks, num_threads=n_threads, schedule="dynamic"):
        j0 = blk * width
        nj = min(width, n - j0)
        _gemm(trans_a, trans_b, m, nj, k, alpha, a, lda,
              b + (<Py_ssize_t>j0 * ldb if trans_b else j0), ldb, beta, c + j0, ldc)


def gemm(bint trans_a, bint trans_b, floating alpha, const floating[:, ::1] a,
         const floating[:, ::1] b, floating beta, floating[:, ::1] c, int n_threads=1):
    """Test-only wrapper of ``_gemm_par``: ``c[...] = alpha * op(a) @ op(b) + beta * c``
    (call it with BLAS limited to one thread)."""
    cdef int m = c.shape[0], n = c.shape[1]
    cdef int k = a.shape[0] if trans_a else a.shape[1]
    if m == 0 or n == 0 or k == 0:
        raise ValueError("gemm: empty operands are not supported by this test wrapper")
    with nogil:
        _gemm_par(trans_a, trans_b, m, n, k, alpha, &a[0, 0], <int>a.shape[1], &b[0, 0],
                  <int>b.shape[1], beta, &c[0, 0], n, n_threads)


cdef fc_geom _geom(g, Py_ssize_t n) except *:
    """The C geometry struct of a ``WindowGeometry`` with batch size ``n``."""
    cdef fc_geom cg
    cg.n, cg.c, cg.h, cg.w = n, g.c, g.h, g.w
    cg.kh, cg.kw, cg.sh, cg.sw = g.kh, g.kw, g.sh, g.sw
    cg.pad_top, cg.pad_left = g.pad_top, g.pad_left
    cg.oh, cg.ow = g.oh, g.ow
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


def conv2d_forward(const floating[:, :, :, ::1] x,    # IN  (N, C, H, W), N >= 1
                   const floating[:, :, :, ::1] w,    # IN  (F, C, KH, KW)
                   const floating[::1] b,             # IN  (F,)
                   floating[:, :, :, ::1] out,        # OUT (N, F, OH, OW)
                   floating[::1] cols,                # workspace >= C*KH*KW * nb*OH*OW
                   floating[::1] buf,                 # workspace >= F * nb*OH*OW
                   g, Py_ssize_t nb, int n_threads):
    """``out[n] = W2 @ im2col(x[n]) + b`` chunk by chunk, ``W2 = w.reshape(F, C*KH*KW)``.

    Per chunk of ``nbc <= nb`` images: im2col into ``cols`` (CKK, nbc*P) [C, OpenMP over
    planes], ``buf (F, nbc*P) = W2 @ cols`` [one BLAS call, BLAS threads], then
    ``out[n, f, :] = buf[f, n*P:(n+1)*P] + b[f]`` [C, OpenMP; the bias add is fused into
    this copy from the GEMM's (F, images*pixels) layout to NCHW].
    """
    cdef Py_ssize_t N = x.shape[0], F = w.shape[0], n0, nbc
    cdef int ckk = <int>(w.shape[1] * w.shape[2] * w.shape[3])
    cdef Py_ssize_t P = out.shape[2] * out.shape[3]
    cdef fc_geom cg = _geom(g, nb)
    cdef int status = 0, cols_n
    if N == 0:
        return
    with nogil:
        n0 = 0
        while n0 < N and status == 0:
            nbc = min(nb, N - n0)
            cg.n = nbc
            cols_n = <int>(nbc * P)
            if floating is float:
                status = fc_im2col_f32(&x[n0, 0, 0, 0], &cols[0], &cg, n_threads)
            else:
                status = fc_im2col_f64(&x[n0, 0, 0, 0], &cols[0], &cg, n_threads)
            _gemm_par(False, False, <int>F, cols_n, ckk, <floating>1.0, &w[0, 0, 0, 0], ckk,
                      &cols[0], cols_n, <floating>0.0, &buf[0], cols_n, n_threads)
            if floating is float:
                status |= fc_conv_scatter_bias_f32(&buf[0], &b[0], &out[n0, 0, 0, 0], nbc, F,
                                                   P, n_threads)
            else:
                status |= fc_conv_scatter_bias_f64(&buf[0], &b[0], &out[n0, 0, 0, 0], nbc, F,
                                                   P, n_threads)
            n0 += nbc
    _check(status, "conv2d_forward (fc_im2col / fc_conv_scatter_bias)")


def conv2d_forward_1x1(const floating[:, :, :, ::1] x,   # IN  (N, C, H, W), N >= 1
                       const floating[:, :, :, ::1] w,   # IN  (F, C, 1, 1)
                       const floating[::1] b,            # IN  (F,)
                       floating[:, :, :, ::1] out,       # OUT (N, F, H, W)
                       int n_threads):
    """1x1 kernel, stride 1, no padding: im2col(x[n]) IS x[n] seen as (C, H*W), so
    ``out[n] (F, P) = W2 (F, C) @ x[n] (C, P)`` straight into NCHW, then ``+= b``."""
    cdef Py_ssize_t N = x.shape[0], n
    cdef int F = <int>w.shape[0], C = <int>w.shape[1], P = <int>(x.shape[2] * x.shape[3])
    cdef int status
    if N == 0:
        return
    with nogil:
        for n in prange(N, num_threads=n_threads, schedule="dynamic"):   # one image each
            _gemm(False, False, F, P, C, <floating>1.0, &w[0, 0, 0, 0], C, &x[n, 0, 0, 0], P,
                  <floating>0.0, &out[n, 0, 0, 0], P)
        if floating is float:
            status = fc_conv_add_bias_f32(&b[0], &out[0, 0, 0, 0], N, F, P, n_threads)
        else:
            status = fc_conv_add_bias_f64(&b[0], &out[0, 0, 0, 0], N, F, P, n_threads)
    _check(status, "fc_conv_add_bias")


def conv2d_backward(const floating[:, :, :, ::1] dout,  # IN  (N, F, OH, OW), N >= 1
                    const floating[:, :, :, ::1] x,     # IN  (N, C, H, W)
                    const floating[:, :, :, ::1] w,     # IN  (F, C, KH, KW)
                    floating[:, :, :, ::1] dx,          # OUT (N, C, H, W)
                    floating[:, :, :, ::1] dw,          # OUT (F, C, KH, KW)
                    double[::1] db_acc,                 # OUT (F,) sum of dout, zeroed here
                    floating[::1] cols,                 # workspace >= CKK * nb*P
                    floating[::1] buf,                  # workspace >= F * nb*P
                    g, Py_ssize_t nb, int n_threads):
    """Per chunk, in chunk order (so the sums do not depend on the thread count):

    - ``cols = im2col(x[chunk])``                          (CKK, nbc*P)
    - ``buf[f, n*P + p] = dout[n, f, p]``; ``db += sum``     (F, nbc*P), db in double
    - ``dw (F, CKK) (+)= buf @ cols.T``                     BLAS, beta = 0 on the first chunk
    - ``cols = w2.T @ buf``                                 BLAS, reuses the cols buffer
    - ``dx[chunk] = col2im(cols)``
    """
    cdef Py_ssize_t N = x.shape[0], F = w.shape[0], n0, nbc
    cdef int ckk = <int>(w.shape[1] * w.shape[2] * w.shape[3])
    cdef Py_ssize_t P = dout.shape[2] * dout.shape[3], f
    cdef fc_geom cg = _geom(g, nb)
    cdef int status = 0, cols_n
    cdef floating beta
    for f in range(F):
        db_acc[f] = 0.0
    if N == 0:
        return
    with nogil:
        n0 = 0
        while n0 < N and status == 0:
            nbc = min(nb, N - n0)
            cg.n = nbc
            cols_n = <int>(nbc * P)
            beta = 0.0 if n0 == 0 else 1.0
            if floating is float:
                status = fc_im2col_f32(&x[n0, 0, 0, 0], &cols[0], &cg, n_threads)
                status |= fc_conv_gather_dout_f32(&dout[n0, 0, 0, 0], &buf[0], &db_acc[0], nbc,
                                                  F, P, n_threads)
            else:
                status = fc_im2col_f64(&x[n0, 0, 0, 0], &cols[0], &cg, n_threads)
                status |= fc_conv_gather_dout_f64(&dout[n0, 0, 0, 0], &buf[0], &db_acc[0], nbc,
                                                  F, P, n_threads)
            _gemm_par(False, True, <int>F, ckk, cols_n, <floating>1.0, &buf[0], cols_n,
                      &cols[0], cols_n, beta, &dw[0, 0, 0, 0], ckk, n_threads)
            _gemm_par(True, False, ckk, cols_n, <int>F, <floating>1.0, &w[0, 0, 0, 0], ckk,
                      &buf[0], cols_n, <floating>0.0, &cols[0], cols_n, n_threads)
            if floating is float:
                status |= fc_col2im_f32(&cols[0], &dx[n0, 0, 0, 0], &cg, n_threads)
            else:
                status |= fc_col2im_f64(&cols[0], &dx[n0, 0, 0, 0], &cg, n_threads)
            n0 += nbc
    _check(status, "conv2d_backward (fc_im2col / fc_conv_gather_dout / fc_col2im)")


def conv2d_backward_1x1(const floating[:, :, :, ::1] dout,  # IN  (N, F, H, W), N >= 1
                        const floating[:, :, :, ::1] x,     # IN  (N, C, H, W)
                        const floating[:, :, :, ::1] w,     # IN  (F, C, 1, 1)
                        floating[:, :, :, ::1] dx,          # OUT (N, C, H, W)
                        floating[:, :, :, ::1] dw,          # OUT (F, C, 1, 1)
                        double[::1] db_acc,                 # OUT (F,) sum of dout, in double
                        int n_threads):
    """1x1/stride 1/no padding: ``dw += dout[n] @ x[n].T`` (images in order, OpenMP over
    fixed column blocks of dw), ``dx[n] = W2.T @ dout[n]`` (OpenMP over images); no column
    matrix; ``db`` by one C reduction."""
    cdef Py_ssize_t N = x.shape[0], n, f
    cdef int F = <int>w.shape[0], C = <int>w.shape[1], P = <int>(x.shape[2] * x.shape[3])
    cdef int status, width = _block_width(C), nblocks = (C + width - 1) // width, blk, j0, nj
    for f in range(F):
        db_acc[f] = 0.0
    if N == 0:
        return
    with nogil:
        for blk in prange(nblocks, num_threads=n_threads, schedule="dynamic"):
            j0 = blk * width
            nj = min(width, C - j0)
            for n in range(N):   # this block of dw sums the images in order 0, 1, ...
                _gemm(False, True, F, nj, P, <floating>1.0, &dout[n, 0, 0, 0], P,
                      &x[n, j0, 0, 0], P, <floating>(0.0 if n == 0 else 1.0),
                      &dw[0, j0, 0, 0], C)
        for n in prange(N, num_threads=n_threads, schedule="dynamic"):
            _gemm(True, False, C, P, F, <floating>1.0, &w[0, 0, 0, 0], C, &dout[n, 0, 0, 0], P,
                  <floating>0.0, &dx[n, 0, 0, 0], P)
        if floating is float:
            status = fc_conv_gather_dout_f32(&dout[0, 0, 0, 0], NULL, &db_acc[0], N, F, P,
                                             n_threads)
        else:
            status = fc_conv_gather_dout_f64(&dout[0, 0, 0, 0], NULL, &db_acc[0], N, F, P,
                                             n_threads)
    _check(status, "fc_conv_gather_dout")


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


# ------------------------------------------------------------------------ batchnorm


def batchnorm_stats(const floating[:, :, ::1] x,   # IN  (N, C, L), N*L >= 1
                    double[::1] mean,              # OUT (C,)
                    double[::1] var,               # OUT (C,) biased
                    int n_threads):
    """Per-channel mean and biased variance over axes 0 and 2, in double."""
    cdef int status
    with nogil:
        if floating is float:
            status = fc_batchnorm_stats_f32(&x[0, 0, 0], &mean[0], &var[0], x.shape[0],
                                            x.shape[1], x.shape[2], n_threads)
        else:
            status = fc_batchnorm_stats_f64(&x[0, 0, 0], &mean[0], &var[0], x.shape[0],
                                            x.shape[1], x.shape[2], n_threads)
    _check(status, "fc_batchnorm_stats")


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
    """Two passes: the per-channel sums, then the fused dx formula (see csrc)."""
    cdef int status
    with nogil:
        if floating is float:
            status = fc_batchnorm_bwd_reduce_f32(&dout[0, 0, 0], &x[0, 0, 0], &mean[0],
                                                 &invstd[0], &dgamma[0], &dbeta[0],
                                                 x.shape[0], x.shape[1], x.shape[2], n_threads)
            status |= fc_batchnorm_bwd_dx_f32(&dout[0, 0, 0], &x[0, 0, 0], &gamma[0], &mean[0],
                                              &invstd[0], &dgamma[0], &dbeta[0], &dx[0, 0, 0],
                                              x.shape[0], x.shape[1], x.shape[2], training,
                                              n_threads)
        else:
            status = fc_batchnorm_bwd_reduce_f64(&dout[0, 0, 0], &x[0, 0, 0], &mean[0],
                                                 &invstd[0], &dgamma[0], &dbeta[0],
                                                 x.shape[0], x.shape[1], x.shape[2], n_threads)
            status |= fc_batchnorm_bwd_dx_f64(&dout[0, 0, 0], &x[0, 0, 0], &gamma[0], &mean[0],
                                              &invstd[0], &dgamma[0], &dbeta[0], &dx[0, 0, 0],
                                              x.shape[0], x.shape[1], x.shape[2], training,
                                              n_threads)
    _check(status, "fc_batchnorm_bwd")
