"""Thin Cython wrappers over the C kernels of ``csrc/`` (plus BLAS GEMMs for convolution).

Every function takes C-contiguous arrays of one float dtype (the ``floating`` fused type
picks the ``_f32`` or ``_f64`` C symbol at compile time), writes caller-allocated outputs
and returns nothing. Allocation, N == 0 and the caches live in
:mod:`fastcnn.kernels.cython_backend`; argument validation in :mod:`fastcnn.kernels`.
Inputs are ``const`` memoryviews, so read-only arrays work. The C code runs without the
GIL; a non-zero C status (an impossible geometry: a bug) becomes a ``RuntimeError``.

Convolution = im2col + GEMM (BLAS through ``scipy.linalg.cython_blas``), over BLOCKS of
``nb`` images, one OpenMP thread per block with its own workspace slot and single-threaded
BLAS, so that the workspace never grows with the batch size. See the "conv" section below
and the design notes in :mod:`fastcnn.kernels.cython_backend`.
"""

from cython cimport floating
from cython.parallel cimport prange, threadid
from libc.stdint cimport int8_t, int64_t
from scipy.linalg.cython_blas cimport sgemm, dgemm

from fastcnn.kernels.cython._csrc cimport *


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


def gemm(bint trans_a, bint trans_b, floating alpha, const floating[:, ::1] a,
         const floating[:, ::1] b, floating beta, floating[:, ::1] c):
    """Test-only wrapper of ``_gemm``: ``c[...] = alpha * op(a) @ op(b) + beta * c``."""
    cdef int m = c.shape[0], n = c.shape[1]
    cdef int k = a.shape[0] if trans_a else a.shape[1]
    if m == 0 or n == 0 or k == 0:
        raise ValueError("gemm: empty operands are not supported by this test wrapper")
    with nogil:
        _gemm(trans_a, trans_b, m, n, k, alpha, &a[0, 0], <int>a.shape[1], &b[0, 0],
              <int>b.shape[1], beta, &c[0, 0], n)


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
# Design ("OpenMP over images, thread-private workspace, single-threaded BLAS"):
# the batch is cut into BLOCKS of ``nb`` consecutive images (nb from the geometry only:
# enough images for a GEMM of a few hundred columns, see cython_backend.conv_chunk_images).
# A block is handled start to finish by one OpenMP thread, in that thread's own workspace
# slot ``work[t*slot : (t+1)*slot]`` (``cols`` then ``buf``), with single-threaded BLAS:
#
#   forward, per block:   cols = im2col(x[blk])                 (CKK, nb*P)
#                         buf  = W2 @ cols                      (F, nb*P)
#                         out[blk] = buf + b  (to NCHW)
#   backward, per block:  cols = im2col(x[blk]);  d = dout[blk] as (F, nb*P); db_g += sum d
#                         dW_g (+)= d @ cols.T                  (F, CKK)
#                         cols = W2.T @ d;  dx[blk] = col2im(cols)
#
# Simple version it equals: one im2col of the whole batch and three big GEMMs
# (reference.py: conv2d_forward / conv2d_backward). Why not that: the whole-batch column
# matrix grows with N (here the workspace is n_threads slots of one block), and a block's
# columns are still in cache when its GEMM reads them. With nb == 1 the GEMM writes out[n]
# (F, P) directly (no copy to NCHW) and reads dout[n] as it is.
#
# Determinism: forward and dx are per-image independent, whichever thread runs them. dW
# and db are sums over the batch: the blocks are split into G GROUPS of consecutive blocks
# (G from the geometry only), each group's partial dW_g / db_g is accumulated block by block
# in order by one thread (beta = 1 GEMMs), and the partials are summed in group order at
# the end. No step depends on the thread count: results are bitwise identical for any.
# A 1x1 stride-1 unpadded kernel needs no im2col: x[n] seen as (C, H*W) IS cols (nb = 1).


cdef inline int _im2col_1(const floating *x, floating *cols, const fc_geom *cg) noexcept nogil:
    """im2col on one thread (we are already inside an OpenMP loop over blocks)."""
    if floating is float:
        return fc_im2col_f32(x, cols, cg, 1)
    else:
        return fc_im2col_f64(x, cols, cg, 1)


