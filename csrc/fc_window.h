/*
 * fc_window.h -- sliding-window index helpers shared by the window kernels (private to
 * csrc/; plain C99, no OpenMP).
 */
#ifndef FASTCNN_FC_WINDOW_H
#define FASTCNN_FC_WINDOW_H

#include "fastcnn/fastcnn.h"

/* Output positions o in [0, n_out) whose input coordinate o*s - pad + k lies in [0, size):
 * the range [*lo, *hi), possibly empty (lo == hi). k is the tap's offset inside the window
 * (j*dilation for tap j). Pure integer arithmetic on non-negative numerators, so C's
 * truncating division is a floor here. The simple version tests every o; this computes the
 * range once so that the inner loops have no bounds test. */
static inline void fc_valid_range(fc_index_t size, fc_index_t pad, fc_index_t k, fc_index_t s,
                                  fc_index_t n_out, fc_index_t *lo, fc_index_t *hi)
{
    fc_index_t a = pad - k;          /* need o*s >= a */
    fc_index_t b = size + pad - k;   /* need o*s <  b */
    fc_index_t l, h;
    if (s == 1) {   /* the common case, without two 64-bit divisions (tens of cycles each:
                     * they dominated the depthwise kernels, which call this per row) */
        l = a <= 0 ? 0 : a;
        h = b <= 0 ? 0 : b;
    } else {
        l = a <= 0 ? 0 : (a + s - 1) / s;
        h = b <= 0 ? 0 : (b - 1) / s + 1;
    }
    if (l > n_out) l = n_out;
    if (h > n_out) h = n_out;
    if (h < l) h = l;
    *lo = l;
    *hi = h;
}

#endif /* FASTCNN_FC_WINDOW_H */
