"""Peak memory of one convolution forward + backward, in a fresh process per batch size.

The question answered: does a backend's *workspace* (everything besides the tensors the
caller must hold anyway) grow with the batch size N? An im2col convolution that builds
the whole ``(C*KH*KW, N*OH*OW)`` column matrix does (the NumPy reference: by design, it
is written to be read); a chunked one should not (target: a fixed budget, e.g. 64 MB).

Each measurement runs ``python -m fastcnn.bench.memory --case C --n N --backend B`` so
that no earlier allocation of the parent pollutes the high-water marks. In the child:

1. imports and a warm-up on a single-image, single-channel variant (Numba compiles,
   lazy imports load; tiny, so buffers a backend keeps between calls stay small);
2. the inputs ``x, w, b, dout`` are allocated; ``rss_before`` = resident set size now;
   the kernel's high-water mark is reset (``/proc/self/clear_refs``, Linux) when possible;
3. ``tracemalloc`` starts, then one ``conv2d_forward`` + ``conv2d_backward``;
4. measured: ``traced_peak`` = peak of NumPy/Python allocations made during step 3
   (NumPy reports its buffers to tracemalloc; C ``malloc`` inside a backend does not),
   and ``rss_peak`` = the process high-water mark (``VmHWM`` after the reset, else
   ``resource.getrusage(RUSAGE_SELF).ru_maxrss``), which sees every allocation.

``workspace = peak - inputs - outputs - grads``: the traced one is
``traced_peak - (out + dx + dw + db)`` (the inputs were allocated before tracing
started), the RSS one is ``rss_peak - rss_before - (out + dx + dw + db)``.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import os
import resource
import subprocess
import sys
import tracemalloc

from fastcnn import kernels
from fastcnn.kernels._dispatch import use_backend
from fastcnn.tools.bench.cases import get_case, make_inputs

__all__ = ["measure_in_subprocess", "measure_here"]


def _rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _reset_high_water() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")      # "5": reset the peak resident set size (Linux >= 4.0)
        return True
    except OSError:
        return False


def _high_water_bytes(reset: bool) -> int:
    if reset:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def measure_here(case_name: str, n: int, backend: str) -> dict:
    """Measure in *this* process (use :func:`measure_in_subprocess` from a report)."""
    case = dataclasses.replace(get_case(case_name), n=n)
    with use_backend(backend):
        # Warm up on a 1-image, 1-channel, 1-filter variant: it compiles what Numba
        # compiles (per dtype and rank, not per shape) but leaves only tiny buffers
        # behind, so a backend that keeps its workspace between calls still allocates
        # the real one inside the measured call, where it is counted.
        small = make_inputs(dataclasses.replace(case, n=1, c=1, f=1))
        out, cache = kernels.conv2d_forward(small["x"], small["w"], small["b"],
                                            case.stride, case.padding)
        kernels.conv2d_backward(small["dout"], cache)
        del out, cache, small
        inp = make_inputs(case)
        inputs_bytes = sum(a.nbytes for a in inp.values())
        gc.collect()
        rss_before = _rss_bytes()
        reset = _reset_high_water()
        tracemalloc.start()
        out, cache = kernels.conv2d_forward(inp["x"], inp["w"], inp["b"], case.stride,
                                            case.padding)
        dx, dw, db = kernels.conv2d_backward(inp["dout"], cache)
        _, traced_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        rss_peak = _high_water_bytes(reset)
    results_bytes = out.nbytes + dx.nbytes + dw.nbytes + db.nbytes
    mib = 2.0 ** 20
    return {"case": case_name, "n": n, "backend": backend, "shape": case.shape_text,
            "inputs_mb": inputs_bytes / mib, "outputs_grads_mb": results_bytes / mib,
            "traced_peak_mb": traced_peak / mib,
            "rss_before_mb": rss_before / mib, "rss_peak_mb": rss_peak / mib,
            "rss_method": "VmHWM after clear_refs" if reset else "ru_maxrss",
            "ru_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / mib,
            "workspace_traced_mb": (traced_peak - results_bytes) / mib,
            "workspace_rss_mb": (rss_peak - rss_before - results_bytes) / mib}


def measure_in_subprocess(case_name: str, n: int, backend: str, threads: int,
                          timeout: float = 600) -> dict:
    """Run :func:`measure_here` in a fresh interpreter; returns its dict, or a dict with
    an ``"error"`` key if the child failed (e.g. out of memory)."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads),
               NUMBA_NUM_THREADS=str(threads))
    cmd = [sys.executable, "-m", "fastcnn.tools.bench.memory", "--case", case_name,
           "--n", str(n), "--backend", backend]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"case": case_name, "n": n, "backend": backend, "error": "timeout"}
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["?"])[-1]
        return {"case": case_name, "n": n, "backend": backend,
                "error": f"exit {proc.returncode}: {tail}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", required=True)
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--backend", required=True)
    args = parser.parse_args(argv)
    print(json.dumps(measure_here(args.case, args.n, args.backend)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
