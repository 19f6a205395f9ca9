"""Wall time of one hyper-parameter search on each executor, measured back to back.

    python benchmarks/search_executors.py [--trials 8] [--epochs 3] [--rounds 2]

Runs the same random search (digits, the CLI's ``digits_cnn`` builder, learning rates
that do not diverge, so every trial does the same work) on: one local worker (its
default: every core's threads), two local workers (one thread each), and a Dask
LocalCluster of two single-threaded worker processes on loopback, alternating
A B C A B C for ``--rounds`` rounds. The local pool's start-up (spawning workers) is
inside its time, as it is in every search; the Dask cluster is started once, before
timing (a cluster a user connects to is already running), and its start-up is printed
separately. Prints the median time per executor, the ratios the issue asks for, and
whether every executor produced identical numbers (metrics and histories per trial).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

from fastcnn.cli.search import ZooBuilder
from fastcnn.cli.train import _split
from fastcnn.data import datasets
from fastcnn.data.preprocessing import Standardize
from fastcnn.tuning import DaskExecutor, LocalExecutor, LogUniform, random_search


def _numbers(results):
    return sorted((r["index"], r["status"], r["val_accuracy"], r["val_loss"],
                   repr(r["history"])) for r in results)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import distributed  # optional: pip install "fastcnn[distributed]"

    (x, y), _ = datasets.load_digits()
    (x, y), val = _split(x, y, 0.2, 0)
    scaler = Standardize(per="channel").fit(x)
    x, val = scaler.transform(x), (scaler.transform(val[0]), val[1])
    build = ZooBuilder("digits_cnn", x.shape[1:], 10, "adam")
    space = {"lr": LogUniform(3e-4, 3e-3), "reg": LogUniform(1e-6, 1e-4)}

    t0 = time.perf_counter()
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       host="127.0.0.1", dashboard_address=None,
                                       silence_logs=50)
    client = distributed.Client(cluster)
    client.wait_for_workers(2)
    print(f"Dask LocalCluster start-up: {time.perf_counter() - t0:.1f} s", flush=True)
    executors = {"local 1 worker": lambda: LocalExecutor(workers=1),
                 "local 2 workers": lambda: LocalExecutor(workers=2),
                 "dask 2 workers": lambda: DaskExecutor(client)}
    times = {name: [] for name in executors}
    numbers = {}
    try:
        for round_ in range(args.rounds):
            for name, make in executors.items():
                executor = make()
                start = time.perf_counter()
                results = random_search(build, space, x, y, validation_data=val,
                                        trials=args.trials, epochs=args.epochs, seed=0,
                                        executor=executor)
                times[name].append(time.perf_counter() - start)
                numbers.setdefault(name, _numbers(results))
                print(f"round {round_ + 1} {name:16s} {times[name][-1]:6.1f} s  "
                      f"({executor!r})", flush=True)
    finally:
        client.close()
        cluster.close()
    median = {name: statistics.median(values) for name, values in times.items()}
    print(f"\n{args.trials} trials x {args.epochs} epochs, {os.cpu_count()} cores, "
          f"medians of {args.rounds} rounds:")
    for name, value in median.items():
        print(f"  {name:16s} {value:6.1f} s")
    print(f"  2 workers / 1 worker:            "
          f"{median['local 2 workers'] / median['local 1 worker']:.2f}x")
    print(f"  Dask 2 workers / local 2 workers: "
          f"{median['dask 2 workers'] / median['local 2 workers']:.2f}x")
    same = all(n == numbers["local 1 worker"] for n in numbers.values())
    print(f"  identical numbers on every executor: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
