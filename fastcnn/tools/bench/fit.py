"""``python -m fastcnn bench --fit``: whole training epochs, fastcnn vs PyTorch.

What users feel is the time of ``model.fit``, not of one kernel. For every net of
:mod:`fastcnn.tools.bench.fit_nets` and every thread count, this runs
:mod:`fastcnn.tools.bench.fit_worker` for each side (each fastcnn backend asked for, and
``torch``) in a fresh process, alternating A B A B for ``rounds`` rounds, and reports:

* ms per epoch and images/s (median over the timed epochs of every round of a side);
* the ratio to PyTorch (below 1: fastcnn is faster), with the docs/benchmarks.md target;
* the share of fastcnn's epoch spent outside the kernels (layers' NumPy work, Dense
  matmuls, loss, optimizer, batching, Python);
* ``predict`` throughput (images/s, batches of 128) and its ratio to PyTorch's.

Ratios are meaningful only within one run (the machine is shared and noisy): both
sides of a ratio ran back to back, alternating, and the load average is reported.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys

from fastcnn.tools.bench import fit_nets
from fastcnn.tools.bench.tables import fmt, table

__all__ = ["FitOptions", "run_fit_bench"]


class FitOptions:
    """What ``bench --fit`` measures (defaults: every net, 1 and 2 threads)."""

    def __init__(self, nets=None, threads=(1, 2), backends=("cython",), samples=None,
                 epochs=2, rounds=2, torch=True, timeout=3600, json_path=None, command=""):
        self.nets = list(nets or fit_nets.FIT_NETS)
        self.threads = list(threads)
        self.backends = list(backends)
        self.samples = samples          # None: each data set's real size
        self.epochs = int(epochs)
        self.rounds = int(rounds)
        self.torch = bool(torch)
        self.timeout = timeout
        self.json_path = json_path
        self.command = command
        for name in self.nets:
            fit_nets.get_net(name)     # unknown names fail before anything runs
        if self.epochs < 1 or self.rounds < 1:
            raise ValueError(f"bench --fit: epochs and rounds must be >= 1; got "
                             f"{self.epochs} and {self.rounds}.")


def _run_side(side: str, net: str, threads: int, samples: int, opts: FitOptions) -> dict:
    """One worker process; its JSON result, or ``{"error": ...}``."""
    cmd = [sys.executable, "-m", "fastcnn.tools.bench.fit_worker", side, net,
           str(threads), str(samples), str(opts.epochs)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=opts.timeout)
    except subprocess.TimeoutExpired:
        return {"side": side, "error": f"timed out after {opts.timeout} s"}
    if proc.returncode != 0:
        return {"side": side, "error": proc.stderr.strip().splitlines()[-1:] or "failed"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _summarise(runs: list[dict], samples: int) -> dict:
    """Median epoch time, images/s, kernel share and predict throughput of one side."""
    ok = [r for r in runs if "error" not in r]
    if not ok:
        return {"error": "; ".join(str(r["error"]) for r in runs)}
    epochs = [e for r in ok for e in r["epochs"]]
    seconds = statistics.median(e["seconds"] for e in epochs)
    kernel = [e["kernel_seconds"] / e["seconds"] for e in epochs
              if e["kernel_seconds"] is not None]
    predict = statistics.median(r["predict_seconds"] for r in ok)
    return {"ms_per_epoch": seconds * 1e3, "images_per_s": samples / seconds,
            "outside_kernels": 1 - statistics.median(kernel) if kernel else None,
            "predict_images_per_s": samples / predict,
            "epoch_times_ms": [e["seconds"] * 1e3 for e in epochs]}


def _measure(opts: FitOptions, progress) -> list[dict]:
    sides = list(opts.backends) + (["torch"] if opts.torch else [])
    rows = []
    for net in opts.nets:
        samples = opts.samples or fit_nets.get_net(net).samples
        for threads in opts.threads:
            runs = {side: [] for side in sides}
            for _ in range(opts.rounds):           # A B A B: sides alternate
                for side in sides:
                    progress(f"fit {net} {side} {threads}t")
                    runs[side].append(_run_side(side, net, threads, samples, opts))
            for side in sides:
                row = {"net": net, "threads": threads, "side": side, "samples": samples,
                       "load_avg": [r.get("load_avg") for r in runs[side]]}
                row.update(_summarise(runs[side], samples))
                rows.append(row)
    _add_ratios(rows)
    return rows


def _add_ratios(rows: list[dict]) -> None:
    torch = {(r["net"], r["threads"]): r for r in rows
             if r["side"] == "torch" and "error" not in r}
    for r in rows:
        ref = torch.get((r["net"], r["threads"]))
        if r["side"] == "torch" or ref is None or "error" in r:
            r["vs_torch"] = r["predict_vs_torch"] = None
            continue
        r["vs_torch"] = r["ms_per_epoch"] / ref["ms_per_epoch"]
        r["predict_vs_torch"] = ref["predict_images_per_s"] / r["predict_images_per_s"]


def _verdict(row: dict) -> str:
    if row.get("vs_torch") is None:
        return ""
    target = fit_nets.get_net(row["net"]).target
    worst = max(row["vs_torch"], row["predict_vs_torch"])
    return f"<= {target:g}: " + ("met" if worst <= target else "MISSED")


def _print(rows: list[dict], opts: FitOptions, out) -> None:
    print("## Whole training epochs: model.fit vs a PyTorch training loop\n", file=out)
    if opts.command:
        print(f"command: `{opts.command}`\n", file=out)
    print(f"Each side in its own process, alternating A B A B ({opts.rounds} rounds x "
          f"{opts.epochs} timed epochs after a 2-batch warm-up); synthetic data of the real "
          f"shape in memory; same architecture, initial weights, Adam and batch size; "
          f"predict in batches of 128. x torch = fastcnn time / PyTorch time (train epoch; "
          f"predict: inverse throughput ratio); outside kernels = share of the fastcnn "
          f"epoch not spent in the backend's kernel functions.\n", file=out)
    for net in opts.nets:
        spec = fit_nets.get_net(net)
        print(f"- {net}: {spec.description}, batch {spec.batch}", file=out)
    print(file=out)
    lines = []
    for r in rows:
        if "error" in r:
            lines.append([r["net"], r["threads"], r["side"], "error: " + r["error"]]
                         + [""] * 7)
            continue
        lines.append([r["net"], r["threads"], r["side"], f"{r['ms_per_epoch']:.0f}",
                      f"{r['images_per_s']:.0f}", fmt(r["vs_torch"]),
                      fmt(None if r["outside_kernels"] is None
                          else 100 * r["outside_kernels"], ".0f") + ("%" * (
                              r["outside_kernels"] is not None)),
                      f"{r['predict_images_per_s']:.0f}", fmt(r["predict_vs_torch"]),
                      _verdict(r), ",".join(f"{a[0]:.1f}" for a in r["load_avg"] if a)])
    table(["net", "thr", "side", "ms/epoch", "img/s", "x torch", "outside kernels",
           "predict img/s", "predict x torch", "target", "load"], lines, out)


def run_fit_bench(opts: FitOptions, out=None, progress=None) -> list[dict]:
    """Measure, print the markdown table to ``out`` (stdout), return the rows (and save
    them as JSON when ``opts.json_path`` is set)."""
    out = out or sys.stdout
    progress = progress or (lambda text: print(f"[{text}]", file=sys.stderr, flush=True))
    rows = _measure(opts, progress)
    _print(rows, opts, out)
    print(f"(load average at the end: {os.getloadavg()[0]:.2f})\n", file=out)
    if opts.json_path:
        with open(opts.json_path, "w") as fh:
            json.dump({"command": opts.command, "fit": rows}, fh, indent=1)
        print(f"(all measurements saved to {opts.json_path})", file=out)
    return rows
