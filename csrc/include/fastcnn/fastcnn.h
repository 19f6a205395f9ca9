/*
 * fastcnn.h -- the one public header of fastcnn's C kernels (plain C99, no Python.h).
 *
 * Every kernel exists twice, for float (_f32) and double (_f64); the bodies are written
 * once in csrc/fc_*_impl.h and instantiated by csrc/fc_*.c (the FC_T / FC_NAME trick).
 *
 * Conventions (DESIGN.md, STYLE.md section 4.4):
 *   - layout NCHW, C-contiguous; batch norm sees x as (N, C, L) with L = H*W (or 1);
 *   - all sizes and indices are fc_index_t (int64_t): tensors over 2^31 elements work;
 *   - argument order: const inputs, outputs, sizes, geometry, n_threads;
 *   - outputs are fully overwritten (nothing accumulates across calls);
 *   - inputs are valid (the Python dispatcher validates once); kernels never print,
 *     never allocate (except where a comment says why) and return FC_OK, or FC_EINVAL
 *     for an impossible geometry (a defensive check: reaching Python it is a bug).
 *   - n_threads is an upper bound; results are bitwise identical for any value.
 */
#ifndef FASTCNN_FASTCNN_H
#define FASTCNN_FASTCNN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef int64_t fc_index_t;

#if defined(__GNUC__) || defined(__clang__) || defined(_MSC_VER)
#define FC_RESTRICT __restrict
#else
#define FC_RESTRICT
#endif

#define FC_OK 0
#define FC_EINVAL 1

/*
 * Sliding-window geometry on an (n, c, h, w) input: window kh x kw, strides sh, sw.
 * Only the top/left padding and the output size enter the C code: output (oh, ow)
 * covers input rows oh*sh - pad_top ... + kh - 1 and columns ow*sw - pad_left ... + kw - 1;
 * bottom/right padding only decided oh/ow (fastcnn/_shapes.py, WindowGeometry).
 */
typedef struct fc_geom {
    fc_index_t n, c, h, w;
    fc_index_t kh, kw, sh, sw;
    fc_index_t pad_top, pad_left;
    fc_index_t oh, ow;
} fc_geom;

/* The defensive check every window kernel starts with (Python validated the arguments
 * already; a failure here is an internal bug reported as FC_EINVAL): sizes positive (a
 * batch may be empty), padding non-negative. */
static inline int fc_geom_is_valid(const fc_geom *g)
{
    return g->n >= 0 && g->c >= 1 && g->h >= 1 && g->w >= 1 && g->kh >= 1 && g->kw >= 1 &&
           g->sh >= 1 && g->sw >= 1 && g->oh >= 1 && g->ow >= 1 && g->pad_top >= 0 &&
           g->pad_left >= 0;
}

/* Build information: 1 when compiled with OpenMP, and omp_get_max_threads() (or 1). */
int fc_openmp_enabled(void);
int fc_max_threads(void);
/* Free the calling thread's OpenMP thread pool (before fork()); 0 on success. */
int fc_openmp_release(void);

