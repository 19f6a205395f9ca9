/*
 * fc_conv_impl.h -- type-generic 2-D convolution: the blocked im2col + GEMM algorithm.
 * Never compiled alone: fc_conv.c includes it with FC_T = float / double, FC_NAME(base) =
 * base##_f32 / _f64 and FC_GEMM = the BLAS ?gemm pointer type of FC_T.
 *
 * The maths (equals fastcnn/kernels/reference.py: conv2d_forward / conv2d_backward), with
 * cols = im2col(x) (C*KH*KW, N*P), P = OH*OW, W2 = w as (F, C/G*KH*KW) and G groups:
 *     forward:   out = W2_g @ cols_g + b  for each group g (rows of its channels)
 *     backward:  db = sum dout;  dW_g = dout_g @ cols_g.T;  dx = col2im(W2_g.T @ dout_g)
 * With G == 1 each is one GEMM. Group g's weights w[g*F/G ...] are one contiguous
 * (F/G, C/G*KH*KW) matrix and its cols rows [g*C/G*KH*KW, ...) one contiguous band, so a
 * grouped convolution is G GEMMs on slices, with no copy.
 *
 * Design ("OpenMP over images, thread-private workspace, single-threaded BLAS").
 * The simple version it equals is one im2col of the whole batch and three big GEMMs; that
 * column matrix grows with N and spills the caches. Instead the batch is cut into BLOCKS of
 * nb consecutive images (nb from the geometry only: enough images for a GEMM of at least
 * GEMM_MIN_COLUMNS = 128 columns; fastcnn/kernels/cython/backend.py). One OpenMP thread
 * handles a whole block in its own workspace slot work[t*slot ...] (cols, then buf; after
 * the `shared` elements of the plan), calling BLAS on one
 * thread; a block's columns are still in cache when its GEMM reads them:
 *
 *   forward, per block:   cols = im2col(x[blk])                 (C*KH*KW, nb*P)
 *                         buf  = W2 @ cols                      (F, nb*P)
 *                         out[blk] = buf + b   (to NCHW)
 *   backward, per block:  cols = im2col(x[blk]);  d = dout[blk] as (F, nb*P); db_r += sum d
 *                         dW_r (+)= d @ cols.T                  (F, C/G*KH*KW)
 *                         cols = W2.T @ d;  dx[blk] = col2im(cols)
 *
 * With nb == 1 the forward GEMM writes out[n] (F, P) directly and the backward reads
 * dout[n] as it is (no copies). A 1x1 kernel with stride 1 and no padding needs no im2col:
 * x[n] seen as (C, H*W) IS its column matrix (then nb == 1 and no workspace).
 *
 * Determinism: forward and dx are per-image independent, whichever thread runs them. dW and
 * db are sums over the batch: the blocks are split into n_parts fixed RUNS of consecutive
 * blocks (n_parts from the geometry only), each run's partial dW_r / db_r is accumulated
 * block by block in order by one thread (beta = 1 GEMMs), and the partials are added in run
 * order at the end. No step depends on the thread count: results are bitwise identical for
 * any (a single-threaded BLAS call gives the same bits whichever thread makes it).
 *
 * Winograd (p->winograd, 3x3 stride 1 dilation 1 groups 1 only; fc_winograd_impl.h): the
 * forward block and the backward's dx become F(2x2, 3x3) Winograd blocks (16 GEMMs of
 * 2.25x fewer multiply-adds than im2col's one), with the transformed filters made once per
 * call into work[0 .. shared) before the parallel region; dW keeps im2col (above). The
 * thread slots then start at work + shared. Same partition, same determinism.
 */

/* out[img, f, k] = buf[f, img*P + k] + b[f]   (buf: (F, n*P) GEMM result, out: NCHW) */
static void FC_NAME(fc_conv_scatter_bias)(const FC_T *FC_RESTRICT buf, const FC_T *FC_RESTRICT b,
                                          FC_T *FC_RESTRICT out, fc_index_t n, fc_index_t f,
                                          fc_index_t p)
{
    for (fc_index_t img = 0; img < n; img++) {
        for (fc_index_t ch = 0; ch < f; ch++) {
            const FC_T *src = buf + ch * (n * p) + img * p;
            FC_T *dst = out + (img * f + ch) * p;
            const FC_T bias = b[ch];
            for (fc_index_t k = 0; k < p; k++) dst[k] = src[k] + bias;
        }
    }
}

