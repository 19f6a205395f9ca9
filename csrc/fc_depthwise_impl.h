/* fc_depthwise_impl.h -- type-generic depthwise convolution (split out of fc_conv_impl.h).
 * Never compiled alone: fc_conv.c includes it with FC_T / FC_NAME set. */

/*
 * Depthwise convolution (groups == C): output channel f reads only input channel
 * c = f / M, M = F / C filters per channel (Keras' depth_multiplier). A direct kernel: as
 * C tiny GEMMs of (M x KH*KW) @ (KH*KW x P) it would spend its time in GEMM call overhead
 * and in im2col's copies for a few multiply-adds per pixel.
 *
 *   forward   out[n, f, oh, ow] = b[f] + sum_{i, j} w[f, i, j] * x_pad[n, c, oh*SH + i*DH,
 *                                                                 ow*SW + j*DW]
 *   backward  db[f] = sum dout[n, f];  dw[f, i, j] = sum_{n, oh, ow} dout[n, f, oh, ow] *
 *             x_pad[n, c, ...];  dx[n, c] = sum_{f of c, i, j} w[f, i, j] * dout[n, f] moved
 *             back to where tap (i, j) read it (the adjoint, as col2im)
 *
 * Loops: for a fixed output row oh and tap (i, j) the valid output columns are one range
 * [lo, hi) (fc_valid_range), so the innermost loop is a bounds-test-free run over ow that
 * the compiler vectorises when SW == 1 (the same trick as im2col, without the copy); the
 * output row being summed stays in L1 over its KH*KW passes.
 * Each output element gets b, then its taps in row-major (i, j) order. dw and db sums run
 * per output row into a FC_T partial (vectorised: FC_OMP_SIMD_SUM, an order fixed by the
 * build) added into a double accumulator in (n, oh) order; dw and db are returned in
 * double (the caller rounds them once to the data's type).
 *
 * The per-plane and per-channel work is compiled twice on x86-64 Linux with GCC (plain and
 * AVX2, FC_TARGET_CLONES; the CPU picks at load time): twice the vector width, no FMA (ISO
 * mode keeps a*b + c two roundings), so every element is computed in the same order either
 * way; only the lane partial sums of dw/db (FC_OMP_SIMD_SUM) depend on the build's width.
 *
 * Threading: forward one OpenMP iteration per (n, f) plane; backward one per input
 * channel c (its filters' dw and db over all images in order, and its dx planes, in one
 * pass over its data). Every output element is computed by one iteration in a fixed order:
 * bitwise identical for any thread count.
 */

/* One (n, f) output plane: b, then the taps' w[i, j] * x rows added in (i, j) order. */
FC_TARGET_CLONES
static void FC_NAME(fc_depthwise_fwd_plane)(const FC_T *FC_RESTRICT plane,
                                            const FC_T *FC_RESTRICT wf, FC_T bias,
                                            FC_T *FC_RESTRICT out_plane, const fc_geom *g)
{
    const fc_index_t H = g->h, W = g->w, KW = g->kw, OW = g->ow, SW = g->sw;
    for (fc_index_t oh = 0; oh < g->oh; oh++) {
        FC_T *orow = out_plane + oh * OW;
        for (fc_index_t ow = 0; ow < OW; ow++) orow[ow] = bias;
        for (fc_index_t i = 0; i < g->kh; i++) {
            const fc_index_t ih = oh * g->sh - g->pad_top + i * g->dh;
            if (ih < 0 || ih >= H) continue;   /* a padding row adds zeros */
            for (fc_index_t j = 0; j < KW; j++) {
                const FC_T wij = wf[i * KW + j];
                fc_index_t lo, hi;
                fc_valid_range(W, g->pad_left, j * g->dw, SW, OW, &lo, &hi);
                /* plane[off + ow*SW] = x[ih, ow*SW - pad_left + j*DW] (an index, so no
                 * pointer outside the array is ever formed) */
                const fc_index_t off = ih * W + j * g->dw - g->pad_left;
                if (SW == 1) {
                    for (fc_index_t ow = lo; ow < hi; ow++) orow[ow] += wij * plane[off + ow];
                } else {
                    for (fc_index_t ow = lo; ow < hi; ow++)
                        orow[ow] += wij * plane[off + ow * SW];
                }
            }
        }
    }
}

int FC_NAME(fc_depthwise_fwd)(const FC_T *FC_RESTRICT x, const FC_T *FC_RESTRICT w,
                              const FC_T *FC_RESTRICT b, FC_T *FC_RESTRICT out,
                              const fc_geom *g, fc_index_t f, int n_threads)
{
    if (!fc_geom_is_valid(g) || f < 1 || f % g->c != 0) return FC_EINVAL;
    const fc_index_t C = g->c, HW = g->h * g->w, KK = g->kh * g->kw, M = f / C;
    const fc_index_t P = g->oh * g->ow;
    const int nt = fc_threads_for(n_threads, g->n * f);
    fc_index_t nf;
    FC_OMP_PARALLEL_FOR(nt)
    for (nf = 0; nf < g->n * f; nf++) {
        const fc_index_t n = nf / f, fo = nf % f;
        FC_NAME(fc_depthwise_fwd_plane)(x + (n * C + fo / M) * HW, w + fo * KK, b[fo],
                                        out + nf * P, g);
    }
    return FC_OK;
}

