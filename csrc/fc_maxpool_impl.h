/*
 * fc_maxpool_impl.h -- type-generic max pooling, forward and backward. Never compiled alone:
 * fc_maxpool.c includes it with FC_T = float / double.
 *
 * Forward (equals fastcnn/kernels/reference.py: maxpool2d_forward)
 *     y[n, c, oh, ow] = max over the real (non-padding) pixels x[n, c, h, w] with
 *                       h = oh*SH - PT + i*DH, w = ow*SW - PL + j*DW, i < KH, j < KW
 *                       (DH, DW: dilation, 1 = a dense window)
 *     argmax[n, c, oh, ow] = h*W + w of the winner (flat index in the input plane).
 * The window's taps are clipped to the input first (fc_real_taps), so -inf padding is never
 * a candidate. Pixels
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
 * The 2x2 stride-2 unpadded case has its own pair of kernels, fc_maxpool2x2_fwd / _bwd,
 * which keep a 1-byte code per window instead of the int64 flat index (the caller picks
 * them; fastcnn/kernels/cython_backend.py expands the codes to flat indices on request).
 *
 * Layout NCHW. Threading: one OpenMP iteration per (n, c) plane; planes are independent
 * (forward reads one input plane and writes one output plane; backward writes one dx
 * plane), so no races and results do not depend on the thread count.
 */

/* The 2x2 stride-2 unpadded case (the common one), with a 1-byte "which of the four"
 * code per window instead of an int64 flat index.
 *
 * The rule "scan a, b (row 2*oh), c, d (row 2*oh + 1) in order; replace the best only by a
 * later value that wins: strictly greater, or a NaN while the best is not" is run as a
 * tournament, which picks the same element: ab = winner(a, b), cd = winner(c, d), then
 * winner(ab, cd). Without NaN: ab is the first max of the top pair (ties stay left), and cd
 * replaces it only if strictly greater, so the first max in row-major order wins. With a
 * NaN: ab (cd) is the first NaN of its pair if it has one, and cd replaces ab only if ab is
 * not NaN, so the first NaN in row-major order wins.
 *
 * "later wins over earlier" is written !(later <= earlier) & (earlier == earlier): if the
 * earlier is not NaN, !(later <= earlier) is "greater, or NaN"; if it is NaN nothing
 * replaces it (v == v is false only for NaN; no -ffast-math, so this holds).
 *
 * The simple version is one loop over the windows doing all of that per window. GCC 12 does
 * not vectorise that chain of selects (nor loops with short rows), but it does vectorise
 * the two plain loops below: a "pairs" pass per input row (stride-2 loads de-interleaved
 * with shuffles, a compare mask, and-or blends) into small stack temporaries, then one flat
 * "final" pass over a tile of whole output rows (so 8-wide rows still give long loops). */

/* Windows per tile (stack temporaries: 2 x FC_POOL_TILE values + 2 x int32 flags). */
#define FC_POOL_TILE 512

/* win[j] = the winner of the pair (r[2j], r[2j+1]); later[j] = 1 if it is the second. */
static inline void FC_NAME(fc_pool_pairs)(const FC_T *FC_RESTRICT r, FC_T *FC_RESTRICT win,
                                          int32_t *FC_RESTRICT later, fc_index_t n)
{
    for (fc_index_t j = 0; j < n; j++) {
        const FC_T a = r[2 * j], b = r[2 * j + 1];
        const int32_t t = !(b <= a) & (a == a);
        win[j] = t ? b : a;
        later[j] = t;
    }
}

/* The tournament's last round over n windows: y = winner(top, bot) and its code
 * (code = t ? 2 + lb : lt, written as arithmetic: the select does not vectorise). */
