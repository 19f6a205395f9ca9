/*
 * fc_batchnorm_impl.h -- type-generic batch normalization kernels. Never compiled alone:
 * fc_batchnorm.c includes it with FC_T = float / double.
 *
 * x is seen as (N, C, L): L = H*W for images ("spatial" batch norm), L = 1 for (N, D).
 * Statistics run over axes 0 and 2, M = N*L values per channel, always in DOUBLE (also
 * for float32 data), like fastcnn/kernels/reference.py:
 *   fwd_train (reference.py: batchnorm_forward, training branch)
 *            mean[c] = sum(x) / M;  var[c] = sum((x - mean)^2) / M   (biased; two passes,
 *            because the one-pass sum(x^2)/M - mean^2 cancels badly when |mean| >> std)
 *            invstd[c] = 1 / sqrt(var[c] + eps)
 *            out = (T)(gamma[c] * ((x - mean[c]) * invstd[c]) + beta[c])   in double
 *   apply    (inference: the same last line with the running statistics)
 *   bwd      (reference.py: batchnorm_backward)
 *            dbeta[c] = sum(dout);  dgamma[c] = sum(dout * xhat),  xhat = (x - mean)*invstd
 *            training:  dx = (gamma*invstd / M) * ((M*dout - dbeta) - xhat*dgamma)
 *            inference: dx = (gamma*invstd) * dout
 *
 * Memory traffic (the cost here: these kernels are bandwidth bound). The simple version
 * makes one pass over the whole tensor per formula line: 3 reads of x + 1 write forward,
 * 4 reads + 1 write backward. Here one OpenMP work item does ALL the passes of ONE channel
 * (or of a block of 64 channels when L == 1) back to back: a channel of the benchmark
 * shape (64, 64, 32, 32) is 256 KB per tensor, so its second and third passes hit the
 * core's L2 cache and only the first pass reads memory. Same formulas, same two-pass
 * statistics; about one read of each input and one write of each output from memory.
 *
 * Sums: `s += (double)p[k]` is a serial dependency chain (one add per ~4 cycles) that the
 * compiler may not vectorize without -ffast-math (which would reorder it). fc_sum* below
 * carry `#pragma omp simd reduction(+: s)` (FC_OMP_SIMD_SUM, fc_omp.h): the compiler keeps
 * one partial sum per vector lane and adds the lanes at the end -- the same sum in another
 * order, fixed by the build (the vector width), never by the thread count.
 *
 * Threading: items (channels or blocks of 64 channels) are shared out by OpenMP with a
 * dynamic schedule; each item's results are computed by one thread in a fixed order, so
 * results are bitwise identical for any thread count. The elementwise arithmetic is
 * written in the reference's order (no -ffast-math, ISO C mode: no FMA contraction).
 */

/* sum_k p[k] in double */
static inline double FC_NAME(fc_sum)(const FC_T *FC_RESTRICT p, fc_index_t l)
{
    double s = 0.0;
    FC_OMP_SIMD_SUM(s)
    for (fc_index_t k = 0; k < l; k++) s += (double)p[k];
    return s;
}

/* sum_k (p[k] - mu)^2, accumulated in double; each square is formed in T from the
 * centred value ((p[k] - mu.hi) - mu.lo) (see fc_bn_split below): every term is positive
 * and accurate to a few T-ulps, so the sum is too (no cancellation) */
typedef struct FC_NAME(fc_bn_center) { FC_T hi, lo; } FC_NAME(fc_bn_center);

static inline FC_NAME(fc_bn_center) FC_NAME(fc_bn_split)(double mu)
{
    FC_NAME(fc_bn_center) c;
    c.hi = (FC_T)mu;
    c.lo = (FC_T)(mu - (double)c.hi);
    return c;
}


static inline double FC_NAME(fc_sum_sqdev)(const FC_T *FC_RESTRICT p, fc_index_t l,
                                           FC_NAME(fc_bn_center) mu)
{
    double s = 0.0;
    FC_OMP_SIMD_SUM(s)
    for (fc_index_t k = 0; k < l; k++) {
        const FC_T d = (p[k] - mu.hi) - mu.lo;
        s += (double)(d * d);
    }
    return s;
}

/* *sb += sum_k d[k];  *sg += sum_k d[k] * xhat[k], xhat = ((p[k] - mu.hi) - mu.lo) * is,
 * products in T, sums in double (term errors are a few T-ulps each and independent) */
