"""The "Training steps" section of the kernel report: every registered step benchmark
(:mod:`fastcnn.tools.bench.steps`) per backend and thread count, interleaved with its
PyTorch twin and its GEMMs alone."""

from __future__ import annotations

from fastcnn.kernels._dispatch import use_backend
from fastcnn.tools.bench.steps import load_step_benchmarks
from fastcnn.tools.bench.tables import fmt, ms, table
from fastcnn.tools.bench.targets import TARGET_THREADS
from fastcnn.tools.bench.timing import median, pinned_threads, time_interleaved

__all__ = ["steps_section"]


def _step_callable(backend, build):
    """Build one step (untimed) and return it; a fastcnn backend's step runs inside
    ``use_backend`` on every call (~40 us, a small fraction of any step here), so the
    steps of all backends can be timed interleaved."""
    if backend in ("gemms", "torch"):
        return build()
    with use_backend(backend):
        step = build()

    def run():
        with use_backend(backend):
            return step()
    return run


def _time_bench(bench, opts, use_torch, progress, errors) -> list[dict]:
    """The rows of one step benchmark: every backend (+ gemms, torch) per thread count,
    their rounds interleaved."""
    builders = [(b, bench.build) for b in opts.backends]
    if bench.build_gemms is not None:
        builders.append(("gemms", bench.build_gemms))
    if use_torch and bench.build_torch is not None:
        builders.append(("torch", bench.build_torch))
    rows = []
    for threads in opts.threads:
        progress.set_postfix_str(f"step {bench.name} {threads}t")
        fns = {}
        with pinned_threads(threads):
            for backend, build in builders:
                try:
                    fns[backend] = _step_callable(backend, build)
                except Exception as exc:  # noqa: BLE001 - reported, not hidden
                    errors.append(f"step {bench.name} {backend} {threads}t: "
                                  f"{type(exc).__name__}: {exc}")
            try:
                all_times = time_interleaved(fns, repeats=opts.repeats, warmup=opts.warmup)
            except Exception as exc:  # noqa: BLE001 - reported, not hidden
                errors.append(f"step {bench.name} {threads}t: {type(exc).__name__}: {exc}")
                all_times = {}
        del fns
        for backend, times in all_times.items():
            rows.append({"step": bench.name, "description": bench.description,
                         "backend": backend, "threads": threads,
                         "median_ms": median(times) * 1e3,
                         "times_ms": [t * 1e3 for t in times]})
        progress.update(1)
    return rows


def _judge(rows, registry) -> list[list]:
    """Add ``vs_torch``, ``vs_gemms`` and the target verdicts to each row; the table lines."""
    index = {(r["step"], r["backend"], r["threads"]): r["median_ms"] for r in rows}
    lines = []
    for r in rows:
        bench = registry[r["step"]]
        ratios = {}
        for other in ("torch", "gemms"):
            key = (r["step"], other, r["threads"])
            ratios[other] = (r["median_ms"] / index[key]
                             if key in index and r["backend"] != other else None)
        vs_torch, vs_gemms = ratios["torch"], ratios["gemms"]
        r.update(vs_torch=vs_torch, vs_gemms=vs_gemms)
        verdicts = []
        if r["backend"] == "cython" and r["threads"] == TARGET_THREADS:
            for limit, value, what in ((bench.max_vs_torch, vs_torch, "x torch"),
                                       (bench.max_vs_gemms, vs_gemms, "x GEMMs")):
                if limit is not None:
                    ok = None if value is None else value <= limit
                    verdicts.append(f"{what} <= {limit:g}: "
                                    + {True: "met", False: "MISSED", None: "n/a"}[ok])
        r["targets"] = verdicts
        lines.append([r["step"], r["backend"], r["threads"], ms(r["median_ms"]),
                      fmt(vs_torch), fmt(vs_gemms), "; ".join(verdicts)])
    return lines


def _print_checks(checks, rows, out) -> None:
    print("First-step loss, fastcnn (default backend) vs the PyTorch twin, same weights "
          "and batch:\n", file=out)
    for name, c in checks.items():
        print(f"- {name}: {c['fastcnn']:.6f} vs {c['torch']:.6f} (relative "
              f"{c['rel_error']:.1e}): {'ok' if c['ok'] else 'FAIL'}", file=out)
        for r in rows:
            if r["step"] == name:
                r["check"] = c
    print(file=out)


def steps_section(opts, use_torch, out, progress, errors):
    """Time every registered training step (:mod:`fastcnn.tools.bench.steps`) per thread
    count; the rounds of all backends, ``gemms`` and ``torch`` of one step are
    interleaved."""
    registry, import_errors = load_step_benchmarks()
    print("## Training steps\n", file=out)
    if not registry:
        print("No step benchmarks registered (see fastcnn/tools/bench/steps.py: register_step"
              + (f"; import errors: {import_errors}" if import_errors else "") + ").\n",
              file=out)
        return []
    errors.extend(f"step module {e}" for e in import_errors)
    benches = [b for b in registry.values() if opts.steps is None or b.name in opts.steps]
    rows, checks = [], {}
    for bench in benches:
        if use_torch and bench.check is not None:
            progress.set_postfix_str(f"step {bench.name} check")
            try:
                with pinned_threads(max(opts.threads)):
                    checks[bench.name] = bench.check()
            except Exception as exc:  # noqa: BLE001 - reported, not hidden
                errors.append(f"step {bench.name} check: {type(exc).__name__}: {exc}")
        rows += _time_bench(bench, opts, use_torch, progress, errors)
    lines = _judge(rows, registry)
    for bench in benches:
        print(f"- {bench.name}: {bench.description}", file=out)
    print("\nOne step = forward, loss, backward, optimizer update on a fixed batch; "
          "gemms = the step's matrix products alone (np.matmul, out= preallocated); "
          "x torch / x GEMMs = this time / that one (same step, threads). PyTorch runs in "
          "the same process as fastcnn here, so at 2 threads the two OpenMP pools can slow "
          "each other; `python -m fastcnn bench --fit` runs each side in its own process "
          "(whole epochs, the ratios to quote).\n", file=out)
    table(["step", "backend", "thr", "median ms", "x torch", "x GEMMs", "target"], lines, out)
    if checks:
        _print_checks(checks, rows, out)
    return rows
