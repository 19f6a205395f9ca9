/*
 * fc_gemm_impl.h -- the row-major GEMM helper of the convolution kernels (fc_conv_impl.h,
 * fc_winograd_impl.h, fc_depthwise_impl.h share it). Never compiled alone: fc_conv.c
 * includes it with FC_T / FC_NAME / FC_GEMM set, first.
 */

#ifndef FC_GEMM_HELPERS_DEFINED
#define FC_GEMM_HELPERS_DEFINED
/* Compile the marked function for AVX2 and for the baseline, chosen at load time (GCC's
 * function multiversioning through an ifunc, hence x86-64 Linux only); elsewhere one plain
 * version. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define FC_TARGET_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define FC_TARGET_CLONES
#endif

static inline fc_index_t fc_min_index(fc_index_t a, fc_index_t b) { return a < b ? a : b; }
#endif

/* Row-major c = alpha * op(a) @ op(b) + beta * c, op(a): (m, k), op(b): (k, n), through a
 * column-major BLAS. A row-major (r x s) matrix with leading dimension ld is, in memory, the
 * column-major (s x r) matrix of its transpose; so instead of C = A B we ask BLAS for
 * C^T = op(B)^T op(A)^T: swap the operands (b first), swap m and n, keep each operand's own
 * transpose flag (sklearn's _cython_blas trick). No copy is made. Sizes fit an int (checked
 * in Python); BLAS does not write a or b (the casts only drop const for its prototype). */
static inline void FC_NAME(fc_gemm)(FC_GEMM gemm, int trans_a, int trans_b, fc_index_t m,
                                    fc_index_t n, fc_index_t k, FC_T alpha, const FC_T *a,
                                    fc_index_t lda, const FC_T *b, fc_index_t ldb, FC_T beta,
                                    FC_T *c, fc_index_t ldc)
{
    char ta = trans_a ? 't' : 'n', tb = trans_b ? 't' : 'n';
    int im = (int)m, in = (int)n, ik = (int)k, ilda = (int)lda, ildb = (int)ldb;
    int ildc = (int)ldc;
    gemm(&tb, &ta, &in, &im, &ik, &alpha, (FC_T *)b, &ildb, (FC_T *)a, &ilda, &beta, c, &ildc);
}