cdef int _conv_fwd_block(const floating *x, const floating *w, const floating *b,
                         floating *out, floating *cols, floating *buf, fc_geom cg,
                         int f, int ckk, int p, bint is_1x1) noexcept nogil:
    """Forward of one block of ``cg.n`` images (pointers already at the block's first image).
    Returns a C status (0 = ok)."""
    cdef int ncols = <int>cg.n * p, status = 0
    cdef const floating *c = x
    if not is_1x1:
        status = _im2col_1(x, cols, &cg)
        c = cols
    if cg.n == 1:   # GEMM straight into out[n] (F, P); then out[n] += b
        _gemm(False, False, f, ncols, ckk, <floating>1.0, w, ckk, c, ncols, <floating>0.0,
              out, ncols)
        if floating is float:
            status |= fc_conv_add_bias_f32(b, out, 1, f, p, 1)
        else:
            status |= fc_conv_add_bias_f64(b, out, 1, f, p, 1)
    else:           # buf (F, nb*P) = W2 @ cols; out[n, f, :] = buf[f, n*P:(n+1)*P] + b[f]
        _gemm(False, False, f, ncols, ckk, <floating>1.0, w, ckk, c, ncols, <floating>0.0,
              buf, ncols)
        if floating is float:
            status |= fc_conv_scatter_bias_f32(buf, b, out, cg.n, f, p, 1)
        else:
            status |= fc_conv_scatter_bias_f64(buf, b, out, cg.n, f, p, 1)
    return status


def conv2d_forward(const floating[:, :, :, ::1] x,    # IN  (N, C, H, W), N >= 1
                   const floating[:, :, :, ::1] w,    # IN  (F, C, KH, KW)
                   const floating[::1] b,             # IN  (F,)
                   floating[:, :, :, ::1] out,        # OUT (N, F, OH, OW)
                   floating[::1] work,                # workspace: n_threads slots of `slot`
                   Py_ssize_t slot,                   # >= (CKK + F) * nb*P (or 0 for 1x1)
                   g, Py_ssize_t nb, bint is_1x1, int n_threads):
    """``out[n] = W2 @ im2col(x[n]) + b``, blocks of ``nb`` images shared out by OpenMP."""
    cdef Py_ssize_t N = x.shape[0], blk, n0, xs, os_
    cdef Py_ssize_t nblocks = (N + nb - 1) // nb
    cdef int f = <int>w.shape[0], ckk = <int>(w.shape[1] * w.shape[2] * w.shape[3])
    cdef int p = <int>(out.shape[2] * out.shape[3]), errors = 0
    cdef fc_geom cg = _geom(g, nb), cgb
    cdef floating *ws
    if N == 0:
        return
    if work.shape[0] < n_threads * slot:
        raise ValueError("conv2d_forward: workspace too small")
    xs = x.shape[1] * x.shape[2] * x.shape[3]
    os_ = out.shape[1] * p
    with nogil:
        # dynamic schedule: a block's result does not depend on which thread runs it, and a
        # thread descheduled by a busy machine does not hold up the others' blocks
        for blk in prange(nblocks, num_threads=n_threads, schedule="dynamic"):
            n0 = blk * nb
            cgb = cg
            cgb.n = min(nb, N - n0)
            ws = &work[0] + threadid() * slot
            errors += _conv_fwd_block(&x[0, 0, 0, 0] + n0 * xs, &w[0, 0, 0, 0], &b[0],
                                      &out[0, 0, 0, 0] + n0 * os_, ws,
                                      ws + (0 if is_1x1 else <Py_ssize_t>ckk * nb * p), cgb, f,
                                      ckk, p, is_1x1)
    _check(errors, "conv2d_forward (fc_im2col / fc_conv_*_bias)")


cdef int _conv_bwd_group(const floating *dout, const floating *x, const floating *w,
                         floating *dx, floating *dw_g, double *db_g, floating *cols,
                         floating *buf, fc_geom cg, Py_ssize_t N, Py_ssize_t nb,
                         Py_ssize_t blk0, Py_ssize_t blk1, int f, int ckk, int p,
                         bint is_1x1, bint need_dx) noexcept nogil:
    """Backward of blocks [blk0, blk1) in order: dW_g (F, CKK) and db_g (F,) get this group's
    sums (dW_g overwritten by the first block, then beta = 1), dx of its images written
    (unless ``need_dx`` is false: then ``dx`` is never touched). Returns a C status."""
    cdef Py_ssize_t blk, n0, xs = cg.c * cg.h * cg.w, ds = <Py_ssize_t>f * p
    cdef int ncols, status = 0
    cdef const floating *c
    cdef const floating *d
    cdef floating *dc
    for blk in range(blk0, blk1):
        n0 = blk * nb
        cg.n = min(nb, N - n0)
        ncols = <int>cg.n * p
        # cols = im2col(x[blk]) (1x1: x[n] itself); d = dout[blk] as (F, nb*P); db_g += sums
        if is_1x1:
            c = x + n0 * xs
        else:
            status |= _im2col_1(x + n0 * xs, cols, &cg)
            c = cols
        if cg.n == 1:   # dout[n] already is (F, P): only sum it into db_g
            d = dout + n0 * ds
            if floating is float:
                status |= fc_conv_gather_dout_f32(d, NULL, db_g, 1, f, p, 1)
            else:
                status |= fc_conv_gather_dout_f64(d, NULL, db_g, 1, f, p, 1)
        else:
            if floating is float:
                status |= fc_conv_gather_dout_f32(dout + n0 * ds, buf, db_g, cg.n, f, p, 1)
            else:
                status |= fc_conv_gather_dout_f64(dout + n0 * ds, buf, db_g, cg.n, f, p, 1)
            d = buf
        # dW_g (F, CKK) (+)= d (F, ncols) @ cols.T   (beta = 0 for the group's first block)
        _gemm(False, True, f, ckk, ncols, <floating>1.0, d, ncols, c, ncols,
              <floating>(0.0 if blk == blk0 else 1.0), dw_g, ckk)
        if not need_dx:
            continue
        # dcols (CKK, ncols) = W2.T @ d, then dx[blk] = col2im(dcols); 1x1: straight into dx
        dc = dx + n0 * xs if is_1x1 else cols
        _gemm(True, False, ckk, ncols, f, <floating>1.0, w, ckk, d, ncols, <floating>0.0,
              dc, ncols)
        if not is_1x1:
            if floating is float:
                status |= fc_col2im_f32(cols, dx + n0 * xs, &cg, 1)
            else:
                status |= fc_col2im_f64(cols, dx + n0 * xs, &cg, 1)
    return status


