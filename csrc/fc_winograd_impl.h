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

/* d = the 4x4 patch of plane (ih x iw) at (r0, c0), zero outside the plane */
static inline void FC_NAME(fc_wino_load)(const FC_T *plane, fc_index_t ih, fc_index_t iw,
                                         fc_index_t r0, fc_index_t c0, FC_T d[4][4])
{
    if (r0 >= 0 && c0 >= 0 && r0 + 4 <= ih && c0 + 4 <= iw) {   /* inside: no tests */
        for (int a = 0; a < 4; a++)
            for (int b = 0; b < 4; b++) d[a][b] = plane[(r0 + a) * iw + c0 + b];
        return;
    }
    for (int a = 0; a < 4; a++) {
        const fc_index_t r = r0 + a;
        for (int b = 0; b < 4; b++) {
            const fc_index_t c = c0 + b;
            d[a][b] = (r >= 0 && r < ih && c >= 0 && c < iw) ? plane[r * iw + c] : (FC_T)0;
        }
    }
}

/* v[xi][c][t] = (B^T d B)[xi] for every channel c and tile t of the block */
FC_TARGET_CLONES
static void FC_NAME(fc_wino_input)(const FC_T *in, FC_T *v, const FC_NAME(fc_wino_dims) *s)
{
    const fc_index_t th = (s->oh + 1) / 2, tw = (s->ow + 1) / 2, tiles = s->n * th * tw;
    const fc_index_t stride = s->c_in * tiles;   /* between the 16 xi of one (c, t) */
    for (fc_index_t img = 0; img < s->n; img++) {
        for (fc_index_t c = 0; c < s->c_in; c++) {
            const FC_T *plane = in + (img * s->c_in + c) * s->ih * s->iw;
            FC_T *row = v + c * tiles + img * th * tw;
            for (fc_index_t ty = 0; ty < th; ty++) {
                for (fc_index_t tx = 0; tx < tw; tx++) {
                    FC_T d[4][4], t[4][4];
                    FC_NAME(fc_wino_load)(plane, s->ih, s->iw, 2 * ty - s->pt, 2 * tx - s->pl,
                                          d);
                    for (int b = 0; b < 4; b++) {   /* t = B^T d */
                        t[0][b] = d[0][b] - d[2][b];
                        t[1][b] = d[1][b] + d[2][b];
                        t[2][b] = d[2][b] - d[1][b];
                        t[3][b] = d[1][b] - d[3][b];
                    }
                    FC_T *dst = row + ty * tw + tx;
                    for (int a = 0; a < 4; a++) {   /* V = t B */
                        dst[(a * 4 + 0) * stride] = t[a][0] - t[a][2];
                        dst[(a * 4 + 1) * stride] = t[a][1] + t[a][2];
                        dst[(a * 4 + 2) * stride] = t[a][2] - t[a][1];
                        dst[(a * 4 + 3) * stride] = t[a][1] - t[a][3];
                    }
                }
            }
        }
    }
}

/* out[img, k, 2ty + r, 2tx + q] = (A^T M A)[r][q] + b[k] (b may be NULL: no bias), the
 * rows / columns past oh / ow of the last tiles dropped */
FC_TARGET_CLONES
static void FC_NAME(fc_wino_output)(const FC_T *m, const FC_T *b, FC_T *out,
                                    const FC_NAME(fc_wino_dims) *s)
{
    const fc_index_t th = (s->oh + 1) / 2, tw = (s->ow + 1) / 2, tiles = s->n * th * tw;
    const fc_index_t stride = s->k_out * tiles;
    for (fc_index_t img = 0; img < s->n; img++) {
        for (fc_index_t k = 0; k < s->k_out; k++) {
            FC_T *plane = out + (img * s->k_out + k) * s->oh * s->ow;
            const FC_T *row = m + k * tiles + img * th * tw;
            const FC_T bias = b != NULL ? b[k] : (FC_T)0;
            for (fc_index_t ty = 0; ty < th; ty++) {
                for (fc_index_t tx = 0; tx < tw; tx++) {
                    const FC_T *src = row + ty * tw + tx;
                    FC_T q[4][4], t[2][4];
                    for (int xi = 0; xi < 16; xi++) q[xi / 4][xi % 4] = src[xi * stride];
                    for (int col = 0; col < 4; col++) {   /* t = A^T M */
                        t[0][col] = q[0][col] + q[1][col] + q[2][col];
                        t[1][col] = q[1][col] - q[2][col] - q[3][col];
                    }
                    for (int r = 0; r < 2; r++) {   /* Y = t A, then + b, cropped */
                        const fc_index_t y = 2 * ty + r, x = 2 * tx;
                        if (y >= s->oh) break;
                        plane[y * s->ow + x] = t[r][0] + t[r][1] + t[r][2] + bias;
                        if (x + 1 < s->ow)
                            plane[y * s->ow + x + 1] = t[r][1] - t[r][2] - t[r][3] + bias;
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
