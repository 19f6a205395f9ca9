/*
 * fc_im2col_impl.h -- type-generic im2col and col2im. Never compiled alone: fc_im2col.c
 * includes it twice, with FC_T = float / double and FC_NAME(base) = base##_f32 / _f64.
 *
 * im2col  (equals fastcnn/kernels/reference.py: im2col)
 *     cols[(c*KH + i)*KW + j, (n*OH + oh)*OW + ow] = x_pad[n, c, oh*SH + i*DH, ow*SW + j*DW]
 *     x: (N, C, H, W), cols: (C*KH*KW, N*OH*OW); zero where the window covers padding.
 * col2im  (equals reference.py: col2im, the adjoint)
 *     x = 0;  x_pad[n, c, oh*SH + i*DH, ow*SW + j*DW] += cols[(c*KH + i)*KW + j,
 *                                                             (n*OH + oh)*OW + ow]
 *     padding is cropped (its contributions are dropped).
 *
 * Loop order: plane (n, c) -> window tap (i, j) -> output row oh -> output column ow.
 * For a fixed (i, j, oh) the valid columns ow form one range [ow_lo, ow_hi) computed once
 * (fc_valid_range, fc_window.h), so the inner loop has no bounds test: zeros, a strided
 * copy (contiguous when SW == 1), zeros. col2im adds in exactly the reference's order
 * ((i, j) outermost, starting from 0), so its sums are bitwise equal to the reference's.
 *
 * Threading: one OpenMP iteration per (n, c) plane. Planes touch disjoint parts of cols
 * (rows c*KH*KW.., columns of image n) and of x, so there are no races and no reductions.
 */

int FC_NAME(fc_im2col)(const FC_T *FC_RESTRICT x, FC_T *FC_RESTRICT cols, const fc_geom *g,
                       int n_threads)
{
    const fc_index_t N = g->n, C = g->c, H = g->h, W = g->w, KH = g->kh, KW = g->kw;
    const fc_index_t SH = g->sh, SW = g->sw, OH = g->oh, OW = g->ow, DH = g->dh, DW = g->dw;
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
                fc_valid_range(W, g->pad_left, j * DW, SW, OW, &ow_lo, &ow_hi);
                for (fc_index_t oh = 0; oh < OH; oh++, dst += OW) {
                    const fc_index_t ih = oh * SH - g->pad_top + i * DH;
                    if (ih < 0 || ih >= H) {
                        for (fc_index_t ow = 0; ow < OW; ow++) dst[ow] = 0;
                        continue;
                    }
                    /* plane[off + ow*SW] is x[ih, ow*SW - pad_left + j*DW], inside row ih for
                     * every ow in [ow_lo, ow_hi) (an index, not a pointer: no pointer is ever
                     * formed outside the array) */
                    const fc_index_t off = ih * W + j * DW - g->pad_left;
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
    const fc_index_t SH = g->sh, SW = g->sw, OH = g->oh, OW = g->ow, DH = g->dh, DW = g->dw;
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
                fc_valid_range(W, g->pad_left, j * DW, SW, OW, &ow_lo, &ow_hi);
                for (fc_index_t oh = 0; oh < OH; oh++, src += OW) {
                    const fc_index_t ih = oh * SH - g->pad_top + i * DH;
                    if (ih < 0 || ih >= H) continue;   /* a padding row: dropped */
                    const fc_index_t off = ih * W + j * DW - g->pad_left;   /* as in im2col */
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
