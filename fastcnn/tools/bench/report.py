"""The benchmark report: every kernel x backend x case x thread count, as markdown tables.

What one row is (see also docs/benchmarks.md and :mod:`fastcnn.bench.cases`):

* **median ms**: median over ``repeats`` timed rounds, after warm-up calls, of one call
  of the kernel on preallocated inputs, all thread pools pinned to ``threads``; the
  rounds of every backend of one case, direction and thread count are interleaved.
* **GFLOP/s** (convolutions; forward ``2*N*F*C*KH*KW*OH*OW``, backward 2x, both 3x) or
  **GB/s** (pooling, batch norm; effective bytes, each tensor read or written once).
* **% peak**: that rate as a fraction of the float32 GEMM rate (at the same thread
  count) or of the copy bandwidth, both measured at the start of this run.
* **x numpy / x GEMMs / x torch**: the row's time divided by the NumPy reference's,
  by the same matrix products alone on preallocated arrays (convolutions), and by
  PyTorch CPU's, all at the same thread count. Below 1 means faster.
* **check**: the row's outputs against the NumPy reference, once per case and direction
  (scale-relative max error; ``ref`` for the reference itself).
* **target**: each docs/benchmarks.md target for this row (2 threads, fwd+bwd), met or missed.

Pseudo-backends: ``torch`` (PyTorch, when importable) and ``gemms`` (the GEMMs alone).
"""

from __future__ import annotations

import datetime
import json
import os
import sys
from dataclasses import asdict, dataclass, field

import numpy as np
from tqdm import tqdm

from fastcnn.kernels._dispatch import available_backends, get_backend
from fastcnn.tools.bench import cases as C
from fastcnn.tools.bench.machine import machine_info, measure_bandwidth, measure_gemm
from fastcnn.tools.bench.report_sections import (WORKSPACE_BUDGET_MB, breakdown_section,
                                                 memory_section)
from fastcnn.tools.bench.report_steps import steps_section
from fastcnn.tools.bench.steps import load_step_benchmarks
from fastcnn.tools.bench.tables import fmt as _fmt
from fastcnn.tools.bench.tables import ms as _ms
from fastcnn.tools.bench.tables import table as _table
from fastcnn.tools.bench.targets import TARGET_DIRECTION, TARGET_THREADS, TARGETS, judge
from fastcnn.tools.bench.timing import median, pinned_threads, time_interleaved
from fastcnn.tools.bench.torch_ref import torch_available, torch_callable, torch_outputs

__all__ = ["Options", "run_report", "WORKSPACE_BUDGET_MB"]


@dataclass
class Options:
    """Everything ``python -m fastcnn bench`` can be asked (defaults: the full report)."""

    cases: list = field(default_factory=lambda: list(C.FULL_CASES))
    backends: list = field(default_factory=available_backends)
    threads: list = field(default_factory=lambda: [1, 2])
    directions: tuple | None = None        # None: every direction of each kernel
    repeats: int = 5
    warmup: int = 2
    torch: bool = True
    breakdown: bool = False
    plot: str | None = None
    memory: bool = True
    memory_case: str = "conv3x3_64_32"
    memory_batches: tuple = (64, 512)
    memory_backends: list | None = None    # None: every backend in ``backends``
    gemm_size: int = 2048
    bandwidth_mb: int = 256
    progress: bool = True
    json_path: str | None = None
    command: str = ""
    steps: list | None = None              # training-step benchmarks to run (None: all)


# ------------------------------------------------------------------------ measuring


def _plan(opts, use_torch):
    """[(case, direction, backend)] in report order; backend may be 'torch'/'gemms'."""
    plan = []
    for name in opts.cases:
        case = C.get_case(name)
        for direction in C.DIRECTIONS[case.kernel]:
            if opts.directions and direction not in opts.directions:
                continue
            names = list(opts.backends)
            if case.kernel == "conv2d":
                names.append("gemms")
            if use_torch:
                names.append("torch")
            plan.extend((case, direction, b) for b in names)
    return plan


def _check(case, direction, backend, inp, reference):
    """Compare one call's outputs with the reference's; returns (text, error)."""
    if backend == "gemms":
        return "-", None
    if backend == "numpy":
        return "ref", 0.0
    if direction == "fwd":
        want = reference[:1]
    elif direction == "bwd":
        want = reference[1:]
    else:
        want = reference
    got = (torch_outputs(case, direction, inp) if backend == "torch"
           else C.kernel_outputs(case, direction, backend, inp))
    ok, err = C.check_outputs(got, want)
    return ("ok" if ok else f"FAIL {err:.1e}"), err


