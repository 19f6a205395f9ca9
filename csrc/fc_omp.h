/*
 * fc_omp.h -- OpenMP shim (private to csrc/).
 *
 * With OpenMP (_OPENMP defined by -fopenmp) this includes <omp.h>; without it the
 * pragmas are ignored by the compiler and these stubs make the few omp_* calls work,
 * so every kernel compiles and runs serially (sklearn's _openmp_helpers idea).
 * FC_OMP_PARALLEL_FOR(n) is `#pragma omp parallel for schedule(static) num_threads(n)`:
 * static schedule = a fixed partition of the iterations, and every kernel is written
 * so that each output element is computed by exactly one iteration in a fixed order,
 * which is why results do not depend on the thread count. FC_OMP_PARALLEL_FOR_DYNAMIC
 * hands iterations out on demand instead (same results: an iteration's work does not
 * depend on which thread runs it); it is used for few, large iterations, where a thread
 * descheduled by a busy machine would otherwise hold up its whole static share.
 */
#ifndef FASTCNN_FC_OMP_H
#define FASTCNN_FC_OMP_H

#ifdef _OPENMP
#include <omp.h>
#define FC_PRAGMA(x) _Pragma(#x)
#define FC_OMP_PARALLEL_FOR(n) FC_PRAGMA(omp parallel for schedule(static) num_threads(n))
#define FC_OMP_PARALLEL_FOR_DYNAMIC(n) \
    FC_PRAGMA(omp parallel for schedule(dynamic) num_threads(n))
/* `#pragma omp simd reduction(+: ...)` on the next loop: vector partial sums (see
 * fc_batchnorm_impl.h); ignored without OpenMP (then a plain serial sum) */
#define FC_OMP_SIMD_SUM(s) FC_PRAGMA(omp simd reduction(+ : s))
#define FC_OMP_SIMD_SUM2(a, b) FC_PRAGMA(omp simd reduction(+ : a, b))
/* FC_OMP_PARALLEL_FOR_DYNAMIC whose iterations OR their int status into `status` */
#define FC_OMP_PARALLEL_FOR_DYNAMIC_STATUS(n, status) \
    FC_PRAGMA(omp parallel for schedule(dynamic) num_threads(n) reduction(| : status))
#else
static inline int omp_get_max_threads(void) { return 1; }
static inline int omp_get_thread_num(void) { return 0; }
#define FC_OMP_SIMD_SUM(s)
#define FC_OMP_SIMD_SUM2(a, b)
/* serial build: the thread count is unused (a statement, so it sits where the pragma was) */
#define FC_OMP_PARALLEL_FOR(n) (void)(n);
#define FC_OMP_PARALLEL_FOR_DYNAMIC(n) (void)(n);
#define FC_OMP_PARALLEL_FOR_DYNAMIC_STATUS(n, status) (void)(n);
#endif

/* Threads worth starting for `work` independent items: never more than items, >= 1. */
static inline int fc_threads_for(int n_threads, long long work)
{
    if (n_threads < 1) n_threads = 1;
    if (work < (long long)n_threads) n_threads = work > 0 ? (int)work : 1;
    return n_threads;
}

#endif /* FASTCNN_FC_OMP_H */
