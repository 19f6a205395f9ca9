/*
 * fc_avgpool_impl.h -- type-generic average pooling over rectangle tables, forward and
 * backward. Never compiled alone: fc_avgpool.c includes it with FC_T = float / double.
 * Reference: fastcnn/kernels/reference.py, avgpool2d_forward / avgpool2d_backward.
 *
 * Forward:   y[n, c, oh, ow] = S / divisor[oh*OW + ow], where S is the sum of x[n, c, h, w]
 *            over rows [row_start[oh], row_stop[oh]) and columns [col_start[ow],
 *            col_stop[ow]), added row by row, left to right, starting from 0.
 * Backward:  dx = 0; for each window in (oh, ow) order, every pixel of its rectangle gets
 *            += dy[n, c, oh, ow] / divisor[oh*OW + ow] (overlapping windows add up).
 *
 * The tables (fastcnn/kernels/geometry.py, PoolWindows) hold the windows already clipped
 * to the input: padding adds nothing to a sum, and ceil mode, count_include_pad,
 * divisor_override and adaptive pooling only change the tables and the divisors.
 *
 * The 2x2 stride-2 windows (the common case, recognised from the tables) get loops without
 * the inner window loops, which GCC vectorises; they add in the same order, so the results
 * are the same bits as the general loops'.
 *
 * Layout NCHW. Threading: one OpenMP iteration per (n, c) plane; planes are independent,
 * so there are no races and results do not depend on the thread count.
 */

/* Every table entry inside the input and every rectangle non-empty: the defensive check
 * that makes an inconsistent table (a bug: Python builds them) an error, not a stray read. */
static inline int FC_NAME(fc_windows_are_valid)(const fc_windows *win)
{
    if (win->n < 0 || win->c < 1 || win->h < 1 || win->w < 1 || win->oh < 1 || win->ow < 1)
        return 0;
    for (fc_index_t i = 0; i < win->oh; i++)
        if (win->row_start[i] < 0 || win->row_start[i] >= win->row_stop[i] ||
            win->row_stop[i] > win->h)
            return 0;
    for (fc_index_t j = 0; j < win->ow; j++)
        if (win->col_start[j] < 0 || win->col_start[j] >= win->col_stop[j] ||
            win->col_stop[j] > win->w)
            return 0;
    return 1;
}

/* True when window k along an axis is [2k, 2k + 2) for every k. */
static inline int FC_NAME(fc_axis_is_2x2)(const fc_index_t *start, const fc_index_t *stop,
                                          fc_index_t count)
{
    for (fc_index_t k = 0; k < count; k++)
        if (start[k] != 2 * k || stop[k] != 2 * k + 2) return 0;
    return 1;
}

/* One output row of 2x2/2 windows over input rows r0, r1: the general loop's sum
 * ((0 + a) + b) + c) + d, then the division, with no window loop in the way. */
static inline void FC_NAME(fc_avgpool2x2_row)(const FC_T *FC_RESTRICT r0,
                                              const FC_T *FC_RESTRICT r1,
                                              const FC_T *FC_RESTRICT div, FC_T *FC_RESTRICT y,
                                              fc_index_t OW)
{
    for (fc_index_t ow = 0; ow < OW; ow++)
        y[ow] = ((((FC_T)0 + r0[2 * ow]) + r0[2 * ow + 1]) + r1[2 * ow] + r1[2 * ow + 1]) /
                div[ow];
}

/* The general forward of one plane. */
static inline void FC_NAME(fc_avgpool_plane)(const FC_T *FC_RESTRICT plane,
                                             const FC_T *FC_RESTRICT div,
                                             FC_T *FC_RESTRICT yp, const fc_windows *win)
{
    const fc_index_t W = win->w, OH = win->oh, OW = win->ow;
    for (fc_index_t oh = 0; oh < OH; oh++) {
        const fc_index_t hs = win->row_start[oh], he = win->row_stop[oh];
        for (fc_index_t ow = 0; ow < OW; ow++) {
            const fc_index_t ws = win->col_start[ow], we = win->col_stop[ow];
            FC_T s = 0;
            for (fc_index_t h = hs; h < he; h++)
                for (fc_index_t w = ws; w < we; w++) s += plane[h * W + w];
            yp[oh * OW + ow] = s / div[oh * OW + ow];
        }
    }
}

