/*
 * fc_maxpool.c -- float32 and float64 instances of fc_maxpool_impl.h.
 */
#include "fastcnn/fastcnn.h"
#include "fc_omp.h"

#include <math.h> /* INFINITY */

#define FC_T float
#define FC_NAME(base) base##_f32
#include "fc_maxpool_impl.h"
#undef FC_T
#undef FC_NAME

#define FC_T double
#define FC_NAME(base) base##_f64
#include "fc_maxpool_impl.h"
#undef FC_T
#undef FC_NAME
