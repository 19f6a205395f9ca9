/*
 * fc_maxpool_impl.h -- type-generic max pooling, forward and backward. Never compiled alone:
 * fc_maxpool.c includes it with FC_T = float / double.
 *
 * Forward (equals fastcnn/kernels/reference.py: maxpool2d_forward)
 *     y[n, c, oh, ow] = max over the real (non-padding) pixels x[n, c, h, w] with
 *                       h in [oh*SH - PT, oh*SH - PT + KH), w in [ow*SW - PL, ow*SW - PL + KW)
 *     argmax[n, c, oh, ow] = h*W + w of the winner (flat index in the input plane).
 * The window is clipped to the input first, so -inf padding is never a candidate. Pixels
 * are scanned in row-major window order and the best is replaced only on a STRICTLY greater
 * value (ties go to the first maximum), or when the candidate is NaN and the best is not
 * (the first NaN wins and nothing replaces it). A window with no real pixel cannot come
 * from the validated API (padding < window); it would give -inf and argmax -1.
 *
 * Backward (equals reference.py: maxpool2d_backward)
 *     dx = 0;  dx[n, c].flat[argmax[n, c, oh, ow]] += dy[n, c, oh, ow]
 * It ADDS: overlapping windows (stride < size) may pick the same pixel. The additions into
 * one plane happen in (oh, ow) order.
 *
 * The 2x2 stride-2 unpadded forward has its own loop (fc_maxpool2x2_plane), equal to the
 * general one for that geometry.
 *
 * Layout NCHW. Threading: one OpenMP iteration per (n, c) plane; planes are independent
 * (forward reads one input plane and writes one output plane; backward writes one dx
 * plane), so no races and results do not depend on the thread count.
 */

/* The 2x2 stride-2 unpadded case (the common one), one output row from two input rows.
 * Equals the general loop below for that geometry: candidates in row-major window order
 * (a, b on row 2*oh, c, d on row 2*oh + 1), replaced only by a strictly greater value or a
 * NaN when the best is not NaN -- but with no per-window bounds and loop set-up. */
static void FC_NAME(fc_maxpool2x2_plane)(const FC_T *FC_RESTRICT plane, FC_T *FC_RESTRICT yp,
                                         fc_index_t *FC_RESTRICT ap, fc_index_t W,
                                         fc_index_t OH, fc_index_t OW)
{
    for (fc_index_t oh = 0; oh < OH; oh++) {
        const fc_index_t i0 = 2 * oh * W;   /* flat index of the row pair's first pixel */
        const FC_T *r0 = plane + i0, *r1 = r0 + W;
        FC_T *yrow = yp + oh * OW;
        fc_index_t *arow = ap + oh * OW;
        /* Branch-free (random data makes branches unpredictable): the winner is kept as a
         * position 0..3 (a, b, c, d) and turned into the flat index h*W + w at the store.
         * Without NaN the rule is just "replace on strictly greater"; a window holding a
         * NaN (rare; a predictable branch) is redone with the full NaN rule. */
        for (fc_index_t ow = 0; ow < OW; ow++) {
            const fc_index_t j = 2 * ow;
            const FC_T v[4] = {r0[j], r0[j + 1], r1[j], r1[j + 1]};
            FC_T best = v[0];
            int pos = 0;
            pos = v[1] > best ? 1 : pos;
            best = v[1] > best ? v[1] : best;
            pos = v[2] > best ? 2 : pos;
            best = v[2] > best ? v[2] : best;
            pos = v[3] > best ? 3 : pos;
            best = v[3] > best ? v[3] : best;
            /* v != v is the NaN test (no -ffast-math, so it holds) */
            if ((v[0] != v[0]) | (v[1] != v[1]) | (v[2] != v[2]) | (v[3] != v[3])) {
                best = v[0];
                pos = 0;
                for (int k = 1; k < 4; k++)
                    if (v[k] > best || (v[k] != v[k] && best == best)) {
                        best = v[k];
                        pos = k;
                    }
            }
            yrow[ow] = best;
            arow[ow] = i0 + j + (pos & 1) + (fc_index_t)(pos >> 1) * W;
        }
    }
}

static inline int FC_NAME(fc_is_pool2x2)(const fc_geom *g)
{
    return g->kh == 2 && g->kw == 2 && g->sh == 2 && g->sw == 2 && g->pad_top == 0 &&
           g->pad_left == 0 && 2 * g->oh <= g->h && 2 * g->ow <= g->w;
}