int FC_NAME(fc_avgpool2d_fwd)(const FC_T *FC_RESTRICT x, const FC_T *FC_RESTRICT divisor,
                              FC_T *FC_RESTRICT y, const fc_windows *win, int n_threads)
{
    if (!FC_NAME(fc_windows_are_valid)(win)) return FC_EINVAL;
    const fc_index_t N = win->n, C = win->c, H = win->h, W = win->w;
    const fc_index_t OH = win->oh, OW = win->ow;
    const int tiles = FC_NAME(fc_axis_is_2x2)(win->row_start, win->row_stop, OH) &&
                      FC_NAME(fc_axis_is_2x2)(win->col_start, win->col_stop, OW);
    const int nt = fc_threads_for(n_threads, N * C);
    fc_index_t nc;
    FC_OMP_PARALLEL_FOR_DYNAMIC(nt)
    for (nc = 0; nc < N * C; nc++) {
        const FC_T *plane = x + nc * H * W;
        FC_T *yp = y + nc * OH * OW;
        if (!tiles) {
            FC_NAME(fc_avgpool_plane)(plane, divisor, yp, win);
            continue;
        }
        for (fc_index_t oh = 0; oh < OH; oh++)
            FC_NAME(fc_avgpool2x2_row)(plane + 2 * oh * W, plane + (2 * oh + 1) * W,
                                       divisor + oh * OW, yp + oh * OW, OW);
    }
    return FC_OK;
}

/* One output row of the 2x2/2 backward, write-only: the four pixels of window ow get
 * 0 + dy / divisor (the 0 + is what the general zero-then-add computes). */
static inline void FC_NAME(fc_unavgpool2x2_row)(const FC_T *FC_RESTRICT dyr,
                                                const FC_T *FC_RESTRICT div,
                                                FC_T *FC_RESTRICT d0, FC_T *FC_RESTRICT d1,
                                                fc_index_t OW)
{
    for (fc_index_t ow = 0; ow < OW; ow++) {
        const FC_T v = (FC_T)0 + dyr[ow] / div[ow];
        d0[2 * ow] = v;
        d0[2 * ow + 1] = v;
        d1[2 * ow] = v;
        d1[2 * ow + 1] = v;
    }
}

/* The general backward of one plane: zero, then add every window's share. */
static inline void FC_NAME(fc_unavgpool_plane)(const FC_T *FC_RESTRICT dyp,
                                               const FC_T *FC_RESTRICT div,
                                               FC_T *FC_RESTRICT dxp, const fc_windows *win)
{
    const fc_index_t W = win->w, OH = win->oh, OW = win->ow;
    for (fc_index_t k = 0; k < win->h * W; k++) dxp[k] = 0;
    for (fc_index_t oh = 0; oh < OH; oh++) {
        const fc_index_t hs = win->row_start[oh], he = win->row_stop[oh];
        for (fc_index_t ow = 0; ow < OW; ow++) {
            const fc_index_t ws = win->col_start[ow], we = win->col_stop[ow];
            const FC_T v = dyp[oh * OW + ow] / div[oh * OW + ow];
            for (fc_index_t h = hs; h < he; h++)
                for (fc_index_t w = ws; w < we; w++) dxp[h * W + w] += v;
        }
    }
}

int FC_NAME(fc_avgpool2d_bwd)(const FC_T *FC_RESTRICT dy, const FC_T *FC_RESTRICT divisor,
                              FC_T *FC_RESTRICT dx, const fc_windows *win, int n_threads)
{
    if (!FC_NAME(fc_windows_are_valid)(win)) return FC_EINVAL;
    const fc_index_t N = win->n, C = win->c, H = win->h, W = win->w;
    const fc_index_t OH = win->oh, OW = win->ow;
    const int tiles = FC_NAME(fc_axis_is_2x2)(win->row_start, win->row_stop, OH) &&
                      FC_NAME(fc_axis_is_2x2)(win->col_start, win->col_stop, OW);
    const int nt = fc_threads_for(n_threads, N * C);
    fc_index_t nc;
    FC_OMP_PARALLEL_FOR_DYNAMIC(nt)
    for (nc = 0; nc < N * C; nc++) {
        const FC_T *dyp = dy + nc * OH * OW;
        FC_T *dxp = dx + nc * H * W;
        if (!tiles) {
            FC_NAME(fc_unavgpool_plane)(dyp, divisor, dxp, win);
            continue;
        }
        for (fc_index_t oh = 0; oh < OH; oh++) {
            FC_T *d0 = dxp + 2 * oh * W;
            FC_NAME(fc_unavgpool2x2_row)(dyp + oh * OW, divisor + oh * OW, d0, d0 + W, OW);
            for (fc_index_t w = 2 * OW; w < W; w++)   /* an odd last column: in no window */
                d0[w] = d0[W + w] = 0;
        }
        for (fc_index_t k = 2 * OH * W; k < H * W; k++) dxp[k] = 0;   /* odd last row */
    }
    return FC_OK;
}
