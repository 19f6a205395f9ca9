"""What this machine can do, measured now: float32 GEMM rate and memory bandwidth.

Speed claims in fastcnn are ratios measured in one run (see docs/benchmarks.md), so every
report starts by measuring the two limits its figures are divided by:

* **GEMM rate**: ``np.matmul(a, b, out=c)`` with ``a, b, c`` float32 of
  ``size x size`` (default 2048), preallocated, at each thread count the report uses;
  ``GFLOP/s = 2 * size**3 / median time``. This is what the BLAS NumPy links
  (OpenBLAS here) sustains on a large, square, cache-friendly product.
* **memory bandwidth**: ``np.copyto(dst, src)`` of ``megabytes`` MB (default 256,
  far beyond any cache), counted as read + write: ``GB/s = 2 * bytes / median time``.
  One thread; a copy is what memory-bound kernels like pooling do at best.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform

import numpy as np
from threadpoolctl import threadpool_info

from fastcnn.tools.bench.timing import median, pinned_threads, time_call
from fastcnn.tools.config import config_info

__all__ = ["measure_gemm", "measure_bandwidth", "machine_info"]


def measure_gemm(threads: int, size: int = 2048, repeats: int = 5) -> dict:
    """float32 GEMM rate in GFLOP/s with BLAS pinned to ``threads`` threads."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    c = np.empty((size, size), dtype=np.float32)
    with pinned_threads(threads):
        times = time_call(lambda: np.matmul(a, b, out=c), repeats=repeats, warmup=2)
    seconds = median(times)
    return {"threads": threads, "size": size, "median_s": seconds,
            "gflops": 2.0 * size ** 3 / seconds / 1e9}


def measure_bandwidth(megabytes: int = 256, repeats: int = 5) -> dict:
    """Copy bandwidth in GB/s (read + write counted) of a ``megabytes`` MB array."""
    count = megabytes * 2 ** 20 // 4
    src = np.ones(count, dtype=np.float32)
    dst = np.zeros(count, dtype=np.float32)       # touched now: no page faults when timed
    with pinned_threads(1):
        times = time_call(lambda: np.copyto(dst, src), repeats=repeats, warmup=2)
    seconds = median(times)
    return {"megabytes": megabytes, "median_s": seconds,
            "gbs": 2.0 * src.nbytes / seconds / 1e9}


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict:
    """Static facts: CPU, core count, library versions, BLAS libraries, backends."""
    info = {"cpu": _cpu_model(), "cores": os.cpu_count(), "load_avg": os.getloadavg()}
    try:
        info.update({k: v for k, v in config_info().items() if k != "blas"})
    except Exception as err:  # noqa: BLE001 - config is informative only
        info["config_error"] = repr(err)
    info["blas"] = [{k: pool.get(k) for k in ("internal_api", "version", "num_threads",
                                              "user_api", "architecture")}
                    for pool in threadpool_info()]
    try:  # the version only: importing torch here would start its thread pool
        info["torch"] = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        info["torch"] = None
    return info
