"""pytest-benchmark suites: shared presets, thread pinning and backend skipping.

Run with ``pytest benchmarks --benchmark-only`` (README.md in this folder). The files
are named ``bench_*.py`` and collected by :func:`pytest_collect_file` below, so the
default test run (``testpaths = ["tests"]``) never picks them up.

Parametrization (:func:`pytest_generate_tests`):

* ``backend``: every fastcnn backend plus ``"torch"`` (and the module's
  ``EXTRA_BACKENDS``, e.g. ``"gemms"`` for convolutions); a missing one is a skip.
* ``threads``: ``--bench-threads`` (default ``1,2``), pinned for the whole test by
  :func:`fastcnn.bench.timing.pinned_threads` (threadpoolctl for BLAS/OpenMP,
  ``fastcnn.use_num_threads``, Numba's and torch's pools).
* ``case_name``: the presets of the module's ``KERNEL`` (``--bench-quick``: only the
  small quick ones), from :mod:`fastcnn.bench.cases`.
"""

from __future__ import annotations

import pytest

import fastcnn
from fastcnn.tools.bench import cases as C
from fastcnn.tools.bench.timing import pinned_threads
from fastcnn.tools.bench.torch_ref import torch_available, torch_callable, torch_outputs


def pytest_collect_file(parent, file_path):
    if file_path.suffix == ".py" and file_path.name.startswith("bench_"):
        return pytest.Module.from_parent(parent, path=file_path)
    return None


def pytest_addoption(parser):
    group = parser.getgroup("fastcnn benchmarks")
    group.addoption("--bench-threads", default="1,2",
                    help="comma-separated thread counts to benchmark (default 1,2)")
    group.addoption("--bench-quick", action="store_true",
                    help="only the small presets of --quick")
    group.addoption("--bench-rounds", type=int, default=5,
                    help="timed rounds per benchmark (pedantic mode; default 5)")


def pytest_generate_tests(metafunc):
    config = metafunc.config
    if "backend" in metafunc.fixturenames:
        extra = list(getattr(metafunc.module, "EXTRA_BACKENDS", []))
        metafunc.parametrize("backend", list(fastcnn.backend.BACKENDS) + ["torch"] + extra)
    if "threads" in metafunc.fixturenames:
        threads = [int(t) for t in config.getoption("--bench-threads").split(",") if t]
        metafunc.parametrize("threads", threads, ids=[f"{t}t" for t in threads])
    if "case_name" in metafunc.fixturenames:
        kernel = metafunc.module.KERNEL
        names = C.QUICK_CASES if config.getoption("--bench-quick") else C.FULL_CASES
        metafunc.parametrize("case_name", [n for n in names if C.CASES[n].kernel == kernel])


_CHECKED: dict = {}


def _require(backend):
    if backend == "torch":
        if not torch_available():
            pytest.skip("PyTorch is not installed (optional: pip install torch==2.13.0)")
    elif backend != "gemms" and backend not in fastcnn.available_backends():
        pytest.skip(f"backend {backend!r} is not available here")


def _check_once(case, direction, backend, inp):
    """Compare this backend with the NumPy reference once per (case, direction)."""
    key = (case.name, direction, backend)
    if backend in ("gemms", "numpy") or key in _CHECKED:
        return
    reference = C.kernel_outputs(case, "fwd+bwd", "numpy", inp)
    want = {"fwd": reference[:1], "bwd": reference[1:], "fwd+bwd": reference}[direction]
    got = (torch_outputs(case, direction, inp) if backend == "torch"
           else C.kernel_outputs(case, direction, backend, inp))
    ok, err = C.check_outputs(got, want)
    _CHECKED[key] = err
    assert ok, f"{backend} {case.name} {direction}: max scale-relative error {err:.2e}"


@pytest.fixture
def run_case(benchmark, request):
    """``run_case(case_name, direction, backend, threads)``: build inputs (untimed),
    check once against the reference, then time ``direction`` with pytest-benchmark
    (pedantic: ``--bench-rounds`` rounds of one call after two warm-up calls, which
    compile Numba's kernels)."""
    rounds = request.config.getoption("--bench-rounds")

    def run(case_name, direction, backend, threads):
        _require(backend)
        case = C.get_case(case_name)
        if backend == "gemms" and case.kernel != "conv2d":
            pytest.skip("the GEMMs-alone baseline exists for convolutions only")
        inp = C.make_inputs(case)
        with pinned_threads(threads):
            _check_once(case, direction, backend, inp)
            if backend == "gemms":
                fn = C.gemm_callable(case, direction)
            elif backend == "torch":
                fn = torch_callable(case, direction, inp)
            else:
                fn = C.kernel_callable(case, direction, backend, inp)
            amount = C.work(case, direction, inp["x"].itemsize)
            # One group per (kernel, direction, case, threads): backends side by side.
            benchmark.group = f"{case.kernel} {direction} {case.name} {threads}t"
            benchmark.extra_info.update(
                backend=backend, threads=threads, shape=case.shape_text, dtype="float32",
                direction=direction, flops=amount["flops"], bytes=amount["bytes"])
            benchmark.pedantic(fn, rounds=rounds, iterations=1, warmup_rounds=2)
    return run