static inline void FC_NAME(fc_sum_dout_xhat)(const FC_T *FC_RESTRICT d, const FC_T *FC_RESTRICT p,
                                             fc_index_t l, FC_NAME(fc_bn_center) mu, FC_T is,
                                             double *sb, double *sg)
{
    double b = 0.0, g = 0.0;
    FC_OMP_SIMD_SUM2(b, g)
    for (fc_index_t k = 0; k < l; k++) {
        b += (double)d[k];
        g += (double)(d[k] * (((p[k] - mu.hi) - mu.lo) * is));
    }
    *sb += b;
    *sg += g;
}

/*
 * Elementwise passes in the data type T (float for float32), with per-channel constants
 * rounded to T once. The simple version is the reference's double arithmetic per element,
 * out = (T)(gamma * ((x - mean) * invstd) + beta); here
 *     out = ((x - mu_hi) - mu_lo) * scale + beta,   scale = (T)(gamma * invstd)
 * where mu_hi = (T)mean and mu_lo = (T)(mean - mu_hi) carry the double mean in two T
 * numbers ("double-T" trick): x - mu_hi is exact when x is near the mean (Sterbenz), so the
 * centring keeps full relative accuracy even when |mean| >> std, and the result is within
 * a few T-ulps of the reference. Why: with SSE2 (the x86-64 baseline we compile for) a
 * double op handles 2 values, a float op 4, and the conversions cost too; in double these
 * passes were compute bound (~3 cycles per value), in float they run at memory speed.
 */
/* q[k] = ((p[k] - mu.hi) - mu.lo) * scale + beta over one contiguous run */
static inline void FC_NAME(fc_bn_apply_run)(const FC_T *FC_RESTRICT p, FC_T *FC_RESTRICT q,
                                            fc_index_t l, FC_NAME(fc_bn_center) mu,
                                            FC_T scale, FC_T beta)
{
    for (fc_index_t k = 0; k < l; k++) q[k] = ((p[k] - mu.hi) - mu.lo) * scale + beta;
}

/* Channels per work item: 1 when a channel's run in a row is long (images), else 64
 * channels read row by row (the (N, D) layout: features contiguous, vectorized across
 * features). Depends on L only, never on the thread count. */
#define FC_BN_DENSE_BLOCK 64
static inline fc_index_t FC_NAME(fc_bn_block)(fc_index_t l)
{
    return l > 1 ? 1 : FC_BN_DENSE_BLOCK;
}

int FC_NAME(fc_batchnorm_fwd_train)(const FC_T *FC_RESTRICT x, const FC_T *FC_RESTRICT gamma,
                                    const FC_T *FC_RESTRICT beta, double eps,
                                    double *FC_RESTRICT mean, double *FC_RESTRICT var,
                                    double *FC_RESTRICT invstd, FC_T *FC_RESTRICT out,
                                    fc_index_t n, fc_index_t c, fc_index_t l, int n_threads)
{
    if (n < 1 || c < 1 || l < 1) return FC_EINVAL;
    const fc_index_t cb = FC_NAME(fc_bn_block)(l), nblocks = (c + cb - 1) / cb;
    const double m = (double)n * (double)l;
    const int nt = fc_threads_for(n_threads, nblocks);
    fc_index_t blk;
    FC_OMP_PARALLEL_FOR_DYNAMIC(nt)
    for (blk = 0; blk < nblocks; blk++) {
        const fc_index_t c0 = blk * cb, c1 = c0 + cb < c ? c0 + cb : c;
        if (l > 1) {   /* one channel: N runs of length L */
            double s = 0.0;
            for (fc_index_t img = 0; img < n; img++)
                s += FC_NAME(fc_sum)(x + (img * c + c0) * l, l);
            const double mu = s / m;
            double v = 0.0;
            for (fc_index_t img = 0; img < n; img++)
                v += FC_NAME(fc_sum_sqdev)(x + (img * c + c0) * l, l,
                                           FC_NAME(fc_bn_split)(mu));
            v /= m;
            const double is = 1.0 / sqrt(v + eps);
            mean[c0] = mu;
            var[c0] = v;
            invstd[c0] = is;
            const FC_NAME(fc_bn_center) muc = FC_NAME(fc_bn_split)(mu);
            const FC_T scale = (FC_T)((double)gamma[c0] * is);
            for (fc_index_t img = 0; img < n; img++)
                FC_NAME(fc_bn_apply_run)(x + (img * c + c0) * l, out + (img * c + c0) * l, l, muc,
                                         scale, beta[c0]);
        } else {       /* L == 1: channels c0..c1 of every row; vectorized across channels */
            /* the same formulas as the l > 1 branch, with per-channel locals (FC_BN_DENSE_BLOCK
             * wide) so that the row loops are plain vector loops over the block */
            const fc_index_t nc = c1 - c0;
            double s[FC_BN_DENSE_BLOCK] = {0}, v[FC_BN_DENSE_BLOCK] = {0};
            FC_T hi[FC_BN_DENSE_BLOCK], lo[FC_BN_DENSE_BLOCK], sc[FC_BN_DENSE_BLOCK];
            for (fc_index_t img = 0; img < n; img++) {
                const FC_T *FC_RESTRICT row = x + img * c + c0;
                for (fc_index_t k = 0; k < nc; k++) s[k] += (double)row[k];
            }
            for (fc_index_t k = 0; k < nc; k++) {
                const FC_NAME(fc_bn_center) muc = FC_NAME(fc_bn_split)(s[k] / m);
                hi[k] = muc.hi;
                lo[k] = muc.lo;
            }
            for (fc_index_t img = 0; img < n; img++) {
                const FC_T *FC_RESTRICT row = x + img * c + c0;
                for (fc_index_t k = 0; k < nc; k++) {
                    const FC_T d = (row[k] - hi[k]) - lo[k];
                    v[k] += (double)(d * d);
                }
            }
            for (fc_index_t k = 0; k < nc; k++) {
                mean[c0 + k] = s[k] / m;
                var[c0 + k] = v[k] / m;
                invstd[c0 + k] = 1.0 / sqrt(var[c0 + k] + eps);
                sc[k] = (FC_T)((double)gamma[c0 + k] * invstd[c0 + k]);
            }
            for (fc_index_t img = 0; img < n; img++) {
                const FC_T *FC_RESTRICT row = x + img * c + c0;
                const FC_T *FC_RESTRICT be = beta + c0;
                FC_T *FC_RESTRICT orow = out + img * c + c0;
                for (fc_index_t k = 0; k < nc; k++)
                    orow[k] = ((row[k] - hi[k]) - lo[k]) * sc[k] + be[k];
            }
        }
    }
    return FC_OK;
}