static inline void FC_NAME(fc_pool_final)(const FC_T *FC_RESTRICT top,
                                          const FC_T *FC_RESTRICT bot,
                                          const int32_t *FC_RESTRICT lt,
                                          const int32_t *FC_RESTRICT lb, FC_T *FC_RESTRICT y,
                                          int8_t *FC_RESTRICT code, fc_index_t n)
{
    for (fc_index_t k = 0; k < n; k++) {
        const FC_T u = top[k], v = bot[k];
        const int32_t t = !(v <= u) & (u == u);   /* the bottom winner beats the top one */
        y[k] = t ? v : u;
        code[k] = (int8_t)(lt[k] + t * (2 + lb[k] - lt[k]));
    }
}

/* y[n, c, oh, ow] = max of the 2x2 window at (2*oh, 2*ow); code[n, c, oh, ow] = which of its
 * four pixels won, 0..3 in row-major window order, i.e. the flat index of fc_maxpool2d_fwd is
 *     argmax = (2*oh + code/2) * W + 2*ow + code%2.
 * Needs 2*OH <= H and 2*OW <= W (an odd last row / column is in no window). A plane is done
 * in tiles of whole output rows (or, for rows longer than a tile, of one row's columns), so
 * the tile's outputs are contiguous. */
int FC_NAME(fc_maxpool2x2_fwd)(const FC_T *FC_RESTRICT x, FC_T *FC_RESTRICT y,
                               int8_t *FC_RESTRICT code, const fc_geom *g, int n_threads)
{
    const fc_index_t N = g->n, C = g->c, H = g->h, W = g->w, OH = g->oh, OW = g->ow;
    if (!fc_geom_is_valid(g) || 2 * OH > H || 2 * OW > W) return FC_EINVAL;
    const int nt = fc_threads_for(n_threads, N * C);
    const fc_index_t cw = OW < FC_POOL_TILE ? OW : FC_POOL_TILE;   /* tile columns */
    const fc_index_t rows = FC_POOL_TILE / cw;                      /* tile rows, >= 1 */
    fc_index_t nc;
    FC_OMP_PARALLEL_FOR_DYNAMIC(nt)
    for (nc = 0; nc < N * C; nc++) {
        FC_T top[FC_POOL_TILE], bot[FC_POOL_TILE];
        int32_t lt[FC_POOL_TILE], lb[FC_POOL_TILE];
        const FC_T *plane = x + nc * H * W;
        for (fc_index_t oh0 = 0; oh0 < OH; oh0 += rows) {
            const fc_index_t nr = OH - oh0 < rows ? OH - oh0 : rows;
            for (fc_index_t j0 = 0; j0 < OW; j0 += cw) {   /* one pass unless OW > tile */
                const fc_index_t nw = OW - j0 < cw ? OW - j0 : cw;
                for (fc_index_t r = 0; r < nr; r++) {
                    const FC_T *r0 = plane + 2 * (oh0 + r) * W + 2 * j0;
                    FC_NAME(fc_pool_pairs)(r0, top + r * nw, lt + r * nw, nw);
                    FC_NAME(fc_pool_pairs)(r0 + W, bot + r * nw, lb + r * nw, nw);
                }
                const fc_index_t o = (nc * OH + oh0) * OW + j0;   /* nr == 1 or nw == OW */
                FC_NAME(fc_pool_final)(top, bot, lt, lb, y + o, code + o, nr * nw);
            }
        }
    }
    return FC_OK;
}

/* The codes of a tile widened to int32 (a flat loop: it vectorises whatever the row length),
 * so that the per-row loop below works on one element width only. */
static inline void FC_NAME(fc_widen_codes)(const int8_t *FC_RESTRICT c, int32_t *FC_RESTRICT k,
                                           fc_index_t n)
{
    for (fc_index_t i = 0; i < n; i++) k[i] = c[i];
}

/* One output row of the backward below: the windows' four pixels in rows d0 (codes 0, 1)
 * and d1 (codes 2, 3). Plain selects on the code (GCC vectorises this loop). */