#define FC_DECLARE_KERNELS(SUF, T)                                                            \
    /* cols[(c*KH+i)*KW+j, (n*OH+oh)*OW+ow] = x_pad[n, c, oh*SH+i, ow*SW+j] (0 in padding)  \
       cols: (C*KH*KW, N*OH*OW).  fc_im2col.c */                                             \
    int fc_im2col_##SUF(const T *FC_RESTRICT x, T *FC_RESTRICT cols, const fc_geom *g,       \
                        int n_threads);                                                      \
    /* adjoint of im2col: x = 0; x_pad[n, c, oh*SH+i, ow*SW+j] += cols[...]  */               \
    int fc_col2im_##SUF(const T *FC_RESTRICT cols, T *FC_RESTRICT x, const fc_geom *g,       \
                        int n_threads);                                                      \
    /* out[n, f, p] = buf[f, n*P + p] + b[f]   (buf: (F, N*P), out: (N, F, P)) */             \
    int fc_conv_scatter_bias_##SUF(const T *FC_RESTRICT buf, const T *FC_RESTRICT b,         \
                                   T *FC_RESTRICT out, fc_index_t n, fc_index_t f,           \
                                   fc_index_t p, int n_threads);                             \
    /* out[n, f, p] += b[f]   (in place; the 1x1 path) */                                    \
    int fc_conv_add_bias_##SUF(const T *FC_RESTRICT b, T *FC_RESTRICT out, fc_index_t n,     \
                               fc_index_t f, fc_index_t p, int n_threads);                   \
    /* buf[f, n*P + p] = dout[n, f, p] (if buf != NULL);  db_acc[f] += sum_{n,p} dout[n,f,p] \
       (in double, in n-then-p order) */                                                     \
    int fc_conv_gather_dout_##SUF(const T *FC_RESTRICT dout, T *FC_RESTRICT buf,             \
                                  double *FC_RESTRICT db_acc, fc_index_t n, fc_index_t f,    \
                                  fc_index_t p, int n_threads);                              \
    /* y[n,c,oh,ow] = max over the window (padding never a candidate); argmax = h*W + w      \
       of the first maximum in row-major window order; a NaN wins.  fc_maxpool.c */          \
    int fc_maxpool2d_fwd_##SUF(const T *FC_RESTRICT x, T *FC_RESTRICT y,                     \
                               fc_index_t *FC_RESTRICT argmax, const fc_geom *g,             \
                               int n_threads);                                               \
    /* dx = 0; dx[n, c].flat[argmax[n, c, i, j]] += dy[n, c, i, j] */                        \
    int fc_maxpool2d_bwd_##SUF(const T *FC_RESTRICT dy, const fc_index_t *FC_RESTRICT argmax, \
                               T *FC_RESTRICT dx, const fc_geom *g, int n_threads);          \
    /* 2x2 window, stride 2, no padding (2*OH <= H, 2*OW <= W): y as fc_maxpool2d_fwd and  \
       code[n,c,oh,ow] in 0..3 = which pixel of the window won (row-major), i.e. argmax =  \
       (2*oh + code/2)*W + 2*ow + code%2 */                                                  \
    int fc_maxpool2x2_fwd_##SUF(const T *FC_RESTRICT x, T *FC_RESTRICT y,                    \
                                int8_t *FC_RESTRICT code, const fc_geom *g, int n_threads);  \
    /* dx of fc_maxpool2x2_fwd: the winner gets 0 + dy, every other pixel 0 (write-only) */  \
    int fc_maxpool2x2_bwd_##SUF(const T *FC_RESTRICT dy, const int8_t *FC_RESTRICT code,     \
                                T *FC_RESTRICT dx, const fc_geom *g, int n_threads);         \
    /* training forward: mean[c], var[c] (biased) over axes 0 and 2 of x (N, C, L), in     \
       double, two passes; invstd = 1/sqrt(var + eps); out as in fc_batchnorm_apply.       \
       fc_batchnorm.c */                                                                     \
    int fc_batchnorm_fwd_train_##SUF(const T *FC_RESTRICT x, const T *FC_RESTRICT gamma,     \
                                     const T *FC_RESTRICT beta, double eps,                  \
                                     double *FC_RESTRICT mean, double *FC_RESTRICT var,      \
                                     double *FC_RESTRICT invstd, T *FC_RESTRICT out,         \
                                     fc_index_t n, fc_index_t c, fc_index_t l,               \
                                     int n_threads);                                         \
    /* out = gamma[c] * ((x - mean[c]) * invstd[c]) + beta[c], in double, rounded once */    \
    int fc_batchnorm_apply_##SUF(const T *FC_RESTRICT x, const T *FC_RESTRICT gamma,         \
                                 const T *FC_RESTRICT beta, const double *FC_RESTRICT mean,  \
                                 const double *FC_RESTRICT invstd, T *FC_RESTRICT out,       \
                                 fc_index_t n, fc_index_t c, fc_index_t l, int n_threads);   \
    /* dbeta[c] = sum(dout), dgamma[c] = sum(dout * xhat), xhat = (x - mean) * invstd;    \
       training: dx = gamma*invstd/M * (M*dout - dbeta - xhat*dgamma), M = N*L;             \
       inference (training == 0): dx = gamma*invstd * dout */                                \
    int fc_batchnorm_bwd_##SUF(const T *FC_RESTRICT dout, const T *FC_RESTRICT x,            \
                               const T *FC_RESTRICT gamma, const double *FC_RESTRICT mean,   \
                               const double *FC_RESTRICT invstd, T *FC_RESTRICT dx,          \
                               double *FC_RESTRICT dgamma, double *FC_RESTRICT dbeta,        \
                               fc_index_t n, fc_index_t c, fc_index_t l, int training,       \
                               int n_threads);

FC_DECLARE_KERNELS(f32, float)
FC_DECLARE_KERNELS(f64, double)

#undef FC_DECLARE_KERNELS

#ifdef __cplusplus
}
#endif

#endif /* FASTCNN_FASTCNN_H */
