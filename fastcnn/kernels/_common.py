"""What the compiled ("cython") and Numba backends share: how many threads a call may
use, workspaces reused across calls, single-threaded BLAS while our own threads run, and
the process's thread runtime policy (OpenMP waiting, Numba's threading layer, fork).

The thread runtime policy (docs/architecture.md, "Threading model")
-------------------------------------------------------------------
One process can hold three pools of threads: libgomp's (our OpenMP regions), OpenBLAS's
pthreads (NumPy's matmul, and SciPy's BLAS under our GEMMs) and Numba's threading layer.
On a laptop's few cores they fight unless told not to; measured here, a ``model.fit`` ran
2-3x slower by default than with the rules below. The library applies them itself, so a
plain ``model.fit`` in a notebook is fast without any environment variable:

1. **One parallel level: ours.** While a kernel runs, and for the whole of
   ``fit``/``evaluate``/``predict`` (:func:`single_threaded_blas`), every BLAS library
   runs on one thread. A GEMM inside a kernel is one task of our pool; NumPy's matmul in
   a Dense layer is small next to the convolutions of a CNN.
2. **No spinning between parallel regions.** After each region libgomp's workers spin
   (300,000 rounds by default) before they sleep, stealing the cores that the main
   thread needs for NumPy work in between. ``OMP_WAIT_POLICY=PASSIVE`` makes them sleep
   at once. libgomp reads it once, when it loads, so :func:`openmp_environment` sets it
   around the import of the compiled extension -- only when the user set neither
   ``OMP_WAIT_POLICY`` nor ``GOMP_SPINCOUNT`` -- and restores the environment afterwards
   (child processes see the user's environment, not ours).
3. **Fork-safe.** GNU libgomp has no fork handler: a child forked after a parallel
   region hangs in its first one. :func:`register_fork_release` frees the pool right
   before every ``os.fork()`` (parent and child start a fresh one at their next region).
   Numba's "omp" layer kills such a child, so Numba gets a fork-safe layer ("forksafe":
   tbb, else workqueue) unless ``NUMBA_THREADING_LAYER`` says otherwise
   (:func:`choose_numba_threading_layer`); workqueue may not be entered by two threads at
   once, so Numba kernel launches hold :data:`LAUNCH_LOCK`.
4. **Race-free state.** ``use_num_threads`` blocks are per Python thread (see
   ``fastcnn.kernels._dispatch``); the BLAS guard counts who is inside it under a lock
   and restores the BLAS thread counts only when the last caller leaves.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading

import numpy as np
from threadpoolctl import ThreadpoolController

from fastcnn.kernels import _dispatch
from fastcnn.kernels.geometry import is_pointwise

__all__ = [
    "GRAIN", "threads_for", "conv_work", "conv_chunk_images", "conv_dw_runs",
    "CONV_GEMM_MIN_COLUMNS", "CONV_BLOCK_BYTES", "CONV_DW_RUNS", "WorkspacePool", "single_threaded_blas",
    "refresh_blas_libraries", "openmp_environment", "openmp_policy", "register_fork_release",
    "choose_numba_threading_layer", "LAUNCH_LOCK", "fit_scope",
]

# ------------------------------------------------------------------- threads per call

#: A call with less work than this (elements touched; for conv, multiply-adds / 16, see
#: :func:`conv_work`) runs on one thread: waking and joining a second one costs more than
#: it saves, badly so on a busy machine (PyTorch's parallel_for has the same kind of grain
#: size). Results never depend on the thread count, so this changes only the speed.
GRAIN = 2**18


def threads_for(work: int | None = None, limit: int | None = None) -> int:
    """Threads for one kernel call: ``fastcnn.get_num_threads()``, at most ``limit`` (a
    runtime's own ceiling), and 1 when ``work`` is below :data:`GRAIN`."""
    if work is not None and work < GRAIN:
        return 1
    n = _dispatch.get_num_threads()
    if limit is not None:
        n = min(n, limit)
    return max(1, n)


def conv_work(g, f: int, groups: int = 1) -> int:
    """The grain measure of a convolution with ``f`` filters in ``groups`` groups on
    geometry ``g``: multiply-adds / 16 (one multiply-add is far cheaper than touching an
    element)."""
    return g.n * f * g.oh * g.ow * (g.c // groups) * g.kh * g.kw // 16


# ------------------------------------------------------------- conv image blocks

#: Images are grouped into a conv block until its GEMMs have about this many columns:
#: a per-image GEMM of a small feature map (e.g. 16 x 64 x 9) is mostly BLAS call overhead,
#: while one image per block needs no gather/scatter copies (the compiled backend measured
#: one image faster for 14x14 outputs, 196 columns; its ``GEMM_MIN_COLUMNS`` is the same).
CONV_GEMM_MIN_COLUMNS = 128
#: Upper bound of one block's workspace (columns + GEMM output) per thread, in bytes.
CONV_BLOCK_BYTES = 8 * 2**20
#: Number of fixed runs of consecutive blocks whose ``dW`` partials are added in run order.
CONV_DW_RUNS = 8


def conv_chunk_images(g, f: int, itemsize: int) -> int:
    """Images per conv block ``nb``: ``ceil(CONV_GEMM_MIN_COLUMNS / (OH*OW))``, at most
    what fits :data:`CONV_BLOCK_BYTES` (``(C*KH*KW + F) * OH*OW`` elements per image), at
    least 1, at most N; 1 for a pointwise conv (``x[n]`` is its own column matrix).
    From the geometry only, never the thread count, so results do not depend on it.
    (The compiled backend applies the same rule, ``cython.backend.conv_chunk_images``.)"""
    if is_pointwise(g):
        return 1
    p = g.oh * g.ow
    per_image = (g.c * g.kh * g.kw + f) * p * itemsize
    want = -(-CONV_GEMM_MIN_COLUMNS // p)                   # ceil division
    return int(max(1, min(max(g.n, 1), want, CONV_BLOCK_BYTES // per_image)))


def conv_dw_runs(nblocks: int) -> list[tuple[int, int]]:
    """The fixed partition of ``nblocks`` conv blocks into ``min(nblocks, CONV_DW_RUNS)``
    runs of consecutive blocks, as ``[(first, stop), ...]``: run r is blocks
    ``[r*nblocks // R, (r+1)*nblocks // R)``. Each run's ``dW`` partial is summed in
    block order, then the partials in run order: one order for any thread count."""
    runs = max(1, min(nblocks, CONV_DW_RUNS))
    return [(r * nblocks // runs, (r + 1) * nblocks // runs) for r in range(runs)]


# ------------------------------------------------------------------------ workspaces


class WorkspacePool:
    """Flat scratch arrays kept between calls, one per (name, dtype).

    Allocating fresh memory every call costs page faults (15-20% of a training step
    here). ``take`` removes the array from the pool (``dict.pop`` is atomic), so two
    Python threads never share one: the second caller allocates its own, and ``give``
    keeps one of them. The memory kept is one array per name, whatever the number of
    threads or calls.
    """

    def __init__(self):
        self._arrays: dict = {}

    def take(self, name: str, size: int, dtype) -> np.ndarray:
        """A flat array of at least ``size`` elements (``give`` it back when done)."""
        key = (name, np.dtype(dtype).str)
        arr = self._arrays.pop(key, None)
        if arr is None or arr.size < size:
            arr = np.empty(max(size, 1), dtype=dtype)
        return arr

    def give(self, name: str, arr: np.ndarray) -> None:
        """Keep ``arr`` for the next :meth:`take` of ``name``."""
        self._arrays[(name, arr.dtype.str)] = arr

    def borrow(self, name: str, size: int, dtype) -> "_Borrowed":
        """``with pool.borrow(name, size, dtype) as a:`` -- exactly ``size`` elements
        (at least 1) for the block, given back afterwards."""
        return _Borrowed(self, name, size, dtype)

    def clear(self) -> None:
        """Drop every kept array (frees the memory)."""
        self._arrays.clear()

    def nbytes(self) -> int:
        """Bytes kept right now."""
        return sum(arr.nbytes for arr in list(self._arrays.values()))


class _Borrowed:
    """The context manager of :meth:`WorkspacePool.borrow` (a small class rather than a
    generator: it runs several times per kernel call)."""

    __slots__ = ("pool", "name", "size", "dtype", "arr")

    def __init__(self, pool: WorkspacePool, name: str, size: int, dtype):
        self.pool, self.name, self.size, self.dtype = pool, name, size, dtype

    def __enter__(self) -> np.ndarray:
        self.arr = self.pool.take(self.name, self.size, self.dtype)
        return self.arr[:max(self.size, 1)]

    def __exit__(self, *exc) -> None:
        self.pool.give(self.name, self.arr)


# ------------------------------------------------------------ single-threaded BLAS


class _BlasGuard:
    """BLAS on one thread while anyone is inside; the callers' counts restored after.

    A plain save/set/restore per call races when two Python threads overlap (A saves 2,
    B saves A's 1, A restores 2, B restores 1: BLAS stays on 1 thread). Here the first
    caller in saves, the last one out restores, and the count of who is inside (per
    thread, so that a forked child can forget the threads it does not have) is kept
    under a lock.
    """

    def __init__(self):
        self.lock = threading.Lock()
        self.inside: dict[int, int] = {}      # thread ident -> nesting depth
        self.saved: list = []                 # [(library controller, its thread count)]
        self.libraries = None                 # threadpoolctl controllers of the BLAS libs

    def _blas_libraries(self) -> list:
        if self.libraries is None:
            controller = ThreadpoolController().select(user_api="blas")
            self.libraries = list(controller.lib_controllers)
        return self.libraries

    def _limit(self, libraries) -> None:
        for lib in libraries:
            previous = lib.num_threads
            if previous != 1:
                lib.set_num_threads(1)
                self.saved.append((lib, previous))

    def enter(self) -> None:
        me = threading.get_ident()
        with self.lock:
            if not self.inside:
                self._limit(self._blas_libraries())
            self.inside[me] = self.inside.get(me, 0) + 1

    def exit(self) -> None:
        me = threading.get_ident()
        with self.lock:
            depth = self.inside.pop(me) - 1
            if depth:
                self.inside[me] = depth
            elif not self.inside:
                self._restore()

    def _restore(self) -> None:
        for lib, previous in reversed(self.saved):
            lib.set_num_threads(previous)
        self.saved = []

    def refresh(self) -> None:
        """Rescan the loaded BLAS libraries (a backend import may load one); a new one
        is limited at once when someone is inside."""
        with self.lock:
            self.libraries = None
            libraries = self._blas_libraries()
            if self.inside:
                limited = {lib.filepath for lib, _ in self.saved}
                self._limit([lib for lib in libraries if lib.filepath not in limited])

    def after_fork_in_child(self) -> None:
        """Only the forking thread lives on in the child: forget the others."""
        self.lock = threading.Lock()
        me = threading.get_ident()
        self.inside = {ident: depth for ident, depth in self.inside.items() if ident == me}
        if not self.inside:
            self._restore()


_blas_guard = _BlasGuard()


class single_threaded_blas:   # noqa: N801 - used like a function: with single_threaded_blas()
    """Context manager: every BLAS library runs on one thread inside (threadpoolctl),
    restored when the last caller of any Python thread leaves. Nested and concurrent
    use is safe. (A class, not a generator: it runs on every kernel call.)"""

    __slots__ = ()

    def __enter__(self):
        _blas_guard.enter()

    def __exit__(self, *exc) -> None:
        _blas_guard.exit()


def refresh_blas_libraries() -> None:
    """Called by a backend module after its import (it may have loaded a BLAS)."""
    _blas_guard.refresh()


@contextlib.contextmanager
def fit_scope():
    """The runtime of ``fit``/``evaluate``/``predict``: the current backend imported
    (so its BLAS is known), then single-threaded BLAS for the whole call (rule 1)."""
    _dispatch.backend_module(_dispatch.get_backend())
    with single_threaded_blas():
        yield


# --------------------------------------------------------------- OpenMP and fork

_OPENMP_USER_VARIABLES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")
_policy = {"wait": "not loaded yet"}


def _libgomp_already_loaded() -> bool:
    """True when this process has GNU libgomp loaded already (Linux: /proc/self/maps).
    A vendored copy with another name (e.g. PyTorch's) is a separate runtime and does
    not count."""
    try:
        with open("/proc/self/maps") as maps:
            text = maps.read()
    except OSError:
        return False
    return re.search(r"/libgomp\.so\.1(\.\d+)*$", text, re.MULTILINE) is not None


@contextlib.contextmanager
def openmp_environment():
    """Context manager around the first import of the compiled extension: OpenMP
    threads wait passively (rule 2), unless the user chose a policy or libgomp was
    already loaded by someone else (then it is too late: libgomp read its environment
    when it loaded). :func:`openmp_policy` tells which happened."""
    chosen = {v: os.environ[v] for v in _OPENMP_USER_VARIABLES if v in os.environ}
    if chosen:
        _policy["wait"] = "set by the user: " + ", ".join(f"{k}={v}" for k, v in chosen.items())
        yield
        return
    if _libgomp_already_loaded():
        _policy["wait"] = "libgomp's default (it was loaded before fastcnn)"
        yield
        return
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    try:
        yield
    finally:
        os.environ.pop("OMP_WAIT_POLICY", None)
    _policy["wait"] = "PASSIVE (set by fastcnn)"


def openmp_policy() -> str:
    """How the OpenMP threads of the compiled backend wait between regions."""
    return _policy["wait"]


def register_fork_release(release) -> None:
    """Call ``release()`` (free the OpenMP pool of the forking thread) right before every
    ``os.fork()`` of this process, including ``multiprocessing``'s fork and forkserver
    start methods (rule 3). Registered once by the compiled backend."""
    os.register_at_fork(before=release)


def choose_numba_threading_layer(numba) -> str:
    """Ask Numba for a fork-safe threading layer (tbb, else workqueue) unless the user
    chose one (``NUMBA_THREADING_LAYER``) or a layer is running already. Returns the
    configured choice."""
    if "NUMBA_THREADING_LAYER" not in os.environ and numba.config.THREADING_LAYER == "default":
        try:
            numba.threading_layer()        # raises ValueError while no layer has started
        except ValueError:
            numba.config.THREADING_LAYER = "forksafe"
    return numba.config.THREADING_LAYER


#: Held by every Numba kernel launch: Numba's workqueue layer aborts the process when two
#: Python threads enter it at once. Kernels from two threads would share the same cores
#: anyway, so running them one after the other costs nothing but the wait.
LAUNCH_LOCK = threading.RLock()


def _after_fork_in_child() -> None:
    """A lock held by another thread at fork time would stay held forever in the child
    (that thread does not exist there): make new ones."""
    global LAUNCH_LOCK
    LAUNCH_LOCK = threading.RLock()
    _blas_guard.after_fork_in_child()


os.register_at_fork(after_in_child=_after_fork_in_child)