static inline void FC_NAME(fc_unpool2x2_row)(const FC_T *FC_RESTRICT dyr,
                                             const int32_t *FC_RESTRICT kr,
                                             FC_T *FC_RESTRICT d0, FC_T *FC_RESTRICT d1,
                                             fc_index_t OW)
{
    for (fc_index_t ow = 0; ow < OW; ow++) {
        const FC_T v = dyr[ow] + (FC_T)0;   /* 0 + dy, as the scatter computes it */
        const int32_t k = kr[ow];
        const FC_T e0 = k == 0 ? v : (FC_T)0, e1 = k == 1 ? v : (FC_T)0;
        const FC_T e2 = k == 2 ? v : (FC_T)0, e3 = k == 3 ? v : (FC_T)0;
        d0[2 * ow] = e0;
        d0[2 * ow + 1] = e1;
        d1[2 * ow] = e2;
        d1[2 * ow + 1] = e3;
    }
}

/* Backward of fc_maxpool2x2_fwd, write-only: every pixel of dx is written exactly once, no
 * zero-fill pass and no read-modify-write scatter. It equals
 *     dx = 0;  dx[n, c].flat[argmax] += dy      (fc_maxpool2d_bwd: windows do not overlap)
 * the winner of a window gets 0 + dy (the + 0 is kept on purpose: it turns a -0.0 into +0.0
 * exactly as the scatter's 0 + dy does), its three other pixels and the pixels in no window
 * (an odd last row / column) get 0. Tiles of output rows as in the forward. */
int FC_NAME(fc_maxpool2x2_bwd)(const FC_T *FC_RESTRICT dy, const int8_t *FC_RESTRICT code,
                               FC_T *FC_RESTRICT dx, const fc_geom *g, int n_threads)
{
    const fc_index_t N = g->n, C = g->c, H = g->h, W = g->w, OH = g->oh, OW = g->ow;
    if (!fc_geom_is_valid(g) || 2 * OH > H || 2 * OW > W) return FC_EINVAL;
    const int nt = fc_threads_for(n_threads, N * C);
    const fc_index_t cw = OW < FC_POOL_TILE ? OW : FC_POOL_TILE;   /* tile columns */
    const fc_index_t rows = FC_POOL_TILE / cw;                      /* tile rows, >= 1 */
    fc_index_t nc;
    FC_OMP_PARALLEL_FOR_DYNAMIC(nt)
    for (nc = 0; nc < N * C; nc++) {
        int32_t k[FC_POOL_TILE];
        FC_T *dxp = dx + nc * H * W;
        for (fc_index_t oh0 = 0; oh0 < OH; oh0 += rows) {
            const fc_index_t nr = OH - oh0 < rows ? OH - oh0 : rows;
            for (fc_index_t j0 = 0; j0 < OW; j0 += cw) {
                const fc_index_t nw = OW - j0 < cw ? OW - j0 : cw;
                const fc_index_t o = (nc * OH + oh0) * OW + j0;   /* nr == 1 or nw == OW */
                FC_NAME(fc_widen_codes)(code + o, k, nr * nw);
                for (fc_index_t r = 0; r < nr; r++) {
                    FC_T *d0 = dxp + 2 * (oh0 + r) * W + 2 * j0;
                    FC_NAME(fc_unpool2x2_row)(dy + o + r * nw, k + r * nw, d0, d0 + W, nw);
                }
            }
            for (fc_index_t oh = oh0; oh < oh0 + nr; oh++)   /* an odd last column */
                for (fc_index_t w = 2 * OW; w < W; w++)
                    dxp[2 * oh * W + w] = dxp[(2 * oh + 1) * W + w] = (FC_T)0;
        }
        for (fc_index_t i = 2 * OH * W; i < H * W; i++) dxp[i] = (FC_T)0;   /* odd last row */
    }
    return FC_OK;
}

