/*
 * fc_conv.c -- float32 and float64 instances of fc_conv_impl.h (the convolution kernels).
 * The body is written once; FC_T / FC_NAME select the element type and FC_GEMM the
 * matching BLAS ?gemm pointer type (fastcnn.h).
 */
#include "fastcnn/fastcnn.h"
#include "fc_omp.h"
#include "fc_window.h"

#define FC_T float
#define FC_NAME(base) base##_f32
#define FC_GEMM fc_sgemm_fn
#include "fc_gemm_impl.h"
#include "fc_winograd_impl.h"
#include "fc_conv_impl.h"
#include "fc_depthwise_impl.h"
#undef FC_T
#undef FC_NAME
#undef FC_GEMM

#define FC_T double
#define FC_NAME(base) base##_f64
#define FC_GEMM fc_dgemm_fn
#include "fc_gemm_impl.h"
#include "fc_winograd_impl.h"
#include "fc_conv_impl.h"
#include "fc_depthwise_impl.h"
#undef FC_T
#undef FC_NAME
#undef FC_GEMM
