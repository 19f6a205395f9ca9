/*
 * fc_batchnorm_impl.h -- type-generic batch normalization kernels. Never compiled alone:
 * fc_batchnorm.c includes it with FC_T = float / double.
 *
 * x is seen as (N, C, L): L = H*W for images ("spatial" batch norm), L = 1 for (N, D).
 * Statistics run over axes 0 and 2, M = N*L values per channel, always in DOUBLE (also
 * for float32 data), exactly like fastcnn/kernels/reference.py:
 *   stats    (reference.py: batchnorm_forward, training branch)
 *            mean[c] = sum(x) / M;  var[c] = sum((x - mean)^2) / M   (biased; two passes,
 *            because the one-pass sum(x^2)/M - mean^2 cancels badly when |mean| >> std)
 *   apply    (reference.py: batchnorm_forward, last two lines)
 *            out = (T)(gamma[c] * ((x - mean[c]) * invstd[c]) + beta[c])   in double
 *   bwd_reduce (reference.py: batchnorm_backward, first three lines)
 *            dbeta[c] = sum(dout);  dgamma[c] = sum(dout * xhat),  xhat = (x - mean)*invstd
 *            (xhat is recomputed from x with the same double operations as the reference)
 *   bwd_dx   (reference.py: batchnorm_backward)
 *            training:  dx = (gamma*invstd / M) * ((M*dout - dbeta) - xhat*dgamma)
 *            inference: dx = (gamma*invstd) * dout
 * The operations are written in the reference's order (no -ffast-math, ISO C mode so no FMA
 * contraction), which makes most results bitwise equal to the reference.
 *
 * Loop order and threading: the reductions are parallel over blocks of channels; within a
 * block the loop is n -> c -> l, so a (N, D) input (L == 1) is read row by row instead of
 * with stride C. Each channel's sum is accumulated by one thread in n-then-l order whatever
 * the block size or thread count: results do not depend on the thread count. The
 * elementwise passes (apply, bwd_dx) are parallel over the N*C planes of length L.
 */

int FC_NAME(fc_batchnorm_stats)(const FC_T *FC_RESTRICT x, double *FC_RESTRICT mean,
                                double *FC_RESTRICT var, fc_index_t n, fc_index_t c,
                                fc_index_t l, int n_threads)
{
    if (n < 1 || c < 1 || l < 1) return FC_EINVAL;
    const fc_index_t cb = fc_bn_block(l), nblocks = (c + cb - 1) / cb;
    const double m = (double)n * (double)l;
    const int nt = fc_threads_for(n_threads, nblocks);
    fc_index_t blk;
    FC_OMP_PARALLEL_FOR(nt)
    for (blk = 0; blk < nblocks; blk++) {
        const fc_index_t c0 = blk * cb, c1 = c0 + cb < c ? c0 + cb : c;
        for (fc_index_t ch = c0; ch < c1; ch++) mean[ch] = 0.0;
        for (fc_index_t img = 0; img < n; img++)
            for (fc_index_t ch = c0; ch < c1; ch++) {
                const FC_T *p = x + (img * c + ch) * l;
                double s = mean[ch];
                for (fc_index_t k = 0; k < l; k++) s += (double)p[k];
                mean[ch] = s;
            }
        for (fc_index_t ch = c0; ch < c1; ch++) {
            mean[ch] /= m;
            var[ch] = 0.0;
        }
        for (fc_index_t img = 0; img < n; img++)
            for (fc_index_t ch = c0; ch < c1; ch++) {
                const FC_T *p = x + (img * c + ch) * l;
                const double mu = mean[ch];
                double s = var[ch];
                for (fc_index_t k = 0; k < l; k++) {
                    const double d = (double)p[k] - mu;
                    s += d * d;
                }
                var[ch] = s;
            }
        for (fc_index_t ch = c0; ch < c1; ch++) var[ch] /= m;
    }
    return FC_OK;
}

