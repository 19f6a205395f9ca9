"""Timing: thread pinning and medians of repeated calls.

Every measurement runs inside :func:`pinned_threads`, which fixes *all* the thread
pools that could run the work at the same count ``n``:

* BLAS and OpenMP runtimes loaded in the process, through ``threadpoolctl``;
* fastcnn's own kernels, through ``fastcnn.use_num_threads(n)``;
* Numba's pool (``numba.set_num_threads``) when Numba is already imported;
* PyTorch's intra-op pool (``torch.set_num_threads``) when torch is already imported.

:func:`time_call` then runs warm-up calls (Numba compiles on the first one, caches and
page mappings get filled) and returns the per-call time of ``repeats`` timed rounds;
the report uses their median. Calls shorter than ``min_round`` seconds are repeated
inside a round (and the round divided by the count) so that the clock's resolution
and Python's call overhead do not dominate tiny kernels.
"""

from __future__ import annotations

import contextlib
import statistics
import sys
import time

from threadpoolctl import threadpool_limits

from fastcnn.kernels._dispatch import use_num_threads

__all__ = ["pinned_threads", "time_call", "time_interleaved", "median"]


@contextlib.contextmanager
def pinned_threads(n: int):
    """Run the ``with`` block with every thread pool limited to ``n`` threads."""
    restore = []
    numba = sys.modules.get("numba")
    if numba is not None:
        previous = numba.get_num_threads()
        numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
        restore.append(lambda: numba.set_num_threads(previous))
    torch = sys.modules.get("torch")
    if torch is not None:
        previous_torch = torch.get_num_threads()
        torch.set_num_threads(n)
        restore.append(lambda: torch.set_num_threads(previous_torch))
    try:
        with threadpool_limits(limits=n), use_num_threads(n):
            yield n
    finally:
        for undo in reversed(restore):
            undo()


def time_call(fn, repeats: int = 5, warmup: int = 2, min_round: float = 0.005) -> list[float]:
    """Seconds per call of ``fn()`` for each of ``repeats`` rounds, after ``warmup`` calls.

    The warm-up also sizes the rounds: a round runs ``fn`` ``k`` times where ``k`` makes
    it last at least ``min_round`` seconds (``k = 1`` for anything slower).
    """
    if repeats < 1:
        raise ValueError(f"time_call: repeats must be >= 1; got {repeats!r}.")
    clock = time.perf_counter
    single = float("inf")
    for _ in range(max(warmup, 1)):
        start = clock()
        fn()
        single = min(single, clock() - start)
    inner = 1 if single >= min_round else min(1000, int(min_round / max(single, 1e-7)) + 1)
    times = []
    for _ in range(repeats):
        start = clock()
        for _ in range(inner):
            fn()
        times.append((clock() - start) / inner)
    return times


def time_interleaved(fns: dict, repeats: int = 5, warmup: int = 2,
                     min_round: float = 0.005, on_warm=None) -> dict:
    """:func:`time_call` for several functions doing the same work, with their timed
    rounds *interleaved* (round 1 of each, then round 2 of each, ...).

    On a shared machine another process's burst then slows every contender's round
    alike instead of one contender's five, so the ratios between them stay fair.
    ``on_warm(name)`` is called after each function's warm-up (e.g. to show progress).
    Returns ``{name: [seconds per call, one per round]}``.
    """
    if repeats < 1:
        raise ValueError(f"time_interleaved: repeats must be >= 1; got {repeats!r}.")
    clock = time.perf_counter
    inner = {}
    for name, fn in fns.items():
        single = float("inf")
        for _ in range(max(warmup, 1)):
            start = clock()
            fn()
            single = min(single, clock() - start)
        inner[name] = (1 if single >= min_round
                       else min(1000, int(min_round / max(single, 1e-7)) + 1))
        if on_warm is not None:
            on_warm(name)
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = clock()
            for _ in range(inner[name]):
                fn()
            times[name].append((clock() - start) / inner[name])
    return times


def median(values) -> float:
    return float(statistics.median(values))