int FC_NAME(fc_maxpool2d_fwd)(const FC_T *FC_RESTRICT x, FC_T *FC_RESTRICT y,
                              fc_index_t *FC_RESTRICT argmax, const fc_geom *g, int n_threads)
{
    const fc_index_t N = g->n, C = g->c, H = g->h, W = g->w, KH = g->kh, KW = g->kw;
    const fc_index_t SH = g->sh, SW = g->sw, OH = g->oh, OW = g->ow;
    if (N < 0 || C < 1 || H < 1 || W < 1 || KH < 1 || KW < 1 || SH < 1 || SW < 1 || OH < 1 ||
        OW < 1 || g->pad_top < 0 || g->pad_left < 0)
        return FC_EINVAL;
    const int nt = fc_threads_for(n_threads, N * C);
    const int fast = FC_NAME(fc_is_pool2x2)(g);
    fc_index_t nc;
    FC_OMP_PARALLEL_FOR_DYNAMIC(nt)
    for (nc = 0; nc < N * C; nc++) {
        const FC_T *plane = x + nc * H * W;
        FC_T *yp = y + nc * OH * OW;
        fc_index_t *ap = argmax + nc * OH * OW;
        if (fast) {
            FC_NAME(fc_maxpool2x2_plane)(plane, yp, ap, W, OH, OW);
            continue;
        }
        for (fc_index_t oh = 0; oh < OH; oh++) {
            const fc_index_t h0 = oh * SH - g->pad_top;
            const fc_index_t hs = h0 < 0 ? 0 : h0, he = h0 + KH < H ? h0 + KH : H;
            for (fc_index_t ow = 0; ow < OW; ow++) {
                const fc_index_t w0 = ow * SW - g->pad_left;
                const fc_index_t ws = w0 < 0 ? 0 : w0, we = w0 + KW < W ? w0 + KW : W;
                FC_T best = (FC_T)(-INFINITY);
                fc_index_t arg = -1;
                int nan = 0;
                /* The rule "first pixel, then replace on strictly greater" as selects (no
                 * unpredictable branch); a NaN anywhere in the window (rare) -> redo the
                 * window below with the NaN rule. An empty window (impossible from the
                 * validated API) keeps -inf and -1. */
                if (hs < he && ws < we) {
                    best = plane[hs * W + ws];
                    arg = hs * W + ws;
                }
                for (fc_index_t h = hs; h < he; h++) {
                    for (fc_index_t w = ws; w < we; w++) {
                        const FC_T v = plane[h * W + w];
                        const int take = v > best;
                        best = take ? v : best;
                        arg = take ? h * W + w : arg;
                        nan |= v != v;   /* v != v is the NaN test (no -ffast-math) */
                    }
                }
                if (nan) {
                    arg = -1;
                    for (fc_index_t h = hs; h < he; h++) {
                        for (fc_index_t w = ws; w < we; w++) {
                            const FC_T v = plane[h * W + w];
                            if (arg < 0 || v > best || (v != v && best == best)) {
                                best = v;
                                arg = h * W + w;
                            }
                        }
                    }
                }
                yp[oh * OW + ow] = best;
                ap[oh * OW + ow] = arg;
            }
        }
    }
    return FC_OK;
}

int FC_NAME(fc_maxpool2d_bwd)(const FC_T *FC_RESTRICT dy, const fc_index_t *FC_RESTRICT argmax,
                              FC_T *FC_RESTRICT dx, const fc_geom *g, int n_threads)
{
    const fc_index_t N = g->n, C = g->c, HW = g->h * g->w, P = g->oh * g->ow;
    if (N < 0 || C < 1 || HW < 1 || P < 1) return FC_EINVAL;
    const int nt = fc_threads_for(n_threads, N * C);
    fc_index_t nc;
    /* (a write-only 2x2 backward -- winner gets dy, the others 0, no zeroing pass -- was
     * measured slower than this zero + scatter: four compare-selects per window) */
    FC_OMP_PARALLEL_FOR_DYNAMIC(nt)
    for (nc = 0; nc < N * C; nc++) {
        FC_T *dxp = dx + nc * HW;
        const FC_T *dyp = dy + nc * P;
        const fc_index_t *ap = argmax + nc * P;
        for (fc_index_t k = 0; k < HW; k++) dxp[k] = 0;
        for (fc_index_t k = 0; k < P; k++) {
            const fc_index_t a = ap[k];
            if (a >= 0 && a < HW) dxp[a] += dyp[k];   /* defensive: never write outside */
        }
    }
    return FC_OK;
}
