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

    int FC_OK

    int fc_openmp_enabled() noexcept
    int fc_max_threads() noexcept
    int fc_openmp_release() noexcept

    # im2col / col2im and the conv helpers (csrc/fc_im2col_impl.h)
    int fc_im2col_f32(const float *x, float *cols, const fc_geom *g, int n_threads) noexcept
    int fc_im2col_f64(const double *x, double *cols, const fc_geom *g, int n_threads) noexcept
    int fc_col2im_f32(const float *cols, float *x, const fc_geom *g, int n_threads) noexcept
    int fc_col2im_f64(const double *cols, double *x, const fc_geom *g, int n_threads) noexcept
    int fc_conv_scatter_bias_f32(const float *buf, const float *b, float *out, fc_index_t n,
                                 fc_index_t f, fc_index_t p, int n_threads) noexcept
    int fc_conv_scatter_bias_f64(const double *buf, const double *b, double *out, fc_index_t n,
                                 fc_index_t f, fc_index_t p, int n_threads) noexcept
    int fc_conv_add_bias_f32(const float *b, float *out, fc_index_t n, fc_index_t f,
                             fc_index_t p, int n_threads) noexcept
    int fc_conv_add_bias_f64(const double *b, double *out, fc_index_t n, fc_index_t f,
                             fc_index_t p, int n_threads) noexcept
    int fc_conv_gather_dout_f32(const float *dout, float *buf, double *db_acc, fc_index_t n,
                                fc_index_t f, fc_index_t p, int n_threads) noexcept
    int fc_conv_gather_dout_f64(const double *dout, double *buf, double *db_acc, fc_index_t n,
                                fc_index_t f, fc_index_t p, int n_threads) noexcept

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
