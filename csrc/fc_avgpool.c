/*
 * fc_avgpool.c -- float32 and float64 instances of fc_avgpool_impl.h.
 */
#include "fastcnn/fastcnn.h"
#include "fc_omp.h"

#define FC_T float
#define FC_NAME(base) base##_f32
#include "fc_avgpool_impl.h"
#undef FC_T
#undef FC_NAME

#define FC_T double
#define FC_NAME(base) base##_f64
#include "fc_avgpool_impl.h"
#undef FC_T
#undef FC_NAME
