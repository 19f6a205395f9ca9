# Declarations of csrc/include/fastcnn/fastcnn.h for Cython: the C kernels never raise,
# never touch Python objects and run without the GIL, hence `noexcept nogil` everywhere.
# Every kernel returns FC_OK (0), or FC_EINVAL for an impossible geometry (a bug if seen).

from libc.stdint cimport int8_t, int64_t

cdef extern from "fastcnn/fastcnn.h" nogil:
    ctypedef int64_t fc_index_t

    ctypedef struct fc_geom:
        fc_index_t n, c, h, w
        fc_index_t kh, kw, sh, sw
        fc_index_t pad_top, pad_left
        fc_index_t oh, ow
        fc_index_t dh, dw

    ctypedef struct fc_conv_plan:
        fc_index_t f, groups, nb, slot, shared
        int is_1x1, winograd

    ctypedef void (*fc_sgemm_fn)(char *transa, char *transb, int *m, int *n, int *k,
                                 float *alpha, float *a, int *lda, float *b, int *ldb,
                                 float *beta, float *c, int *ldc) noexcept nogil
    ctypedef void (*fc_dgemm_fn)(char *transa, char *transb, int *m, int *n, int *k,
                                 double *alpha, double *a, int *lda, double *b, int *ldb,
                                 double *beta, double *c, int *ldc) noexcept nogil

    int FC_OK

    int fc_openmp_enabled() noexcept
    int fc_max_threads() noexcept
    int fc_openmp_release() noexcept

    # im2col / col2im (csrc/fc_im2col_impl.h)
    int fc_im2col_f32(const float *x, float *cols, const fc_geom *g, int n_threads) noexcept
    int fc_im2col_f64(const double *x, double *cols, const fc_geom *g, int n_threads) noexcept
    int fc_col2im_f32(const float *cols, float *x, const fc_geom *g, int n_threads) noexcept
    int fc_col2im_f64(const double *cols, double *x, const fc_geom *g, int n_threads) noexcept

    # convolution (csrc/fc_conv_impl.h)
    int fc_conv2d_fwd_f32(const float *x, const float *w, const float *b, float *out,
                          float *work, const fc_geom *g, const fc_conv_plan *p,
                          fc_sgemm_fn gemm, int n_threads) noexcept
    int fc_conv2d_fwd_f64(const double *x, const double *w, const double *b, double *out,
                          double *work, const fc_geom *g, const fc_conv_plan *p,
                          fc_dgemm_fn gemm, int n_threads) noexcept
    int fc_conv2d_bwd_f32(const float *dout, const float *x, const float *w, float *dx,
                          float *dw, double *db, float *dw_parts, double *db_parts,
                          fc_index_t n_parts, float *work, const fc_geom *g,
                          const fc_conv_plan *p, int need_dx, fc_sgemm_fn gemm,
                          int n_threads) noexcept
    int fc_conv2d_bwd_f64(const double *dout, const double *x, const double *w, double *dx,
                          double *dw, double *db, double *dw_parts, double *db_parts,
                          fc_index_t n_parts, double *work, const fc_geom *g,
                          const fc_conv_plan *p, int need_dx, fc_dgemm_fn gemm,
                          int n_threads) noexcept
    int fc_depthwise_fwd_f32(const float *x, const float *w, const float *b, float *out,
                             const fc_geom *g, fc_index_t f, int n_threads) noexcept
    int fc_depthwise_fwd_f64(const double *x, const double *w, const double *b, double *out,
                             const fc_geom *g, fc_index_t f, int n_threads) noexcept
    int fc_depthwise_bwd_f32(const float *dout, const float *x, const float *w, float *dx,
                             double *dw, double *db, const fc_geom *g, fc_index_t f,
                             int need_dx, int n_threads) noexcept
    int fc_depthwise_bwd_f64(const double *dout, const double *x, const double *w, double *dx,
                             double *dw, double *db, const fc_geom *g, fc_index_t f,
                             int need_dx, int n_threads) noexcept

    # max pooling (csrc/fc_maxpool_impl.h)
    int fc_maxpool2d_fwd_f32(const float *x, float *y, fc_index_t *argmax, const fc_geom *g,
                             int n_threads) noexcept
    int fc_maxpool2d_fwd_f64(const double *x, double *y, fc_index_t *argmax, const fc_geom *g,
                             int n_threads) noexcept
    int fc_maxpool2d_bwd_f32(const float *dy, const fc_index_t *argmax, float *dx,
                             const fc_geom *g, int n_threads) noexcept
    int fc_maxpool2d_bwd_f64(const double *dy, const fc_index_t *argmax, double *dx,
                             const fc_geom *g, int n_threads) noexcept
    int fc_maxpool2x2_fwd_f32(const float *x, float *y, int8_t *code, const fc_geom *g,
                              int n_threads) noexcept
    int fc_maxpool2x2_fwd_f64(const double *x, double *y, int8_t *code, const fc_geom *g,
                              int n_threads) noexcept
    int fc_maxpool2x2_bwd_f32(const float *dy, const int8_t *code, float *dx, const fc_geom *g,
                              int n_threads) noexcept
    int fc_maxpool2x2_bwd_f64(const double *dy, const int8_t *code, double *dx,
                              const fc_geom *g, int n_threads) noexcept

    # batch norm on (N, C, L) (csrc/fc_batchnorm_impl.h)
    int fc_batchnorm_fwd_train_f32(const float *x, const float *gamma, const float *beta,
                                   double eps, double *mean, double *var, double *invstd,
                                   float *out, fc_index_t n, fc_index_t c, fc_index_t l,
                                   int n_threads) noexcept
    int fc_batchnorm_fwd_train_f64(const double *x, const double *gamma, const double *beta,
                                   double eps, double *mean, double *var, double *invstd,
                                   double *out, fc_index_t n, fc_index_t c, fc_index_t l,
                                   int n_threads) noexcept
    int fc_batchnorm_apply_f32(const float *x, const float *gamma, const float *beta,
                               const double *mean, const double *invstd, float *out,
                               fc_index_t n, fc_index_t c, fc_index_t l, int n_threads) noexcept
    int fc_batchnorm_apply_f64(const double *x, const double *gamma, const double *beta,
                               const double *mean, const double *invstd, double *out,
                               fc_index_t n, fc_index_t c, fc_index_t l, int n_threads) noexcept
    int fc_batchnorm_bwd_f32(const float *dout, const float *x, const float *gamma,
                             const double *mean, const double *invstd, float *dx,
                             double *dgamma, double *dbeta, fc_index_t n, fc_index_t c,
                             fc_index_t l, int training, int n_threads) noexcept
    int fc_batchnorm_bwd_f64(const double *dout, const double *x, const double *gamma,
                             const double *mean, const double *invstd, double *dx,
                             double *dgamma, double *dbeta, fc_index_t n, fc_index_t c,
                             fc_index_t l, int training, int n_threads) noexcept

    # average pooling over rectangle tables (csrc/fc_avgpool_impl.h)
    ctypedef struct fc_windows:
        fc_index_t n, c, h, w, oh, ow
        const fc_index_t *row_start
        const fc_index_t *row_stop
        const fc_index_t *col_start
        const fc_index_t *col_stop

    int fc_avgpool2d_fwd_f32(const float *x, const float *divisor, float *y,
                             const fc_windows *win, int n_threads) noexcept
    int fc_avgpool2d_fwd_f64(const double *x, const double *divisor, double *y,
                             const fc_windows *win, int n_threads) noexcept
    int fc_avgpool2d_bwd_f32(const float *dy, const float *divisor, float *dx,
                             const fc_windows *win, int n_threads) noexcept
    int fc_avgpool2d_bwd_f64(const double *dy, const double *divisor, double *dx,
                             const fc_windows *win, int n_threads) noexcept
