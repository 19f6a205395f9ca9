/*
 * fc_info.c -- build information for fastcnn.show_config(): was this compiled with
 * OpenMP, and how many threads would OpenMP use by default; and the release of the
 * OpenMP thread pool before a fork() (see fc_openmp_release).
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

/* omp_pause_resource_all is OpenMP 5.0; GCC >= 9 and clang >= 8 ship it while still
 * announcing an older _OPENMP version */
#if defined(_OPENMP) && (_OPENMP >= 201811 || \
                         (defined(__clang__) && __clang_major__ >= 8) || \
                         (!defined(__clang__) && defined(__GNUC__) && __GNUC__ >= 9))
#define FC_HAVE_OMP_PAUSE 1
#endif

/*
 * Free the calling thread's OpenMP thread pool (OpenMP 5.0 omp_pause_resource_all with
 * omp_pause_hard: the worker threads exit). Called right before os.fork(): GNU libgomp
 * keeps no fork handler, so a child forked after a parallel region inherits a pool whose
 * threads do not exist in it and hangs in its first parallel region. With the pool
 * released, parent and child each start a fresh one at their next parallel region.
 * Returns 0 on success (or without OpenMP), non-zero when the runtime refused (inside a
 * parallel region) or is older than OpenMP 5.0.
 */
int fc_openmp_release(void)
{
#ifdef FC_HAVE_OMP_PAUSE
    return omp_pause_resource_all(omp_pause_hard);
#elif defined(_OPENMP)
    return 1;
#else
    return 0;
#endif
}