def _callable(case, direction, backend, inp):
    if backend == "gemms":
        return C.gemm_callable(case, direction)
    if backend == "torch":
        return torch_callable(case, direction, inp)
    return C.kernel_callable(case, direction, backend, inp)


def _measure_kernels(opts, machine, use_torch, progress, errors):
    """Time every planned (case, direction, backend) at every thread count.

    The backends of one (case, direction, threads) are timed together with their rounds
    interleaved (:func:`~fastcnn.bench.timing.time_interleaved`), so their ratios are
    measured back to back. A backend that raises is reported in ``errors`` (and
    skipped) instead of ending the report.
    """
    rows = []
    groups = {}
    for case, direction, backend in _plan(opts, use_torch):
        groups.setdefault((case.name, direction), (case, direction, []))[2].append(backend)
    references = {}
    for case, direction, backends in groups.values():
        inp = C.make_inputs(case)
        if case.name not in references:
            references = {}                       # keep one case's reference at a time
            with pinned_threads(max(opts.threads)):
                references[case.name] = C.kernel_outputs(case, "fwd+bwd", "numpy", inp)
        fns, checks = {}, {}
        for backend in backends:
            try:
                with pinned_threads(max(opts.threads)):
                    checks[backend] = _check(case, direction, backend, inp,
                                             references[case.name])
                fns[backend] = _callable(case, direction, backend, inp)
            except Exception as exc:  # noqa: BLE001 - reported, not hidden
                errors.append(f"{case.name} {direction} {backend}: {type(exc).__name__}: {exc}")
                progress.update(len(opts.threads))
        amount = C.work(case, direction, inp["x"].itemsize)
        for threads in opts.threads:
            progress.set_postfix_str(f"{case.name} {direction} {threads}t")
            with pinned_threads(threads):
                all_times = time_interleaved(fns, repeats=opts.repeats, warmup=opts.warmup,
                                             on_warm=lambda name: progress.update(1))
            for backend, times in all_times.items():
                seconds = median(times)
                check, err = checks[backend]
                row = {"kernel": case.kernel, "case": case.name, "shape": case.shape_text,
                       "direction": direction, "backend": backend, "threads": threads,
                       "dtype": "float32", "median_ms": seconds * 1e3,
                       "times_ms": [t * 1e3 for t in times], "flops": amount["flops"],
                       "bytes": amount["bytes"], "check": check, "check_error": err,
                       "gbs": amount["bytes"] / seconds / 1e9}
                if amount["flops"] is not None:
                    row["gflops"] = amount["flops"] / seconds / 1e9
                    row["frac_peak"] = row["gflops"] / machine["gemm"][threads]["gflops"]
                else:
                    row["frac_peak"] = row["gbs"] / machine["bandwidth"]["gbs"]
                rows.append(row)
        del fns
    _add_ratios(rows)
    return rows


def _add_ratios(rows):
    """Each row's time over the numpy / gemms / torch / cython row of the same
    (case, direction, threads); None where that row does not exist."""
    index = {(r["case"], r["direction"], r["threads"], r["backend"]): r["median_ms"]
             for r in rows}
    for r in rows:
        key = (r["case"], r["direction"], r["threads"])
        for other, field_name in (("numpy", "vs_numpy"), ("gemms", "vs_gemms"),
                                  ("torch", "vs_torch"), ("cython", "vs_cython")):
            base = index.get((*key, other))
            r[field_name] = r["median_ms"] / base if base and other != r["backend"] else None
        r["targets"] = judge(r)


# ------------------------------------------------------------------------ formatting


def _target_cell(row):
    cells = []
    for v in row.get("targets", []):
        verdict = {True: "met", False: "MISSED", None: "n/a"}[v["met"]]
        cells.append(f"{v['target']}: {verdict}")
    return "; ".join(cells) or ""


