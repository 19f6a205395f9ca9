/*
 * fastcnn.h -- the one public header of fastcnn's C kernels (plain C99, no Python.h).
 *
 * Every kernel exists twice, for float (_f32) and double (_f64); the bodies are written
 * once in csrc/fc_*_impl.h and instantiated by csrc/fc_*.c (the FC_T / FC_NAME trick).
 *
 * One family per file: fc_im2col.c (im2col, col2im), fc_conv.c (convolution: the blocked
 * im2col + GEMM algorithm and the direct depthwise kernel), fc_maxpool.c, fc_batchnorm.c.
 *
 * Conventions (docs/architecture.md, "Kernel contract"):
 *   - layout NCHW, C-contiguous; batch norm sees x as (N, C, L) with L = H*W (or 1);
 *   - all sizes and indices are fc_index_t (int64_t): tensors over 2^31 elements work;
 *   - argument order: const inputs, outputs, sizes, geometry, n_threads;
 *   - every output is fully overwritten: a kernel never adds into what the caller passed
 *     (where a comment below says "+=", the sum starts from 0 inside the same call);
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
 * Sliding-window geometry on an (n, c, h, w) input: window kh x kw, strides sh, sw,
 * dilations dh, dw (window tap (i, j) reads the pixel i*dh rows and j*dw columns from the
 * window's corner; 1 = a dense window). Only the top/left padding and the output size
 * enter the C code: output (oh, ow), tap (i, j) reads input row oh*sh - pad_top + i*dh and
 * column ow*sw - pad_left + j*dw; bottom/right padding only decided oh/ow
 * (fastcnn/kernels/geometry.py, WindowGeometry).
 */
typedef struct fc_geom {
    fc_index_t n, c, h, w;
    fc_index_t kh, kw, sh, sw;
    fc_index_t pad_top, pad_left;
    fc_index_t oh, ow;
    fc_index_t dh, dw;
} fc_geom;

/* The defensive check every window kernel starts with (Python validated the arguments
 * already; a failure here is an internal bug reported as FC_EINVAL): sizes positive (a
 * batch may be empty), padding non-negative. */
static inline int fc_geom_is_valid(const fc_geom *g)
{
    return g->n >= 0 && g->c >= 1 && g->h >= 1 && g->w >= 1 && g->kh >= 1 && g->kw >= 1 &&
           g->sh >= 1 && g->sw >= 1 && g->oh >= 1 && g->ow >= 1 && g->pad_top >= 0 &&
           g->pad_left >= 0 && g->dh >= 1 && g->dw >= 1;
}

/*
 * How the blocked convolution (fc_conv2d_fwd / fc_conv2d_bwd) cuts its work; chosen by
 * fastcnn/kernels/cython/backend.py from the geometry only (never the thread count):
 *   f       output channels F (w is (F, C/groups, KH, KW));
 *   groups  channel groups: input channels [g*C/G, (g+1)*C/G) feed only output channels
 *           [g*F/G, (g+1)*F/G) (1 = an ordinary convolution);
 *   nb      images per block;
 *   slot    workspace elements per thread: (C*KH*KW + F) * nb*OH*OW (0 on the 1x1 path);
 *   is_1x1  1 for a 1x1 kernel, stride 1, no padding: x[n] seen as (C, H*W) is its own
 *           column matrix (no im2col; nb must be 1).
 *   winograd 1: forward and dx by Winograd F(2x2, 3x3) (3x3, stride 1, dilation 1,
 *           groups 1 only); then slot is also >= 16*(C + F)*nb*tiles of the forward's
 *           output and of dx (tiles = ceil(rows/2)*ceil(cols/2) per image);
 *   shared  workspace elements before the thread slots: the transformed filters
 *           (>= 16*F*C with winograd, else 0).
 */
typedef struct fc_conv_plan {
    fc_index_t f, groups, nb, slot, shared;
    int is_1x1, winograd;
} fc_conv_plan;

/* A BLAS ?gemm with the Fortran calling convention (every argument by pointer, matrices
 * column-major), e.g. scipy.linalg.cython_blas.sgemm / dgemm handed over by the Cython
 * layer: the C code never links a BLAS itself. It must be safe to call from several
 * threads at once and should run single-threaded (the caller limits BLAS's own threads). */
typedef void (*fc_sgemm_fn)(char *transa, char *transb, int *m, int *n, int *k, float *alpha,
                            float *a, int *lda, float *b, int *ldb, float *beta, float *c,
                            int *ldc);
typedef void (*fc_dgemm_fn)(char *transa, char *transb, int *m, int *n, int *k, double *alpha,
                            double *a, int *lda, double *b, int *ldb, double *beta, double *c,
                            int *ldc);

/* Build information: 1 when compiled with OpenMP, and omp_get_max_threads() (or 1). */
int fc_openmp_enabled(void);
int fc_max_threads(void);
/* Free the calling thread's OpenMP thread pool (before fork()); 0 on success. */
int fc_openmp_release(void);