/* One output row oh of filter fo of one image, for the backward: every tap (i, j) adds
 * dot(drow, the input row it read) to dw_f[i*KW + j] (double), and, when dx_plane is not
 * NULL, sends w[fo, i, j] * drow back to that input row (the adjoint of the forward). The
 * rows involved (one dout row, KH input rows, KH dx rows) stay in L1 for all taps. */
static inline void FC_NAME(fc_depthwise_bwd_row)(const FC_T *drow, const FC_T *plane,
                                                 FC_T *dx_plane,
                                          const FC_T *wf, double *dw_f, const fc_geom *g,
                                          fc_index_t oh)
{
    const fc_index_t H = g->h, W = g->w, KW = g->kw, SW = g->sw;
    for (fc_index_t i = 0; i < g->kh; i++) {
        const fc_index_t ih = oh * g->sh - g->pad_top + i * g->dh;
        if (ih < 0 || ih >= H) continue;   /* a padding row: contributes and receives 0 */
        for (fc_index_t j = 0; j < KW; j++) {
            fc_index_t lo, hi;
            fc_valid_range(W, g->pad_left, j * g->dw, SW, g->ow, &lo, &hi);
            const fc_index_t off = ih * W + j * g->dw - g->pad_left;
            const FC_T wij = wf[i * KW + j];
            FC_T s = 0;
            if (SW == 1) {
                FC_OMP_SIMD_SUM(s)
                for (fc_index_t ow = lo; ow < hi; ow++) s += drow[ow] * plane[off + ow];
                if (dx_plane != NULL)
                    for (fc_index_t ow = lo; ow < hi; ow++) dx_plane[off + ow] += wij * drow[ow];
            } else {
                FC_OMP_SIMD_SUM(s)
                for (fc_index_t ow = lo; ow < hi; ow++) s += drow[ow] * plane[off + ow * SW];
                if (dx_plane != NULL)
                    for (fc_index_t ow = lo; ow < hi; ow++)
                        dx_plane[off + ow * SW] += wij * drow[ow];
            }
            dw_f[i * KW + j] += (double)s;
        }
    }
}

/* Channel c's whole backward: dw and db of its M filters (summed over the images in order,
 * in double) and, when need_dx, dx[n, c] for every image n. One pass over its data: each
 * dout row and input row is read once for both gradients. */
FC_TARGET_CLONES
static void FC_NAME(fc_depthwise_bwd_channel)(const FC_T *dout, const FC_T *x, const FC_T *w,
                                              FC_T *dx, double *dw, double *db,
                                              const fc_geom *g, fc_index_t f, int need_dx,
                                              fc_index_t c)
{
    const fc_index_t C = g->c, HW = g->h * g->w, KK = g->kh * g->kw, M = f / C;
    const fc_index_t OH = g->oh, OW = g->ow;
    for (fc_index_t k = 0; k < M * KK; k++) dw[c * M * KK + k] = 0.0;
    for (fc_index_t m = 0; m < M; m++) db[c * M + m] = 0.0;
    for (fc_index_t n = 0; n < g->n; n++) {
        const FC_T *plane = x + (n * C + c) * HW;
        FC_T *dx_plane = need_dx ? dx + (n * C + c) * HW : NULL;
        if (dx_plane != NULL)
            for (fc_index_t k = 0; k < HW; k++) dx_plane[k] = 0;
        for (fc_index_t m = 0; m < M; m++) {
            const fc_index_t fo = c * M + m;
            const FC_T *d = dout + (n * f + fo) * OH * OW;
            for (fc_index_t oh = 0; oh < OH; oh++) {
                const FC_T *drow = d + oh * OW;
                FC_T row_sum = 0;
                FC_OMP_SIMD_SUM(row_sum)
                for (fc_index_t ow = 0; ow < OW; ow++) row_sum += drow[ow];
                db[fo] += (double)row_sum;
                FC_NAME(fc_depthwise_bwd_row)(drow, plane, dx_plane, w + fo * KK, dw + fo * KK,
                                              g, oh);
            }
        }
    }
}

int FC_NAME(fc_depthwise_bwd)(const FC_T *FC_RESTRICT dout, const FC_T *FC_RESTRICT x,
                              const FC_T *FC_RESTRICT w, FC_T *FC_RESTRICT dx,
                              double *FC_RESTRICT dw, double *FC_RESTRICT db, const fc_geom *g,
                              fc_index_t f, int need_dx, int n_threads)
{
    if (!fc_geom_is_valid(g) || f < 1 || f % g->c != 0) return FC_EINVAL;
    const int nt = fc_threads_for(n_threads, g->c);
    fc_index_t c;
    FC_OMP_PARALLEL_FOR_DYNAMIC(nt)
    for (c = 0; c < g->c; c++)
        FC_NAME(fc_depthwise_bwd_channel)(dout, x, w, dx, dw, db, g, f, need_dx, c);
    return FC_OK;
}
