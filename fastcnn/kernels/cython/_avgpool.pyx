"""Thin Cython wrappers over the average-pooling C kernels (csrc/fc_avgpool_impl.h).

Same rules as ``_kernels.pyx``: C-contiguous inputs of one float dtype (``floating``
picks the ``_f32`` / ``_f64`` symbol), caller-allocated outputs, nothing returned, the
GIL released around the C call, a non-zero C status raised as ``RuntimeError``.
Allocation, N == 0 and the caches live in :mod:`fastcnn.kernels.cython.backend`.
"""

from cython cimport floating
from libc.stdint cimport int64_t

from fastcnn.kernels.cython._csrc cimport *


cdef fc_windows _windows(win, Py_ssize_t n, const int64_t[::1] row_start,
                         const int64_t[::1] row_stop, const int64_t[::1] col_start,
                         const int64_t[::1] col_stop) except *:
    """The C view of a ``PoolWindows`` (its tables must outlive the C call)."""
    cdef fc_windows cw
    cw.n, cw.c, cw.h, cw.w = n, win.c, win.h, win.w
    cw.oh, cw.ow = row_start.shape[0], col_start.shape[0]
    cw.row_start, cw.row_stop = &row_start[0], &row_stop[0]
    cw.col_start, cw.col_stop = &col_start[0], &col_stop[0]
    return cw


cdef inline int _check(int status, str what) except -1:
    if status != FC_OK:
        raise RuntimeError(f"{what} returned status {status} (invalid windows: a bug)")
    return 0


def avgpool2d_forward(const floating[:, :, :, ::1] x,    # IN  (N, C, H, W), N >= 1
                      const floating[:, ::1] divisor,    # IN  (OH, OW)
                      floating[:, :, :, ::1] y,          # OUT (N, C, OH, OW)
                      win, int n_threads):
    """``y = (sum of x over each window's rectangle) / divisor``."""
    cdef const int64_t[::1] rs = win.row_start, re = win.row_stop
    cdef const int64_t[::1] cs = win.col_start, ce = win.col_stop
    cdef fc_windows cw = _windows(win, x.shape[0], rs, re, cs, ce)
    cdef int status
    with nogil:
        if floating is float:
            status = fc_avgpool2d_fwd_f32(&x[0, 0, 0, 0], &divisor[0, 0], &y[0, 0, 0, 0],
                                          &cw, n_threads)
        else:
            status = fc_avgpool2d_fwd_f64(&x[0, 0, 0, 0], &divisor[0, 0], &y[0, 0, 0, 0],
                                          &cw, n_threads)
    _check(status, "fc_avgpool2d_fwd")


def avgpool2d_backward(const floating[:, :, :, ::1] dy,  # IN  (N, C, OH, OW), N >= 1
                       const floating[:, ::1] divisor,   # IN  (OH, OW)
                       floating[:, :, :, ::1] dx,        # OUT (N, C, H, W)
                       win, int n_threads):
    """``dx = 0``, then every pixel of a window gets ``+= dy / divisor``."""
    cdef const int64_t[::1] rs = win.row_start, re = win.row_stop
    cdef const int64_t[::1] cs = win.col_start, ce = win.col_stop
    cdef fc_windows cw = _windows(win, dx.shape[0], rs, re, cs, ce)
    cdef int status
    with nogil:
        if floating is float:
            status = fc_avgpool2d_bwd_f32(&dy[0, 0, 0, 0], &divisor[0, 0], &dx[0, 0, 0, 0],
                                          &cw, n_threads)
        else:
            status = fc_avgpool2d_bwd_f64(&dy[0, 0, 0, 0], &divisor[0, 0], &dx[0, 0, 0, 0],
                                          &cw, n_threads)
    _check(status, "fc_avgpool2d_bwd")
