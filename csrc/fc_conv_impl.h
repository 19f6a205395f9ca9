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
 * nb consecutive images (nb from the geometry only: enough images for a GEMM of a few
 * hundred columns; fastcnn/kernels/cython/backend.py). One OpenMP thread handles a whole
 * block in its own workspace slot work[t*slot ...] (cols, then buf), calling BLAS on one
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
 */

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
/* Compile the marked function for AVX2 and for the baseline, chosen at load time (GCC's
 * function multiversioning through an ifunc, hence x86-64 Linux only); elsewhere one plain
 * version. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define FC_TARGET_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define FC_TARGET_CLONES
#endif

static inline fc_index_t fc_min_index(fc_index_t a, fc_index_t b) { return a < b ? a : b; }

/* The defensive check of a plan against its geometry (Python made both; a failure is a
 * bug): groups divide C and F, at least one image per block, a slot big enough for one
 * block's cols + buf, and the 1x1 path only for what it handles. */
static int fc_conv_plan_is_valid(const fc_geom *g, const fc_conv_plan *p)
{
    const fc_index_t pix = g->oh * g->ow, krows = g->c * g->kh * g->kw;
    if (!fc_geom_is_valid(g) || p->f < 1 || p->groups < 1 || p->nb < 1) return 0;
    if (p->f % p->groups != 0 || g->c % p->groups != 0) return 0;
    if (p->is_1x1)
        return p->nb == 1 && g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1 &&
               g->pad_top == 0 && g->pad_left == 0 && g->oh == g->h && g->ow == g->w;
    return p->slot >= (krows + p->f) * p->nb * pix;
}
#endif

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
    /* dynamic schedule: a block's result does not depend on which thread runs it, and a
     * thread descheduled by a busy machine does not hold up the others' blocks */
    FC_OMP_PARALLEL_FOR_DYNAMIC_STATUS(nt, status)
    for (blk = 0; blk < nblocks; blk++) {
        const fc_index_t n0 = blk * nb;
        fc_geom cg = *g;
        cg.n = fc_min_index(nb, N - n0);
        FC_T *cols = work + omp_get_thread_num() * p->slot;
        FC_T *buf = cols + (p->is_1x1 ? 0 : krows * nb * pix);
        status |= FC_NAME(fc_conv_fwd_block)(x + n0 * xs, w, b, out + n0 * os, cols, buf, &cg,
                                             p, gemm);
    }
    return status ? FC_EINVAL : FC_OK;
}

/* Backward of blocks [blk0, blk1) in order: dw_r (F, C/G*KH*KW) gets this run's sum
 * (overwritten by the first block, then beta = 1), db_r += its sums of dout, and dx of its
 * images is written (unless need_dx == 0: then dx is never touched). */
static int FC_NAME(fc_conv_bwd_run)(const FC_T *dout, const FC_T *x, const FC_T *w, FC_T *dx,
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
    FC_OMP_PARALLEL_FOR_DYNAMIC_STATUS(nt, status)
    for (r = 0; r < n_parts; r++) {
        FC_T *cols = work + omp_get_thread_num() * p->slot;
        FC_T *buf = cols + (p->is_1x1 ? 0 : krows * nb * pix);
        /* run r = blocks [r*nblocks/n_parts, (r+1)*nblocks/n_parts): a fixed partition */
        status |= FC_NAME(fc_conv_bwd_run)(dout, x, w, dx, dw_parts + r * wsize,
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