#define FC_DECLARE_KERNELS(SUF, T, GEMM)                                                          \
    /* cols[(c*KH+i)*KW+j, (n*OH+oh)*OW+ow] = x_pad[n, c, oh*SH+i*DH, ow*SW+j*DW] (0 in    \
       padding)
       cols: (C*KH*KW, N*OH*OW).  fc_im2col.c */                                             \
    int fc_im2col_##SUF(const T *FC_RESTRICT x, T *FC_RESTRICT cols, const fc_geom *g,       \
                        int n_threads);                                                      \
    /* adjoint of im2col: x = 0; x_pad[n, c, oh*SH+i*DH, ow*SW+j*DW] += cols[...]  */         \
    int fc_col2im_##SUF(const T *FC_RESTRICT cols, T *FC_RESTRICT x, const fc_geom *g,       \
                        int n_threads);                                                      \
    /* out[n, f] = b[f] + sum_{c in f's group, i, j} w[f, c', i, j] x_pad[n, c, oh*SH+i*DH,  \
       ow*SW+j*DW]: im2col + GEMM over blocks of p->nb images, one OpenMP thread per block \
       in its own workspace slot work[t*slot ...].  fc_conv.c */                             \
    int fc_conv2d_fwd_##SUF(const T *FC_RESTRICT x, const T *FC_RESTRICT w,                  \
                            const T *FC_RESTRICT b, T *FC_RESTRICT out, T *FC_RESTRICT work,  \
                            const fc_geom *g, const fc_conv_plan *p, GEMM gemm,              \
                            int n_threads);                                                  \
    /* db = sum dout (double); dw = sum_n dout[n] @ cols[n].T; dx = col2im(W2.T @ dout)     \
       (dx untouched when need_dx == 0). The blocks are split into n_parts fixed runs;     \
       run r sums into dw_parts[r] (F*C/G*KH*KW) and db_parts[r] (F), then the runs are    \
       added in order: the same bits for any n_threads.  fc_conv.c */                        \
    int fc_conv2d_bwd_##SUF(const T *FC_RESTRICT dout, const T *FC_RESTRICT x,               \
                            const T *FC_RESTRICT w, T *FC_RESTRICT dx, T *FC_RESTRICT dw,    \
                            double *FC_RESTRICT db, T *FC_RESTRICT dw_parts,                 \
                            double *FC_RESTRICT db_parts, fc_index_t n_parts,                \
                            T *FC_RESTRICT work, const fc_geom *g, const fc_conv_plan *p,    \
                            int need_dx, GEMM gemm, int n_threads);                          \
    /* depthwise (groups == C, F = M*C): out[n, f] = b[f] + sum_{i,j} w[f, 0, i, j] *        \
       x_pad[n, f/M, oh*SH+i*DH, ow*SW+j*DW], direct loops.  fc_conv.c */                   \
    int fc_depthwise_fwd_##SUF(const T *FC_RESTRICT x, const T *FC_RESTRICT w,               \
                               const T *FC_RESTRICT b, T *FC_RESTRICT out, const fc_geom *g, \
                               fc_index_t f, int n_threads);                                 \
    /* db[f] = sum dout[:, f]; dw[f] = sum_n dout[n, f] (x) x_pad[n, f/M] (the taps), both  \
       in double; dx = the adjoint of the forward (untouched when need_dx == 0). fc_conv.c */ \
    int fc_depthwise_bwd_##SUF(const T *FC_RESTRICT dout, const T *FC_RESTRICT x,            \
                               const T *FC_RESTRICT w, T *FC_RESTRICT dx,                    \
                               double *FC_RESTRICT dw, double *FC_RESTRICT db,               \
                               const fc_geom *g, fc_index_t f, int need_dx, int n_threads);  \
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

FC_DECLARE_KERNELS(f32, float, fc_sgemm_fn)
FC_DECLARE_KERNELS(f64, double, fc_dgemm_fn)

#undef FC_DECLARE_KERNELS

/*
 * Average pooling over rectangle tables (fastcnn/kernels/geometry.py, PoolWindows): output
 * (oh, ow) of every (n, c) plane averages rows [row_start[oh], row_stop[oh]) and columns
 * [col_start[ow], col_stop[ow]) of its input plane. The rectangles are already clipped to
 * the input, so fixed-window pooling with padding or ceil mode and adaptive pooling are
 * all just different tables. The divisor (OH*OW values, same type as x) comes separately.
 */
typedef struct fc_windows {
    fc_index_t n, c, h, w, oh, ow;
    const fc_index_t *row_start, *row_stop; /* (oh,) */
    const fc_index_t *col_start, *col_stop; /* (ow,) */
} fc_windows;

#define FC_DECLARE_AVGPOOL(SUF, T)                                                            \
    /* y[n,c,oh,ow] = (sum over the rectangle of x[n,c], row by row, left to right) /       \
       divisor[oh*OW + ow].  fc_avgpool.c */                                                 \
    int fc_avgpool2d_fwd_##SUF(const T *FC_RESTRICT x, const T *FC_RESTRICT divisor,         \
                               T *FC_RESTRICT y, const fc_windows *win, int n_threads);      \
    /* dx = 0; dx[n,c] += dy[n,c,oh,ow] / divisor[oh*OW + ow] over each rectangle, windows  \
       in (oh, ow) order */                                                                  \
    int fc_avgpool2d_bwd_##SUF(const T *FC_RESTRICT dy, const T *FC_RESTRICT divisor,        \
                               T *FC_RESTRICT dx, const fc_windows *win, int n_threads);

FC_DECLARE_AVGPOOL(f32, float)
FC_DECLARE_AVGPOOL(f64, double)

#undef FC_DECLARE_AVGPOOL

#ifdef __cplusplus
}
#endif

#endif /* FASTCNN_FASTCNN_H */
