/*
 * fc_im2col.c -- float32 and float64 instances of fc_im2col_impl.h (im2col and col2im,
 * the teaching view of convolution; fc_conv.c uses them block by block).
 * The body is written once; FC_T / FC_NAME select the element type.
 */
#include "fastcnn/fastcnn.h"
#include "fc_omp.h"
#include "fc_window.h"

#define FC_T float
#define FC_NAME(base) base##_f32
#include "fc_im2col_impl.h"
#undef FC_T
#undef FC_NAME

#define FC_T double
#define FC_NAME(base) base##_f64
#include "fc_im2col_impl.h"
#undef FC_T
#undef FC_NAME