int FC_NAME(fc_batchnorm_apply)(const FC_T *FC_RESTRICT x, const FC_T *FC_RESTRICT gamma,
                                const FC_T *FC_RESTRICT beta, const double *FC_RESTRICT mean,
                                const double *FC_RESTRICT invstd, FC_T *FC_RESTRICT out,
                                fc_index_t n, fc_index_t c, fc_index_t l, int n_threads)
{
    if (n < 0 || c < 1 || l < 0) return FC_EINVAL;
    const int nt = fc_threads_for(n_threads, n * c);
    fc_index_t nc;
    FC_OMP_PARALLEL_FOR(nt)
    for (nc = 0; nc < n * c; nc++) {
        const fc_index_t ch = nc % c;
        const double mu = mean[ch], is = invstd[ch], ga = (double)gamma[ch], be = (double)beta[ch];
        const FC_T *p = x + nc * l;
        FC_T *q = out + nc * l;
        for (fc_index_t k = 0; k < l; k++) q[k] = (FC_T)(ga * (((double)p[k] - mu) * is) + be);
    }
    return FC_OK;
}

int FC_NAME(fc_batchnorm_bwd_reduce)(const FC_T *FC_RESTRICT dout, const FC_T *FC_RESTRICT x,
                                     const double *FC_RESTRICT mean,
                                     const double *FC_RESTRICT invstd, double *FC_RESTRICT dgamma,
                                     double *FC_RESTRICT dbeta, fc_index_t n, fc_index_t c,
                                     fc_index_t l, int n_threads)
{
    if (n < 0 || c < 1 || l < 0) return FC_EINVAL;
    const fc_index_t cb = fc_bn_block(l), nblocks = (c + cb - 1) / cb;
    const int nt = fc_threads_for(n_threads, nblocks);
    fc_index_t blk;
    FC_OMP_PARALLEL_FOR(nt)
    for (blk = 0; blk < nblocks; blk++) {
        const fc_index_t c0 = blk * cb, c1 = c0 + cb < c ? c0 + cb : c;
        for (fc_index_t ch = c0; ch < c1; ch++) dgamma[ch] = dbeta[ch] = 0.0;
        for (fc_index_t img = 0; img < n; img++)
            for (fc_index_t ch = c0; ch < c1; ch++) {
                const FC_T *d = dout + (img * c + ch) * l, *p = x + (img * c + ch) * l;
                const double mu = mean[ch], is = invstd[ch];
                double sb = dbeta[ch], sg = dgamma[ch];
                for (fc_index_t k = 0; k < l; k++) {
                    const double dv = (double)d[k];
                    sb += dv;
                    sg += dv * (((double)p[k] - mu) * is);
                }
                dbeta[ch] = sb;
                dgamma[ch] = sg;
            }
    }
    return FC_OK;
}

int FC_NAME(fc_batchnorm_bwd_dx)(const FC_T *FC_RESTRICT dout, const FC_T *FC_RESTRICT x,
                                 const FC_T *FC_RESTRICT gamma, const double *FC_RESTRICT mean,
                                 const double *FC_RESTRICT invstd,
                                 const double *FC_RESTRICT dgamma,
                                 const double *FC_RESTRICT dbeta, FC_T *FC_RESTRICT dx,
                                 fc_index_t n, fc_index_t c, fc_index_t l, int training,
                                 int n_threads)
{
    if (n < 0 || c < 1 || l < 0) return FC_EINVAL;
    const double m = (double)n * (double)l;
    const int nt = fc_threads_for(n_threads, n * c);
    fc_index_t nc;
    FC_OMP_PARALLEL_FOR(nt)
    for (nc = 0; nc < n * c; nc++) {
        const fc_index_t ch = nc % c;
        const double scale = (double)gamma[ch] * invstd[ch];
        const FC_T *d = dout + nc * l, *p = x + nc * l;
        FC_T *q = dx + nc * l;
        if (training) {
            const double k_ = scale / m, mu = mean[ch], is = invstd[ch];
            const double db = dbeta[ch], dg = dgamma[ch];
            for (fc_index_t k = 0; k < l; k++) {
                const double xhat = ((double)p[k] - mu) * is;
                q[k] = (FC_T)(k_ * ((m * (double)d[k] - db) - xhat * dg));
            }
        } else {
            for (fc_index_t k = 0; k < l; k++) q[k] = (FC_T)(scale * (double)d[k]);
        }
    }
    return FC_OK;
}