int FC_NAME(fc_batchnorm_apply)(const FC_T *FC_RESTRICT x, const FC_T *FC_RESTRICT gamma,
                                const FC_T *FC_RESTRICT beta, const double *FC_RESTRICT mean,
                                const double *FC_RESTRICT invstd, FC_T *FC_RESTRICT out,
                                fc_index_t n, fc_index_t c, fc_index_t l, int n_threads)
{
    if (n < 0 || c < 1 || l < 0) return FC_EINVAL;
    const int nt = fc_threads_for(n_threads, n);
    fc_index_t img;
    FC_OMP_PARALLEL_FOR_DYNAMIC(nt)
    for (img = 0; img < n; img++) {   /* one sample (all its channels) per work item */
        if (l == 1) {   /* (N, D): the row's features are contiguous */
            const FC_T *row = x + img * c;
            FC_T *orow = out + img * c;
            for (fc_index_t ch = 0; ch < c; ch++)
                orow[ch] = (FC_T)((double)gamma[ch] * (((double)row[ch] - mean[ch]) * invstd[ch])
                                  + (double)beta[ch]);
        } else {
            for (fc_index_t ch = 0; ch < c; ch++)
                FC_NAME(fc_bn_apply_run)(x + (img * c + ch) * l, out + (img * c + ch) * l, l,
                                         FC_NAME(fc_bn_split)(mean[ch]),
                                         (FC_T)((double)gamma[ch] * invstd[ch]), beta[ch]);
        }
    }
    return FC_OK;
}

