/*
 * fc_im2col_impl.h -- type-generic im2col / col2im and the conv helpers around the GEMMs.
 * Never compiled alone: fc_im2col.c includes it twice, with FC_T = float / double and
 * FC_NAME(base) = base##_f32 / base##_f64.
 *
 * im2col  (equals fastcnn/kernels/reference.py: im2col)
 *     cols[(c*KH + i)*KW + j, (n*OH + oh)*OW + ow] = x_pad[n, c, oh*SH + i, ow*SW + j]
 *     x: (N, C, H, W), cols: (C*KH*KW, N*OH*OW); zero where the window covers padding.
 * col2im  (equals reference.py: col2im, the adjoint)
 *     x = 0;  x_pad[n, c, oh*SH + i, ow*SW + j] += cols[(c*KH + i)*KW + j, (n*OH + oh)*OW + ow]
 *     padding is cropped (its contributions are dropped).
 *
 * Loop order: plane (n, c) -> window offset (i, j) -> output row oh -> output column ow.
 * For a fixed (i, j, oh) the valid columns ow form one range [ow_lo, ow_hi) computed once
 * (fc_valid_range), so the inner loop has no bounds test: zeros, a strided copy (contiguous
 * when SW == 1), zeros. col2im adds in exactly the reference's order ((i, j) outermost,
 * starting from 0), so its sums are bitwise equal to the reference's.
 *
 * Threading: one OpenMP iteration per (n, c) plane. Planes touch disjoint parts of cols
 * (rows c*KH*KW.., columns of image n) and of x, so there are no races and no reductions.
 *
 * Conv helpers (used by fastcnn/kernels/_cython/_kernels.pyx around the BLAS GEMMs):
 *   scatter_bias: out[n, f, p] = buf[f, n*P + p] + b[f]  (GEMM result -> NCHW, bias fused)
 *   add_bias:     out[n, f, p] += b[f]                   (1x1 path: GEMM wrote NCHW directly)
 *   gather_dout:  buf[f, n*P + p] = dout[n, f, p] and db_acc[f] += sum (double)
 */

#ifndef FC_VALID_RANGE_DEFINED
#define FC_VALID_RANGE_DEFINED
/* Output positions o in [0, n_out) whose input coordinate o*s - pad + k lies in [0, size):
 * the range [*lo, *hi), possibly empty (lo == hi). Pure integer arithmetic on non-negative
 * numerators, so C's truncating division is a floor here. */
static inline void fc_valid_range(fc_index_t size, fc_index_t pad, fc_index_t k, fc_index_t s,
                                  fc_index_t n_out, fc_index_t *lo, fc_index_t *hi)
{
    fc_index_t a = pad - k;          /* need o*s >= a */
    fc_index_t b = size + pad - k;   /* need o*s <  b */
    fc_index_t l = a <= 0 ? 0 : (a + s - 1) / s;
    fc_index_t h = b <= 0 ? 0 : (b - 1) / s + 1;
    if (l > n_out) l = n_out;
    if (h > n_out) h = n_out;
    if (h < l) h = l;
    *lo = l;
    *hi = h;
}
#endif

int FC_NAME(fc_im2col)(const FC_T *FC_RESTRICT x, FC_T *FC_RESTRICT cols, const fc_geom *g,
                       int n_threads)
{
    const fc_index_t N = g->n, C = g->c, H = g->h, W = g->w, KH = g->kh, KW = g->kw;
    const fc_index_t SH = g->sh, SW = g->sw, OH = g->oh, OW = g->ow;
    const fc_index_t NP = N * OH * OW;   /* columns of cols */
    if (!fc_geom_is_valid(g)) return FC_EINVAL;
    const int nt = fc_threads_for(n_threads, N * C);
    fc_index_t nc;
    FC_OMP_PARALLEL_FOR(nt)
    for (nc = 0; nc < N * C; nc++) {
        const fc_index_t n = nc / C, c = nc % C;
        const FC_T *plane = x + nc * H * W;
        for (fc_index_t i = 0; i < KH; i++) {
            for (fc_index_t j = 0; j < KW; j++) {
                FC_T *dst = cols + ((c * KH + i) * KW + j) * NP + n * OH * OW;
                fc_index_t ow_lo, ow_hi;
                fc_valid_range(W, g->pad_left, j, SW, OW, &ow_lo, &ow_hi);
                for (fc_index_t oh = 0; oh < OH; oh++, dst += OW) {
                    const fc_index_t ih = oh * SH - g->pad_top + i;
                    if (ih < 0 || ih >= H) {
                        for (fc_index_t ow = 0; ow < OW; ow++) dst[ow] = 0;
                        continue;
                    }
                    /* plane[off + ow*SW] is x[ih, ow*SW - pad_left + j], inside row ih for
                     * every ow in [ow_lo, ow_hi) (an index, not a pointer: no pointer is ever
                     * formed outside the array) */
                    const fc_index_t off = ih * W + j - g->pad_left;
                    for (fc_index_t ow = 0; ow < ow_lo; ow++) dst[ow] = 0;
                    if (SW == 1) {
                        for (fc_index_t ow = ow_lo; ow < ow_hi; ow++) dst[ow] = plane[off + ow];
                    } else {
                        for (fc_index_t ow = ow_lo; ow < ow_hi; ow++)
                            dst[ow] = plane[off + ow * SW];
                    }
                    for (fc_index_t ow = ow_hi; ow < OW; ow++) dst[ow] = 0;
                }
            }
        }
    }
    return FC_OK;
}