def _print_kernel_tables(rows, out):
    titles = {"conv2d": "conv2d (GFLOP/s; % of the GEMM rate at the same thread count)",
              "maxpool2d": "maxpool2d (effective GB/s; % of copy bandwidth)",
              "avgpool2d": "avgpool2d (effective GB/s; % of copy bandwidth)",
              "batchnorm": "batchnorm, training (effective GB/s; % of copy bandwidth)"}
    for kernel, title in titles.items():
        kernel_rows = [r for r in rows if r["kernel"] == kernel]
        if not kernel_rows:
            continue
        print(f"### {title}\n", file=out)
        conv = kernel == "conv2d"
        header = (["case", "shape", "dir", "backend", "thr", "median ms",
                   "GFLOP/s" if conv else "GB/s", "% peak", "x numpy"]
                  + (["x GEMMs"] if conv else []) + ["x torch", "check", "target"])
        lines = []
        for r in kernel_rows:
            rate = r["gflops"] if conv else r["gbs"]
            lines.append([r["case"], r["shape"], r["direction"], r["backend"], r["threads"],
                          _ms(r["median_ms"]), f"{rate:.1f}", f"{100 * r['frac_peak']:.0f}%",
                          _fmt(r["vs_numpy"])]
                         + ([_fmt(r["vs_gemms"])] if conv else [])
                         + [_fmt(r["vs_torch"]), r["check"], _target_cell(r)])
        _table(header, lines, out)


def _print_summary(rows, out):
    """One compact table per thread count: fwd+bwd median ms, backends side by side."""
    seen = {r["backend"] for r in rows}
    order = ["cython", "numba", "numpy", "gemms", "torch"]
    names = [b for b in order if b in seen] + sorted(seen - set(order))
    for threads in sorted({r["threads"] for r in rows}):
        index = {(r["case"], r["backend"]): r for r in rows
                 if r["threads"] == threads and r["direction"] == "fwd+bwd"}
        cases = list(dict.fromkeys(case for case, _ in index))
        if not cases:
            continue
        print(f"### fwd+bwd median ms, {threads} thread{'s' * (threads > 1)}\n", file=out)
        lines = []
        for case in cases:
            cells = [_ms(index[(case, b)]["median_ms"]) if (case, b) in index else "-"
                     for b in names]
            some = next(index[(case, b)] for b in names if (case, b) in index)
            lines.append([case, some["shape"]] + cells)
        _table(["case", "shape"] + names, lines, out)


def _target_summary(rows, opts, out):
    """One line per docs/benchmarks.md target whose case was run."""
    lines = []
    for t in TARGETS:
        if t.case not in opts.cases:
            continue
        match = [r for r in rows if r["case"] == t.case and r["backend"] == t.backend
                 and r["threads"] == TARGET_THREADS and r["direction"] == TARGET_DIRECTION]
        if not match:
            why = (f"backend {t.backend} not measured" if t.backend not in opts.backends
                   else f"needs {TARGET_THREADS} threads and {TARGET_DIRECTION}")
            lines.append([t.case, t.backend, t.text, "-", f"not run ({why})"])
            continue
        value = match[0].get(t.metric)
        verdict = {True: "met", False: "MISSED",
                   None: "n/a (the row it is compared with was not measured)"}
        lines.append([t.case, t.backend, t.text, _fmt(value), verdict[t.met(value)]])
    return lines


# ------------------------------------------------------------------------ sections


# ------------------------------------------------------------------------ the report


def _validate(opts: Options) -> None:
    """Unknown case, backend or step names fail before anything is measured."""
    for name in opts.cases:
        C.get_case(name)
    unknown = [b for b in opts.backends if b not in available_backends()]
    if unknown:
        raise ValueError(f"bench: backends must be among the available ones "
                         f"{available_backends()}; got {unknown}.")
    if opts.steps:
        registry, _ = load_step_benchmarks()
        unknown = [n for n in opts.steps if n not in registry]
        if unknown:
            raise ValueError(f"bench: steps must be among the registered ones "
                             f"{sorted(registry)}; got {unknown}.")


def _machine_limits(opts: Options, progress) -> dict:
    """This machine's float32 GEMM rate per thread count and its memory bandwidth."""
    progress.set_postfix_str("machine limits")
    machine = {"info": machine_info(), "gemm": {}}
    machine["bandwidth"] = measure_bandwidth(opts.bandwidth_mb, repeats=max(opts.repeats, 5))
    progress.update(1)
    for threads in opts.threads:
        machine["gemm"][threads] = measure_gemm(threads, opts.gemm_size,
                                                repeats=max(opts.repeats, 5))
        progress.update(1)
    return machine