/* out[f, k] += b[f]   (one image whose GEMM wrote out[n] directly) */
static void FC_NAME(fc_conv_add_bias)(const FC_T *FC_RESTRICT b, FC_T *FC_RESTRICT out,
                                      fc_index_t f, fc_index_t p)
{
    for (fc_index_t ch = 0; ch < f; ch++) {
        FC_T *dst = out + ch * p;
        const FC_T bias = b[ch];
        for (fc_index_t k = 0; k < p; k++) dst[k] += bias;
    }
}

/* buf[f, img*P + k] = dout[img, f, k] (if buf != NULL), and db_acc[f] += the same values
 * (in double, in img-then-k order: a fixed order) */
static void FC_NAME(fc_conv_gather_dout)(const FC_T *FC_RESTRICT dout, FC_T *FC_RESTRICT buf,
                                         double *FC_RESTRICT db_acc, fc_index_t n, fc_index_t f,
                                         fc_index_t p)
{
    for (fc_index_t ch = 0; ch < f; ch++) {
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
}

#ifndef FC_CONV_PLAN_DEFINED
#define FC_CONV_PLAN_DEFINED

/* The defensive check of a plan against its geometry (Python made both; a failure is a
 * bug): groups divide C and F, at least one image per block, a slot big enough for one
 * block's cols + buf, and the 1x1 path only for what it handles. */
static int fc_conv_plan_is_valid(const fc_geom *g, const fc_conv_plan *p)
{
    const fc_index_t pix = g->oh * g->ow, krows = g->c * g->kh * g->kw;
    if (!fc_geom_is_valid(g) || p->f < 1 || p->groups < 1 || p->nb < 1) return 0;
    if (p->f % p->groups != 0 || g->c % p->groups != 0) return 0;
    if (p->is_1x1)
        return p->nb == 1 && !p->winograd && g->kh == 1 && g->kw == 1 && g->sh == 1 &&
               g->sw == 1 && g->pad_top == 0 && g->pad_left == 0 && g->oh == g->h &&
               g->ow == g->w;
    if (p->slot < (krows + p->f) * p->nb * pix || p->shared < 0) return 0;
    if (!p->winograd) return 1;
    /* Winograd: a 3x3 stride-1 undilated ungrouped kernel, room for the transformed
     * filters and for a block's forward and dx transforms (16 * (C + F) * tiles each) */
    const fc_index_t tiles_out = ((g->oh + 1) / 2) * ((g->ow + 1) / 2);
    const fc_index_t tiles_in = ((g->h + 1) / 2) * ((g->w + 1) / 2);
    return p->groups == 1 && g->kh == 3 && g->kw == 3 && g->sh == 1 && g->sw == 1 &&
           g->dh == 1 && g->dw == 1 && p->shared >= 16 * p->f * g->c &&
           p->slot >= 16 * (g->c + p->f) * p->nb * tiles_out &&
           p->slot >= 16 * (g->c + p->f) * p->nb * tiles_in;
}

#endif

/* The Winograd block of the forward (dx == 0: in = x, out = out) or of dx (dx == 1: in =
 * dout with F channels, out = dx with C; pad' = 2 - pad), for n images. */
static inline FC_NAME(fc_wino_dims) FC_NAME(fc_conv_wino_dims)(const fc_geom *g,
                                                               fc_index_t f, fc_index_t n,
                                                               int dx)
{
    FC_NAME(fc_wino_dims) s;
    s.n = n;
    if (!dx) {
        s.c_in = g->c, s.ih = g->h, s.iw = g->w, s.k_out = f, s.oh = g->oh, s.ow = g->ow;
        s.pt = g->pad_top, s.pl = g->pad_left;
    } else {
        s.c_in = f, s.ih = g->oh, s.iw = g->ow, s.k_out = g->c, s.oh = g->h, s.ow = g->w;
        s.pt = 2 - g->pad_top, s.pl = 2 - g->pad_left;
    }
    return s;
}

/* Forward of one block of cg->n images (pointers already at the block's first image). */
static int FC_NAME(fc_conv_fwd_block)(const FC_T *x, const FC_T *w, const FC_T *b, FC_T *out,
                                      FC_T *cols, FC_T *buf, const fc_geom *cg,
                                      const fc_conv_plan *p, FC_GEMM gemm)
{
    const fc_index_t pix = cg->oh * cg->ow, ncols = cg->n * pix;
    const fc_index_t fg = p->f / p->groups, kg = cg->c / p->groups * cg->kh * cg->kw;
    int status = 0;
    const FC_T *c = x;
    if (!p->is_1x1) {
        status = FC_NAME(fc_im2col)(x, cols, cg, 1);
        c = cols;
    }
    FC_T *dst = cg->n == 1 ? out : buf;   /* one image: (F, P) is already out[n]'s layout */
    for (fc_index_t gi = 0; gi < p->groups; gi++)
        FC_NAME(fc_gemm)(gemm, 0, 0, fg, ncols, kg, 1, w + gi * fg * kg, kg,
                         c + gi * kg * ncols, ncols, 0, dst + gi * fg * ncols, ncols);
    if (cg->n == 1)
        FC_NAME(fc_conv_add_bias)(b, out, p->f, pix);
    else
        FC_NAME(fc_conv_scatter_bias)(buf, b, out, cg->n, p->f, pix);
    return status;
}

int FC_NAME(fc_conv2d_fwd)(const FC_T *FC_RESTRICT x, const FC_T *FC_RESTRICT w,
                           const FC_T *FC_RESTRICT b, FC_T *FC_RESTRICT out,
                           FC_T *FC_RESTRICT work, const fc_geom *g, const fc_conv_plan *p,
                           FC_GEMM gemm, int n_threads)
{
    if (!fc_conv_plan_is_valid(g, p)) return FC_EINVAL;
    const fc_index_t N = g->n, nb = p->nb, pix = g->oh * g->ow;
    const fc_index_t krows = g->c * g->kh * g->kw, nblocks = (N + nb - 1) / nb;
    const fc_index_t xs = g->c * g->h * g->w, os = p->f * pix;
    const int nt = fc_threads_for(n_threads, nblocks);
    int status = 0;
    fc_index_t blk;
    if (p->winograd)   /* U = G w G^T, once, before the blocks read it */
        FC_NAME(fc_wino_filters)(w, work, p->f, g->c, 0);
    /* dynamic schedule: a block's result does not depend on which thread runs it, and a
     * thread descheduled by a busy machine does not hold up the others' blocks */
    FC_OMP_PARALLEL_FOR_DYNAMIC_STATUS(nt, status)
    for (blk = 0; blk < nblocks; blk++) {
        const fc_index_t n0 = blk * nb;
        fc_geom cg = *g;
        cg.n = fc_min_index(nb, N - n0);
        FC_T *cols = work + p->shared + omp_get_thread_num() * p->slot;
        FC_T *buf = cols + (p->is_1x1 ? 0 : krows * nb * pix);
        if (p->winograd) {
            const FC_NAME(fc_wino_dims) s = FC_NAME(fc_conv_wino_dims)(g, p->f, cg.n, 0);
            FC_NAME(fc_wino_block)(x + n0 * xs, work, b, out + n0 * os, cols, &s, gemm);
            continue;
        }
        status |= FC_NAME(fc_conv_fwd_block)(x + n0 * xs, w, b, out + n0 * os, cols, buf, &cg,
                                             p, gemm);
    }
    return status ? FC_EINVAL : FC_OK;
}

/* Backward of blocks [blk0, blk1) in order: dw_r (F, C/G*KH*KW) gets this run's sum
 * (overwritten by the first block, then beta = 1), db_r += its sums of dout, and dx of its
 * images is written (unless need_dx == 0: then dx is never touched). */
static int FC_NAME(fc_conv_bwd_run)(const FC_T *dout, const FC_T *x, const FC_T *w,
                                    const FC_T *u, FC_T *dx,
                                    FC_T *dw_r, double *db_r, FC_T *cols, FC_T *buf,
                                    const fc_geom *g, const fc_conv_plan *p, fc_index_t blk0,
                                    fc_index_t blk1, int need_dx, FC_GEMM gemm)
{
    const fc_index_t pix = g->oh * g->ow, xs = g->c * g->h * g->w, ds = p->f * pix;
    const fc_index_t fg = p->f / p->groups, kg = g->c / p->groups * g->kh * g->kw;
    int status = 0;
    fc_geom cg = *g;
    for (fc_index_t blk = blk0; blk < blk1; blk++) {
        const fc_index_t n0 = blk * p->nb;
        cg.n = fc_min_index(p->nb, g->n - n0);
        const fc_index_t ncols = cg.n * pix;
        /* c = im2col(x[blk]) (1x1: x[n] itself); d = dout[blk] as (F, ncols); db_r += sums */
        const FC_T *c = x + n0 * xs;
        if (!p->is_1x1) {
            status |= FC_NAME(fc_im2col)(x + n0 * xs, cols, &cg, 1);
            c = cols;
        }
        const FC_T *d = buf;
        if (cg.n == 1) {   /* dout[n] already is (F, P): only sum it into db_r */
            d = dout + n0 * ds;
            FC_NAME(fc_conv_gather_dout)(d, NULL, db_r, 1, p->f, pix);
        } else {
            FC_NAME(fc_conv_gather_dout)(dout + n0 * ds, buf, db_r, cg.n, p->f, pix);
        }
        /* dW_r[g] (Fg, kg) (+)= d[g] (Fg, ncols) @ c[g].T   (beta = 0 for the first block) */
        for (fc_index_t gi = 0; gi < p->groups; gi++)
            FC_NAME(fc_gemm)(gemm, 0, 1, fg, kg, ncols, 1, d + gi * fg * ncols, ncols,
                             c + gi * kg * ncols, ncols, blk == blk0 ? 0 : 1,
                             dw_r + gi * fg * kg, kg);
        if (!need_dx) continue;
        if (p->winograd) {   /* dx[blk] = Winograd correlation of dout[blk] (u: dx filters) */
            const FC_NAME(fc_wino_dims) s = FC_NAME(fc_conv_wino_dims)(g, p->f, cg.n, 1);
            FC_NAME(fc_wino_block)(dout + n0 * ds, u, NULL, dx + n0 * xs, cols, &s, gemm);
            continue;
        }
        /* dcols[g] (kg, ncols) = W2[g].T @ d[g], then dx[blk] = col2im(dcols); 1x1: into dx */
        FC_T *dc = p->is_1x1 ? dx + n0 * xs : cols;
        for (fc_index_t gi = 0; gi < p->groups; gi++)
            FC_NAME(fc_gemm)(gemm, 1, 0, kg, ncols, fg, 1, w + gi * fg * kg, kg,
                             d + gi * fg * ncols, ncols, 0, dc + gi * kg * ncols, ncols);
        if (!p->is_1x1) status |= FC_NAME(fc_col2im)(cols, dx + n0 * xs, &cg, 1);
    }
    return status;
}

int FC_NAME(fc_conv2d_bwd)(const FC_T *FC_RESTRICT dout, const FC_T *FC_RESTRICT x,
                           const FC_T *FC_RESTRICT w, FC_T *FC_RESTRICT dx,
                           FC_T *FC_RESTRICT dw, double *FC_RESTRICT db,
                           FC_T *FC_RESTRICT dw_parts, double *FC_RESTRICT db_parts,
                           fc_index_t n_parts, FC_T *FC_RESTRICT work, const fc_geom *g,
                           const fc_conv_plan *p, int need_dx, FC_GEMM gemm, int n_threads)
{
    if (!fc_conv_plan_is_valid(g, p)) return FC_EINVAL;
    const fc_index_t nb = p->nb, pix = g->oh * g->ow, krows = g->c * g->kh * g->kw;
    const fc_index_t nblocks = (g->n + nb - 1) / nb, f = p->f;
    const fc_index_t wsize = f * (g->c / p->groups) * g->kh * g->kw;
    if (n_parts < 1 || n_parts > (nblocks > 0 ? nblocks : 1)) return FC_EINVAL;
    for (fc_index_t e = 0; e < n_parts * f; e++) db_parts[e] = 0;
    int status = 0;
    const int nt = fc_threads_for(n_threads, n_parts);
    fc_index_t r;
    if (p->winograd && need_dx)   /* the flipped, transposed filters' U, once */
        FC_NAME(fc_wino_filters)(w, work, g->c, f, 1);
    FC_OMP_PARALLEL_FOR_DYNAMIC_STATUS(nt, status)
    for (r = 0; r < n_parts; r++) {
        FC_T *cols = work + p->shared + omp_get_thread_num() * p->slot;
        FC_T *buf = cols + (p->is_1x1 ? 0 : krows * nb * pix);
        /* run r = blocks [r*nblocks/n_parts, (r+1)*nblocks/n_parts): a fixed partition */
        status |= FC_NAME(fc_conv_bwd_run)(dout, x, w, work, dx, dw_parts + r * wsize,
                                           db_parts + r * f, cols, buf, g, p,
                                           r * nblocks / n_parts, (r + 1) * nblocks / n_parts,
                                           need_dx, gemm);
    }
    /* dw = dW_0 + dW_1 + ... in run order, element by element (each element summed by one
     * thread in the same order) */
    const int nte = fc_threads_for(n_threads, wsize);
    fc_index_t e;
    FC_OMP_PARALLEL_FOR(nte)
    for (e = 0; e < wsize; e++) {
        FC_T s = dw_parts[e];
        for (fc_index_t k = 1; k < n_parts; k++) s = s + dw_parts[k * wsize + e];
        dw[e] = s;
    }
    for (fc_index_t ch = 0; ch < f; ch++) {
        double s = 0.0;
        for (fc_index_t k = 0; k < n_parts; k++) s = s + db_parts[k * f + ch];
        db[ch] = s;
    }
    return status ? FC_EINVAL : FC_OK;
}

