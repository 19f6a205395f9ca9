/*
 * fc_winograd_impl.h -- type-generic Winograd F(2x2, 3x3) for 3x3, stride 1, dilation 1,
 * groups 1 convolutions: the forward and the dx of the backward. Never compiled alone:
 * fc_conv.c includes it (after fc_gemm_impl.h) with FC_T / FC_NAME / FC_GEMM set.
 *
 * The simple version it equals is the direct correlation (reference.py: conv2d_forward)
 *     out[n, k, y, x] = b[k] + sum_{c, i, j} g[k, c, i, j] * in_pad[n, c, y - pt + i, x - pl + j]
 * (zero outside the input). Winograd (Lavin & Gray 2016) cuts the output into 2x2 tiles;
 * tile (ty, tx) reads the 4x4 input patch d starting at (2*ty - pt, 2*tx - pl) and
 *     Y = A^T [ sum_c (G g_kc G^T) * (B^T d_c B) ] A       (* = elementwise, 4x4)
 *     B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]      G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1]
 *     A^T = [1 1 1 0; 0 1 -1 -1]
 * which is exactly the correlation of each 2x2 output with its 4x4 patch (a polynomial
 * identity), computed with 16 multiplies per (k, c, tile) instead of 36. The sum over c
 * of the 16 elementwise products is, for each of the 16 positions xi, a matrix product:
 *     U[xi] = (G g G^T)[xi]  (K, C)     V[xi] = (B^T d B)[xi]  (C, tiles)
 *     M[xi] = U[xi] @ V[xi]  (K, tiles)                       -- 16 GEMMs per block
 * then Y = A^T M A per tile. Rounding differs from im2col's (the transforms add and halve
 * before multiplying); tests/kernels/test_conv_algorithms.py checks both algorithms
 * against the NumPy reference at the same tolerances.
 *
 * dx of a 3x3 stride-1 convolution is itself one: with pad' = 2 - pt, 2 - pl,
 *     dx[n, c, y, x] = sum_{k, i, j} w[k, c, 2 - i, 2 - j] * dout_pad[n, k, y - pt' + i, ...]
 * a correlation of dout (K channels in) with the flipped, transposed kernel (C out).
 *
 * Layouts (row-major): u[xi][K][C] (the transformed filters, made once per call before
 * the parallel region), v[xi][C][T] and m[xi][K][T] in the thread's workspace slot, with
 * T = tiles of the block = nb * ceil(OH/2) * ceil(OW/2), tile t = (img*TH + ty)*TW + tx.
 * Each output element is written by one tile of one block in a fixed order: the same bits
 * whichever thread runs the block.
 */

/* u[xi][k][c] = (G g G^T)[xi] for the 3x3 filter g of output k, input c. Forward
 * (flip_transpose == 0): w is (K, C, 3, 3) and g[i][j] = w[k, c, i, j]. dx (flip_transpose
 * == 1): w is the forward's (F, C_fwd, 3, 3) with K = C_fwd outputs and C = F inputs here,
 * and g[i][j] = w[c, k, 2 - i, 2 - j]. */
static void FC_NAME(fc_wino_filters)(const FC_T *w, FC_T *u, fc_index_t k_out, fc_index_t c_in,
                                     int flip_transpose)
{
    const fc_index_t kc = k_out * c_in;
    for (fc_index_t k = 0; k < k_out; k++) {
        for (fc_index_t c = 0; c < c_in; c++) {
            FC_T g[3][3], t[4][3];
            for (int i = 0; i < 3; i++)
                for (int j = 0; j < 3; j++)
                    g[i][j] = flip_transpose ? w[(c * k_out + k) * 9 + (2 - i) * 3 + (2 - j)]
                                             : w[(k * c_in + c) * 9 + i * 3 + j];
            for (int j = 0; j < 3; j++) {   /* t = G g */
                t[0][j] = g[0][j];
                t[1][j] = (g[0][j] + g[1][j] + g[2][j]) * (FC_T)0.5;
                t[2][j] = (g[0][j] - g[1][j] + g[2][j]) * (FC_T)0.5;
                t[3][j] = g[2][j];
            }
            FC_T *dst = u + k * c_in + c;
            for (int a = 0; a < 4; a++) {   /* U = t G^T */
                dst[(a * 4 + 0) * kc] = t[a][0];
                dst[(a * 4 + 1) * kc] = (t[a][0] + t[a][1] + t[a][2]) * (FC_T)0.5;
                dst[(a * 4 + 2) * kc] = (t[a][0] - t[a][1] + t[a][2]) * (FC_T)0.5;
                dst[(a * 4 + 3) * kc] = t[a][2];
            }
        }
    }
}

/* The block's dimensions: n images of c_in planes ih x iw in, k_out planes oh x ow out,
 * padding (pt, pl) (may be negative for dx: then the patch starts inside the input). */
