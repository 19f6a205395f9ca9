/*
 * fc_info.c -- build information for fastcnn.show_config(): was this compiled with
 * OpenMP, and how many threads would OpenMP use by default.
 */
#include "fastcnn/fastcnn.h"
#include "fc_omp.h"

int fc_openmp_enabled(void)
{
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}

int fc_max_threads(void) { return omp_get_max_threads(); }