/* The taps of a (dilated) window along one axis that land on input pixels: tap i reads
 * row start + i*D, real when 0 <= start + i*D < size; they are i_lo <= i < i_hi (empty
 * when i_lo >= i_hi). The simple version loops over all K taps and skips padding ones. */
static inline void FC_NAME(fc_real_taps)(fc_index_t start, fc_index_t K, fc_index_t D,
                                         fc_index_t size, fc_index_t *i_lo, fc_index_t *i_hi)
{
    const fc_index_t lo = start < 0 ? (-start + D - 1) / D : 0;   /* ceil(-start / D) */
    const fc_index_t room = size - start;                         /* rows from start on */
    const fc_index_t hi = room <= 0 ? 0 : (room + D - 1) / D;     /* ceil(room / D) */
    *i_lo = lo;
    *i_hi = hi < K ? hi : K;
}

int FC_NAME(fc_maxpool2d_fwd)(const FC_T *FC_RESTRICT x, FC_T *FC_RESTRICT y,
                              fc_index_t *FC_RESTRICT argmax, const fc_geom *g, int n_threads)
{
    const fc_index_t N = g->n, C = g->c, H = g->h, W = g->w, KH = g->kh, KW = g->kw;
    const fc_index_t SH = g->sh, SW = g->sw, DH = g->dh, DW = g->dw, OH = g->oh, OW = g->ow;
    if (!fc_geom_is_valid(g)) return FC_EINVAL;
    const int nt = fc_threads_for(n_threads, N * C);
    fc_index_t nc;
    FC_OMP_PARALLEL_FOR_DYNAMIC(nt)
    for (nc = 0; nc < N * C; nc++) {
        const FC_T *plane = x + nc * H * W;
        FC_T *yp = y + nc * OH * OW;
        fc_index_t *ap = argmax + nc * OH * OW;
        for (fc_index_t oh = 0; oh < OH; oh++) {
            const fc_index_t h0 = oh * SH - g->pad_top;
            fc_index_t is, ie;
            FC_NAME(fc_real_taps)(h0, KH, DH, H, &is, &ie);
            for (fc_index_t ow = 0; ow < OW; ow++) {
                const fc_index_t w0 = ow * SW - g->pad_left;
                fc_index_t js, je;
                FC_NAME(fc_real_taps)(w0, KW, DW, W, &js, &je);
                FC_T best = (FC_T)(-INFINITY);
                fc_index_t arg = -1;
                int nan = 0;
                /* The rule "first pixel, then replace on strictly greater" as selects (no
                 * unpredictable branch); a NaN anywhere in the window (rare) -> redo the
                 * window below with the NaN rule. An empty window (impossible from the
                 * validated API) keeps -inf and -1. */
                if (is < ie && js < je) {
                    best = plane[(h0 + is * DH) * W + w0 + js * DW];
                    arg = (h0 + is * DH) * W + w0 + js * DW;
                }
                for (fc_index_t i = is; i < ie; i++) {
                    const fc_index_t row = (h0 + i * DH) * W + w0;
                    for (fc_index_t j = js; j < je; j++) {
                        const FC_T v = plane[row + j * DW];
                        const int take = v > best;
                        best = take ? v : best;
                        arg = take ? row + j * DW : arg;
                        nan |= v != v;   /* v != v is the NaN test (no -ffast-math) */
                    }
                }
                if (nan) {
                    arg = -1;
                    for (fc_index_t i = is; i < ie; i++) {
                        const fc_index_t row = (h0 + i * DH) * W + w0;
                        for (fc_index_t j = js; j < je; j++) {
                            const FC_T v = plane[row + j * DW];
                            if (arg < 0 || v > best || (v != v && best == best)) {
                                best = v;
                                arg = row + j * DW;
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
    /* (the 2x2/2 case has its own write-only backward, fc_maxpool2x2_bwd; a scalar one
     * with int64 indices was measured slower than this zero + scatter) */
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