int FC_NAME(fc_col2im)(const FC_T *FC_RESTRICT cols, FC_T *FC_RESTRICT x, const fc_geom *g,
                       int n_threads)
{
    const fc_index_t N = g->n, C = g->c, H = g->h, W = g->w, KH = g->kh, KW = g->kw;
    const fc_index_t SH = g->sh, SW = g->sw, OH = g->oh, OW = g->ow;
    const fc_index_t NP = N * OH * OW;
    if (!fc_geom_is_valid(g)) return FC_EINVAL;
    const int nt = fc_threads_for(n_threads, N * C);
    fc_index_t nc;
    FC_OMP_PARALLEL_FOR(nt)
    for (nc = 0; nc < N * C; nc++) {
        const fc_index_t n = nc / C, c = nc % C;
        FC_T *plane = x + nc * H * W;
        for (fc_index_t k = 0; k < H * W; k++) plane[k] = 0;
        for (fc_index_t i = 0; i < KH; i++) {
            for (fc_index_t j = 0; j < KW; j++) {
                const FC_T *src = cols + ((c * KH + i) * KW + j) * NP + n * OH * OW;
                fc_index_t ow_lo, ow_hi;
                fc_valid_range(W, g->pad_left, j, SW, OW, &ow_lo, &ow_hi);
                for (fc_index_t oh = 0; oh < OH; oh++, src += OW) {
                    const fc_index_t ih = oh * SH - g->pad_top + i;
                    if (ih < 0 || ih >= H) continue;   /* a padding row: dropped */
                    const fc_index_t off = ih * W + j - g->pad_left;   /* as in im2col */
                    if (SW == 1) {
                        for (fc_index_t ow = ow_lo; ow < ow_hi; ow++) plane[off + ow] += src[ow];
                    } else {
                        for (fc_index_t ow = ow_lo; ow < ow_hi; ow++)
                            plane[off + ow * SW] += src[ow];
                    }
                }
            }
        }
    }
    return FC_OK;
}

int FC_NAME(fc_conv_scatter_bias)(const FC_T *FC_RESTRICT buf, const FC_T *FC_RESTRICT b,
                                  FC_T *FC_RESTRICT out, fc_index_t n, fc_index_t f,
                                  fc_index_t p, int n_threads)
{
    if (n < 0 || f < 1 || p < 1) return FC_EINVAL;
    const int nt = fc_threads_for(n_threads, n * f);
    fc_index_t nf;
    FC_OMP_PARALLEL_FOR(nt)
    for (nf = 0; nf < n * f; nf++) {
        const fc_index_t img = nf / f, ch = nf % f;
        const FC_T *src = buf + ch * (n * p) + img * p;
        FC_T *dst = out + nf * p;
        const FC_T bias = b[ch];
        for (fc_index_t k = 0; k < p; k++) dst[k] = src[k] + bias;
    }
    return FC_OK;
}

int FC_NAME(fc_conv_add_bias)(const FC_T *FC_RESTRICT b, FC_T *FC_RESTRICT out, fc_index_t n,
                              fc_index_t f, fc_index_t p, int n_threads)
{
    if (n < 0 || f < 1 || p < 1) return FC_EINVAL;
    const int nt = fc_threads_for(n_threads, n * f);
    fc_index_t nf;
    FC_OMP_PARALLEL_FOR(nt)
    for (nf = 0; nf < n * f; nf++) {
        FC_T *dst = out + nf * p;
        const FC_T bias = b[nf % f];
        for (fc_index_t k = 0; k < p; k++) dst[k] += bias;
    }
    return FC_OK;
}

int FC_NAME(fc_conv_gather_dout)(const FC_T *FC_RESTRICT dout, FC_T *FC_RESTRICT buf,
                                 double *FC_RESTRICT db_acc, fc_index_t n, fc_index_t f,
                                 fc_index_t p, int n_threads)
{
    if (n < 0 || f < 1 || p < 1) return FC_EINVAL;
    /* One iteration per output channel: db_acc[ch] is summed by one thread, in n-then-p
     * order, so the sum does not depend on the thread count. */
    const int nt = fc_threads_for(n_threads, f);
    fc_index_t ch;
    FC_OMP_PARALLEL_FOR(nt)
    for (ch = 0; ch < f; ch++) {
        double s = db_acc[ch];
        for (fc_index_t img = 0; img < n; img++) {
            const FC_T *src = dout + (img * f + ch) * p;
            if (buf != NULL) {
                FC_T *dst = buf + ch * (n * p) + img * p;
                for (fc_index_t k = 0; k < p; k++) dst[k] = src[k];
            }
            for (fc_index_t k = 0; k < p; k++) s += (double)src[k];
        }
        db_acc[ch] = s;
    }
    return FC_OK;
}