int FC_NAME(fc_batchnorm_bwd)(const FC_T *FC_RESTRICT dout, const FC_T *FC_RESTRICT x,
                              const FC_T *FC_RESTRICT gamma, const double *FC_RESTRICT mean,
                              const double *FC_RESTRICT invstd, FC_T *FC_RESTRICT dx,
                              double *FC_RESTRICT dgamma, double *FC_RESTRICT dbeta,
                              fc_index_t n, fc_index_t c, fc_index_t l, int training,
                              int n_threads)
{
    if (n < 1 || c < 1 || l < 1) return FC_EINVAL;
    const fc_index_t cb = FC_NAME(fc_bn_block)(l), nblocks = (c + cb - 1) / cb;
    const double m = (double)n * (double)l;
    const int nt = fc_threads_for(n_threads, nblocks);
    fc_index_t blk;
    FC_OMP_PARALLEL_FOR_DYNAMIC(nt)
    for (blk = 0; blk < nblocks; blk++) {
        const fc_index_t c0 = blk * cb, c1 = c0 + cb < c ? c0 + cb : c;
        if (l > 1) {   /* one channel: the sums, then dx while the channel is in cache */
            const double is = invstd[c0];
            const FC_NAME(fc_bn_center) muc = FC_NAME(fc_bn_split)(mean[c0]);
            const FC_T ist = (FC_T)is;
            double sb = 0.0, sg = 0.0;
            for (fc_index_t img = 0; img < n; img++) {
                const fc_index_t off = (img * c + c0) * l;
                FC_NAME(fc_sum_dout_xhat)(dout + off, x + off, l, muc, ist, &sb, &sg);
            }
            dbeta[c0] = sb;
            dgamma[c0] = sg;
            /* dx = k_ * ((M*dout - dbeta) - xhat*dgamma), k_ = gamma*invstd/M, rewritten
             * as dx = a*dout + (b*xhat + e) with a = k_*M, b = -k_*dgamma, e = -k_*dbeta,
             * xhat = ((x - mu.hi) - mu.lo) * invstd, all in T (see fc_bn_apply_run) */
            const double k_ = (double)gamma[c0] * is / m;
            const FC_T a = (FC_T)((double)gamma[c0] * is), b = (FC_T)(-k_ * sg);
            const FC_T e = (FC_T)(-k_ * sb);
            for (fc_index_t img = 0; img < n; img++) {
                const fc_index_t off = (img * c + c0) * l;
                const FC_T *FC_RESTRICT d = dout + off, *FC_RESTRICT p = x + off;
                FC_T *FC_RESTRICT q = dx + off;
                if (training) {
                    for (fc_index_t k = 0; k < l; k++) {
                        const FC_T xhat = ((p[k] - muc.hi) - muc.lo) * ist;
                        q[k] = a * d[k] + (b * xhat + e);
                    }
                } else {
                    for (fc_index_t k = 0; k < l; k++) q[k] = a * d[k];
                }
            }
        } else {       /* L == 1: channels c0..c1 of every row; vectorized across channels */
            /* the l > 1 branch's formulas with per-channel locals, as in the forward */
            const fc_index_t nc = c1 - c0;
            double sb[FC_BN_DENSE_BLOCK] = {0}, sg[FC_BN_DENSE_BLOCK] = {0};
            FC_T hi[FC_BN_DENSE_BLOCK], lo[FC_BN_DENSE_BLOCK], ist[FC_BN_DENSE_BLOCK];
            FC_T a[FC_BN_DENSE_BLOCK], b[FC_BN_DENSE_BLOCK], e[FC_BN_DENSE_BLOCK];
            for (fc_index_t k = 0; k < nc; k++) {
                const FC_NAME(fc_bn_center) muc = FC_NAME(fc_bn_split)(mean[c0 + k]);
                hi[k] = muc.hi;
                lo[k] = muc.lo;
                ist[k] = (FC_T)invstd[c0 + k];
            }
            for (fc_index_t img = 0; img < n; img++) {
                const FC_T *FC_RESTRICT drow = dout + img * c + c0;
                const FC_T *FC_RESTRICT row = x + img * c + c0;
                for (fc_index_t k = 0; k < nc; k++) {
                    sb[k] += (double)drow[k];
                    sg[k] += (double)(drow[k] * (((row[k] - hi[k]) - lo[k]) * ist[k]));
                }
            }
            for (fc_index_t k = 0; k < nc; k++) {
                const double scale = (double)gamma[c0 + k] * invstd[c0 + k], k_ = scale / m;
                dbeta[c0 + k] = sb[k];
                dgamma[c0 + k] = sg[k];
                a[k] = (FC_T)scale;
                b[k] = (FC_T)(-k_ * sg[k]);
                e[k] = (FC_T)(-k_ * sb[k]);
            }
            for (fc_index_t img = 0; img < n; img++) {
                const FC_T *FC_RESTRICT drow = dout + img * c + c0;
                const FC_T *FC_RESTRICT row = x + img * c + c0;
                FC_T *FC_RESTRICT q = dx + img * c + c0;
                if (training) {
                    for (fc_index_t k = 0; k < nc; k++)
                        q[k] = a[k] * drow[k] +
                               (b[k] * (((row[k] - hi[k]) - lo[k]) * ist[k]) + e[k]);
                } else {
                    for (fc_index_t k = 0; k < nc; k++) q[k] = a[k] * drow[k];
                }
            }
        }
    }
    return FC_OK;
}
