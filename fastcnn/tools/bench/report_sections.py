"""The optional sections of the kernel report: peak memory of a convolution at two
batch sizes (fresh processes) and where a convolution's time goes."""

from __future__ import annotations

from fastcnn.tools.bench import cases as C
from fastcnn.tools.bench.breakdown import PHASES, conv_breakdown, plot_breakdown
from fastcnn.tools.bench.memory import measure_in_subprocess
from fastcnn.tools.bench.tables import ms, table

__all__ = ["WORKSPACE_BUDGET_MB", "memory_section", "breakdown_section"]

#: docs/benchmarks.md: "conv workspace bounded by a fixed budget (e.g. 64 MB), not by batch size".
WORKSPACE_BUDGET_MB = 64.0


def memory_section(opts, out, progress):
    backends = opts.memory_backends or list(opts.backends)
    results = []
    for backend in backends:
        for n in opts.memory_batches:
            progress.set_postfix_str(f"memory {backend} N={n}")
            results.append(measure_in_subprocess(opts.memory_case, n, backend,
                                                 max(opts.threads)))
            progress.update(1)
    case = C.get_case(opts.memory_case)
    shape = case.shape_text.split(" ", 1)[1]          # drop "N=..": N is what varies
    print(f"## Peak memory of one conv2d forward + backward ({shape}, N varied; "
          f"a fresh process each)\n", file=out)
    print("workspace = peak - inputs - outputs - grads; traced = NumPy allocations "
          "(tracemalloc), RSS = process high-water mark (every allocation, C included).\n",
          file=out)
    lines = []
    for m in results:
        if "error" in m:
            lines.append([m["backend"], m["n"], "-", "-", "-", "-", "-", m["error"]])
            continue
        lines.append([m["backend"], m["n"], f"{m['inputs_mb']:.0f}",
                      f"{m['outputs_grads_mb']:.0f}", f"{m['traced_peak_mb']:.0f}",
                      f"{m['workspace_traced_mb']:.1f}",
                      f"{m['rss_peak_mb'] - m['rss_before_mb']:.0f}",
                      f"{m['workspace_rss_mb']:.1f}"])
    table(["backend", "N", "inputs MB", "outputs+grads MB", "traced peak MB",
            "workspace (traced) MB", "RSS growth MB", "workspace (RSS) MB"], lines, out)
    verdicts = []
    for backend in backends:
        ok = [m for m in results if m["backend"] == backend and "error" not in m]
        if len(ok) < 2:
            continue
        small, large = ok[0], ok[-1]
        worst = max(large["workspace_traced_mb"], large["workspace_rss_mb"])
        growth = worst - max(small["workspace_traced_mb"], small["workspace_rss_mb"])
        verdict = ("met" if worst <= WORKSPACE_BUDGET_MB else "MISSED")
        verdicts.append({"backend": backend, "workspace_mb": worst, "growth_mb": growth,
                         "verdict": verdict})
        print(f"- {backend}: workspace {worst:.1f} MB at N={large['n']} (grows by "
              f"{growth:+.1f} MB from N={small['n']}); target <= {WORKSPACE_BUDGET_MB:g} MB "
              f"(bounded, not by batch size): {verdict}", file=out)
    print(file=out)
    return {"measurements": results, "verdicts": verdicts}


def breakdown_section(opts, out, progress, errors):
    rows = []
    conv_cases = [C.get_case(n) for n in opts.cases if C.get_case(n).kernel == "conv2d"
                  and C.get_case(n).groups == 1 and C.get_case(n).dilation == 1]
    threads = max(opts.threads)
    for case in conv_cases:
        for backend in opts.backends:
            progress.set_postfix_str(f"breakdown {case.name} {backend}")
            try:
                rows.append(conv_breakdown(case, backend, threads, repeats=opts.repeats))
            except Exception as exc:  # noqa: BLE001 - reported, not hidden
                errors.append(f"breakdown {case.name} {backend}: {type(exc).__name__}: {exc}")
            progress.update(1)
    print(f"## Where conv2d forward + backward time goes ({threads} threads, ms)\n", file=out)
    print("Phases timed separately on the same shapes (module fastcnn.bench.breakdown): "
          "im2col/col2im through the backend on a chunk of n_chunk images and scaled to N; "
          "GEMMs with NumPy on the same chunk; other = total - the rest. algorithm: what "
          "the backend ran (winograd: forward and dx by Winograd F(2x2, 3x3), dW by im2col; "
          "the phases are then im2col's, and other < 0 is what Winograd saved).\n", file=out)
    lines = [[r["case"], r["backend"], r.get("algorithm", "im2col"), ms(r["total_ms"])]
             + [ms(r["phases_ms"][p]) if p != "other" else f"{r['phases_ms'][p]:.3g}"
                for p in PHASES]
             + [r["n_chunk"], r["im2col_count"]] for r in rows]
    table(["case", "backend", "algorithm", "total"] + list(PHASES) + ["n_chunk", "im2col x"],
          lines, out)
    if opts.plot and rows:
        plot_breakdown(rows, opts.plot)
        print(f"(stacked bars saved to {opts.plot})\n", file=out)
    return rows