typedef struct FC_NAME(fc_wino_dims) {
    fc_index_t n, c_in, ih, iw, k_out, oh, ow, pt, pl;
} FC_NAME(fc_wino_dims);

#ifndef FC_WINO_CHUNK
/* Tiles of one tile row transformed together (the stack buffers' size): the transforms
 * below run over a chunk of tiles side by side, so the compiler vectorises across tiles. */
#define FC_WINO_CHUNK 64
#endif

/* rp[a] points at the len values plane[r0 + a, c0 .. c0 + len), zero outside the plane
 * (the 4 input rows a chunk of tiles reads): straight into the plane when the row segment
 * is inside it, else a copy in buf[a] with the padding made explicit. */
static inline void FC_NAME(fc_wino_rows)(const FC_T *plane, fc_index_t ih, fc_index_t iw,
                                         fc_index_t r0, fc_index_t c0, fc_index_t len,
                                         FC_T buf[4][2 * FC_WINO_CHUNK + 2], const FC_T *rp[4])
{
    fc_index_t lo = c0 < 0 ? -c0 : 0, hi = iw - c0 < len ? iw - c0 : len;   /* valid q */
    if (hi < lo) hi = lo;
    for (int a = 0; a < 4; a++) {
        const fc_index_t r = r0 + a;
        rp[a] = buf[a];
        if (r < 0 || r >= ih) {
            for (fc_index_t q = 0; q < len; q++) buf[a][q] = 0;
            continue;
        }
        if (lo == 0 && hi == len) {   /* inside: c0 >= 0 and c0 + len <= iw */
            rp[a] = plane + r * iw + c0;
            continue;
        }
        for (fc_index_t q = 0; q < lo; q++) buf[a][q] = 0;
        /* plane[r*iw + c0 + q] is inside row r for q in [lo, hi) (an index, no pointer
         * outside the array is formed) */
        for (fc_index_t q = lo; q < hi; q++) buf[a][q] = plane[r * iw + c0 + q];
        for (fc_index_t q = hi; q < len; q++) buf[a][q] = 0;
    }
}

/* v[xi][c][t] = (B^T d B)[xi] for every channel c and tile t of the block. Per chunk of
 * tiles of one tile row: h = d B on each of the 4 rows (tile tx reads columns 2tx..2tx+3),
 * then V = B^T h; equal to the per-tile formula (B^T d) B, the same products in another
 * order of the exact-ish additions. */
FC_TARGET_CLONES
static void FC_NAME(fc_wino_input)(const FC_T *in, FC_T *v, const FC_NAME(fc_wino_dims) *s)
{
    const fc_index_t th = (s->oh + 1) / 2, tw = (s->ow + 1) / 2, tiles = s->n * th * tw;
    const fc_index_t stride = s->c_in * tiles;   /* between the 16 xi of one (c, t) */
    FC_T buf[4][2 * FC_WINO_CHUNK + 2], h[4][4][FC_WINO_CHUNK];
    const FC_T *rows[4];
    for (fc_index_t img = 0; img < s->n; img++) {
        for (fc_index_t c = 0; c < s->c_in; c++) {
            const FC_T *plane = in + (img * s->c_in + c) * s->ih * s->iw;
            for (fc_index_t ty = 0; ty < th; ty++) {
                for (fc_index_t tx0 = 0; tx0 < tw; tx0 += FC_WINO_CHUNK) {
                    const fc_index_t nt = fc_min_index(FC_WINO_CHUNK, tw - tx0);
                    FC_NAME(fc_wino_rows)(plane, s->ih, s->iw, 2 * ty - s->pt,
                                          2 * tx0 - s->pl, 2 * nt + 2, buf, rows);
                    for (int a = 0; a < 4; a++) {   /* h[a] = d[a] B, tiles side by side */
                        const FC_T *r = rows[a];
                        for (fc_index_t t = 0; t < nt; t++) {
                            h[a][0][t] = r[2 * t] - r[2 * t + 2];
                            h[a][1][t] = r[2 * t + 1] + r[2 * t + 2];
                            h[a][2][t] = r[2 * t + 2] - r[2 * t + 1];
                            h[a][3][t] = r[2 * t + 1] - r[2 * t + 3];
                        }
                    }
                    FC_T *dst = v + c * tiles + (img * th + ty) * tw + tx0;
                    for (int b = 0; b < 4; b++) {   /* V = B^T h, column b */
                        FC_T *d0 = dst + (0 * 4 + b) * stride, *d1 = dst + (1 * 4 + b) * stride;
                        FC_T *d2 = dst + (2 * 4 + b) * stride, *d3 = dst + (3 * 4 + b) * stride;
                        for (fc_index_t t = 0; t < nt; t++) {
                            d0[t] = h[0][b][t] - h[2][b][t];
                            d1[t] = h[1][b][t] + h[2][b][t];
                            d2[t] = h[2][b][t] - h[1][b][t];
                            d3[t] = h[1][b][t] - h[3][b][t];
                        }
                    }
                }
            }
        }
    }
}

