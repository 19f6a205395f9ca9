/*
 * fc_batchnorm.c -- float32 and float64 instances of fc_batchnorm_impl.h.
 */
#include "fastcnn/fastcnn.h"
#include "fc_omp.h"

/* Channels per OpenMP work item in the reductions: one channel when a channel's slice of
 * a row is long (L >= 64: images), else 64 channels so that a (N, D) input is read in
 * contiguous runs of a row. Depends on L only, never on the thread count. */
static inline fc_index_t fc_bn_block(fc_index_t l) { return l >= 64 ? 1 : 64; }

#define FC_T float
#define FC_NAME(base) base##_f32
#include "fc_batchnorm_impl.h"
#undef FC_T
#undef FC_NAME

#define FC_T double
#define FC_NAME(base) base##_f64
#include "fc_batchnorm_impl.h"
#undef FC_T
#undef FC_NAME