def conv2d_backward(const floating[:, :, :, ::1] dout,  # IN  (N, F, OH, OW), N >= 1
                    const floating[:, :, :, ::1] x,     # IN  (N, C, H, W)
                    const floating[:, :, :, ::1] w,     # IN  (F, C, KH, KW)
                    floating[:, :, :, ::1] dx,          # OUT (N, C, H, W)
                    floating[:, :, :, ::1] dw,          # OUT (F, C, KH, KW)
                    double[::1] db,                     # OUT (F,) sum of dout, in double
                    floating[:, ::1] dw_parts,          # workspace (G, F*CKK)
                    double[:, ::1] db_parts,            # workspace (G, F), zeroed
                    floating[::1] work, Py_ssize_t slot,   # as in conv2d_forward
                    g, Py_ssize_t nb, bint is_1x1, int n_threads,
                    bint need_dx=True):                 # False: dx is a stand-in, untouched
    """``db = sum(dout)``, ``dW = sum_n dout[n] @ cols[n].T``, ``dx[n] = col2im(W2.T @
    dout[n])``; groups of blocks shared out by OpenMP, partials summed in group order."""
    cdef Py_ssize_t N = x.shape[0], G = dw_parts.shape[0], grp, e, k, ff
    cdef Py_ssize_t nblocks = (N + nb - 1) // nb, size = dw_parts.shape[1]
    cdef int f = <int>w.shape[0], ckk = <int>(w.shape[1] * w.shape[2] * w.shape[3])
    cdef int p = <int>(dout.shape[2] * dout.shape[3]), errors = 0
    cdef fc_geom cg = _geom(g, nb)
    cdef floating *ws
    cdef floating *dwf
    cdef floating s
    cdef double sd
    if N == 0:
        return
    if work.shape[0] < n_threads * slot or G < 1 or G > nblocks or size != f * ckk:
        raise ValueError("conv2d_backward: bad workspace")
    dwf = &dw[0, 0, 0, 0]
    with nogil:
        for grp in prange(G, num_threads=n_threads, schedule="dynamic"):
            ws = &work[0] + threadid() * slot
            # group grp = blocks [grp*nblocks//G, (grp+1)*nblocks//G): a fixed partition
            errors += _conv_bwd_group(&dout[0, 0, 0, 0], &x[0, 0, 0, 0], &w[0, 0, 0, 0],
                                      &dx[0, 0, 0, 0], &dw_parts[grp, 0], &db_parts[grp, 0],
                                      ws, ws + (0 if is_1x1 else <Py_ssize_t>ckk * nb * p),
                                      cg, N, nb,
                                      grp * nblocks // G, (grp + 1) * nblocks // G,
                                      f, ckk, p, is_1x1, need_dx)
        # dw = dW_0 + dW_1 + ... in group order, element by element (static split of the
        # elements: each element is summed by one thread in the same order)
        for e in prange(size, num_threads=n_threads, schedule="static"):
            s = dw_parts[0, e]
            for k in range(1, G):
                s = s + dw_parts[k, e]
            dwf[e] = s
    for ff in range(f):
        sd = 0.0
        for k in range(G):
            sd = sd + db_parts[k, ff]
        db[ff] = sd
    _check(errors, "conv2d_backward (fc_im2col / fc_conv_gather_dout / fc_col2im)")


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