/* out[img, k, 2ty + r, 2tx + q] = (A^T M A)[r][q] + b[k] (b may be NULL: no bias), the
 * rows / columns past oh / ow of the last tiles dropped. Per chunk of tiles of one tile
 * row: t = A^T M (2 x 4 per tile), then the 2 x 2 result Y = t A into a row buffer. */
FC_TARGET_CLONES
static void FC_NAME(fc_wino_output)(const FC_T *m, const FC_T *b, FC_T *out,
                                    const FC_NAME(fc_wino_dims) *s)
{
    const fc_index_t th = (s->oh + 1) / 2, tw = (s->ow + 1) / 2, tiles = s->n * th * tw;
    const fc_index_t stride = s->k_out * tiles;
    FC_T t[2][4][FC_WINO_CHUNK], y[2 * FC_WINO_CHUNK];
    for (fc_index_t img = 0; img < s->n; img++) {
        for (fc_index_t k = 0; k < s->k_out; k++) {
            FC_T *plane = out + (img * s->k_out + k) * s->oh * s->ow;
            const FC_T bias = b != NULL ? b[k] : (FC_T)0;
            for (fc_index_t ty = 0; ty < th; ty++) {
                for (fc_index_t tx0 = 0; tx0 < tw; tx0 += FC_WINO_CHUNK) {
                    const fc_index_t nt = fc_min_index(FC_WINO_CHUNK, tw - tx0);
                    const FC_T *src = m + k * tiles + (img * th + ty) * tw + tx0;
                    for (int col = 0; col < 4; col++) {   /* t = A^T M, column col */
                        const FC_T *q0 = src + (0 * 4 + col) * stride;
                        const FC_T *q1 = src + (1 * 4 + col) * stride;
                        const FC_T *q2 = src + (2 * 4 + col) * stride;
                        const FC_T *q3 = src + (3 * 4 + col) * stride;
                        for (fc_index_t i = 0; i < nt; i++) {
                            t[0][col][i] = q0[i] + q1[i] + q2[i];
                            t[1][col][i] = q1[i] - q2[i] - q3[i];
                        }
                    }
                    const fc_index_t x0 = 2 * tx0, nx = fc_min_index(2 * nt, s->ow - x0);
                    for (int r = 0; r < 2 && 2 * ty + r < s->oh; r++) {   /* Y = t A, + b */
                        FC_T *orow = plane + (2 * ty + r) * s->ow + x0;
                        /* whole tiles: straight into the row, else via y (cropped) */
                        FC_T *dst = nx == 2 * nt ? orow : y;
                        for (fc_index_t i = 0; i < nt; i++) {
                            dst[2 * i] = t[r][0][i] + t[r][1][i] + t[r][2][i] + bias;
                            dst[2 * i + 1] = t[r][1][i] - t[r][2][i] - t[r][3][i] + bias;
                        }
                        if (dst == y)
                            for (fc_index_t i = 0; i < nx; i++) orow[i] = y[i];
                    }
                }
            }
        }
    }
}

/* Elements of one block's v + m: 16 * (C_in + K_out) * tiles */
static inline fc_index_t FC_NAME(fc_wino_slot)(const FC_NAME(fc_wino_dims) *s)
{
    return 16 * (s->c_in + s->k_out) * s->n * ((s->oh + 1) / 2) * ((s->ow + 1) / 2);
}

/* One block: v = input transform, M[xi] = U[xi] @ V[xi] (16 single-threaded GEMMs),
 * out = output transform + b. work holds fc_wino_slot(s) elements (v, then m). */
static void FC_NAME(fc_wino_block)(const FC_T *in, const FC_T *u, const FC_T *b, FC_T *out,
                                   FC_T *work, const FC_NAME(fc_wino_dims) *s, FC_GEMM gemm)
{
    const fc_index_t tiles = s->n * ((s->oh + 1) / 2) * ((s->ow + 1) / 2);
    FC_T *v = work, *m = work + 16 * s->c_in * tiles;
    FC_NAME(fc_wino_input)(in, v, s);
    for (fc_index_t xi = 0; xi < 16; xi++)
        FC_NAME(fc_gemm)(gemm, 0, 0, s->k_out, tiles, s->c_in, 1,
                         u + xi * s->k_out * s->c_in, s->c_in, v + xi * s->c_in * tiles, tiles,
                         0, m + xi * s->k_out * tiles, tiles);
    FC_NAME(fc_wino_output)(m, b, out, s);
}