def _print_header(opts: Options, machine: dict, use_torch: bool, started, out) -> None:
    """Title, command, machine and settings, and the machine-limits table."""
    info = machine["info"]
    print(f"# fastcnn benchmark report ({started:%Y-%m-%d %H:%M})\n", file=out)
    if opts.command:
        print(f"command: `{opts.command}`\n", file=out)
    blas = ", ".join(f"{p['internal_api']} {p['version']}" for p in info["blas"]
                     if p.get("user_api") == "blas") or "unknown BLAS"
    print(f"- machine: {info['cpu']}, {info['cores']} cores; load average at start "
          f"{info['load_avg'][0]:.2f}", file=out)
    print(f"- NumPy {info.get('numpy')} ({blas}); PyTorch "
          f"{info['torch'] if use_torch else 'not used'}; backends timed: "
          f"{', '.join(opts.backends)} (default here: {get_backend()})", file=out)
    print(f"- float32; median of {opts.repeats} rounds after {opts.warmup} warm-up calls; "
          f"threads {','.join(map(str, opts.threads))}, pinned per measurement "
          f"(threadpoolctl + fastcnn.use_num_threads + numba/torch set_num_threads)\n",
          file=out)
    print("## Machine limits (measured in this run)\n", file=out)
    lines = [[f"float32 GEMM, {t} thread{'s' * (t > 1)}", f"{g['gflops']:.1f} GFLOP/s",
              f"np.matmul {g['size']}^3, out= preallocated"]
             for t, g in machine["gemm"].items()]
    bw = machine["bandwidth"]
    lines.append(["memory bandwidth", f"{bw['gbs']:.1f} GB/s",
                  f"np.copyto of {bw['megabytes']} MB, read + write counted"])
    _table(["limit", "measured", "how"], lines, out)


def run_report(opts: Options, out=None) -> dict:
    """Measure everything ``opts`` asks for, print the markdown report to ``out``
    (stdout by default) and return every measurement as a dict (saved as JSON when
    ``opts.json_path`` is set)."""
    out = out or sys.stdout
    _validate(opts)
    use_torch = opts.torch and torch_available()
    plan = _plan(opts, use_torch)
    total = (len(plan) * len(opts.threads) + len(opts.threads) + 1
             + (len(opts.memory_batches) * len(opts.memory_backends or opts.backends)
                if opts.memory else 0)
             + (sum(C.get_case(n).kernel == "conv2d" for n in opts.cases) * len(opts.backends)
                if opts.breakdown else 0))
    started = datetime.datetime.now()
    with tqdm(total=total, file=sys.stderr, disable=not opts.progress, unit="meas",
              dynamic_ncols=True) as progress:
        machine = _machine_limits(opts, progress)
        _print_header(opts, machine, use_torch, started, out)

        errors = []
        rows = _measure_kernels(opts, machine, use_torch, progress, errors)
        print("## Kernels\n", file=out)
        print("Times are per call; x numpy / x GEMMs / x torch = this time / that one "
              "(same case, direction, threads); below 1 is faster.\n", file=out)
        _print_summary(rows, out)
        _print_kernel_tables(rows, out)

        summary = _target_summary(rows, opts, out)
        if summary:
            print(f"## Targets (docs/benchmarks.md; {TARGET_THREADS} threads, {TARGET_DIRECTION})\n",
                  file=out)
            _table(["case", "backend", "target", "measured", "verdict"], summary, out)

        breakdown = breakdown_section(opts, out, progress, errors) if opts.breakdown else []
        memory = memory_section(opts, out, progress) if opts.memory else None
        steps = steps_section(opts, use_torch, out, progress, errors)

    if errors:
        print("## Errors (these were not timed)\n", file=out)
        for line in errors:
            print(f"- {line}", file=out)
        print(file=out)
    load_end = os.getloadavg()[0]
    print(f"(load average at the end: {load_end:.2f}; started at "
          f"{machine['info']['load_avg'][0]:.2f})", file=out)
    results = {"started": started.isoformat(), "command": opts.command,
               "load_avg_end": load_end, "errors": errors,
               "options": asdict(opts), "machine": machine, "kernels": rows,
               "targets": [dict(zip(["case", "backend", "target", "measured", "verdict"], s))
                           for s in summary],
               "breakdown": breakdown, "memory": memory, "steps": steps}
    if opts.json_path:
        with open(opts.json_path, "w") as fh:
            json.dump(results, fh, indent=1, default=_json_default)
        print(f"(all measurements saved to {opts.json_path})", file=out)
    return results


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")
