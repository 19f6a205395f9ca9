"""``python -m fastcnn search``: a coarse -> fine random search over lr and L2 strength.

The course's recipe, end to end::

    python -m fastcnn search --dataset digits --trials 20 --epochs 5 --workers 2 \\
        --refine 10 --out runs/search

1. *Coarse*: ``--trials`` models of ``--model`` with ``lr`` and ``reg`` (the L2 factor
   on every kernel) drawn log-uniformly from ``--lr-range`` and ``--reg-range``,
   trained ``--epochs`` epochs each; a trial whose loss passes 3x its first loss stops
   at once ("diverged").
2. *Fine*: ``--refine`` more trials in the space narrowed around the ``--top-k`` best
   coarse trials, trained ``--fine-epochs`` epochs (default: twice ``--epochs``).
3. The test set, untouched until now, scores the best single model and the ensemble
   of the ``--ensemble`` best models.

Trials run on ``--workers`` local processes (default: one per core), or on a Dask
cluster with ``--scheduler tcp://host:port``. The run folder gets ``results.csv``
and ``results.json`` (the table, best first), ``search.png`` (validation accuracy over
lr and reg), ``best_model.npz`` and ``summary.json`` (spaces, test accuracies, times).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from fastcnn import zoo
from fastcnn.cli.shared import (
    DATASET_CHOICES,
    DEFAULT_MODEL,
    UsageError,
    load_data,
    split_validation,
)
from fastcnn.data.preprocessing import Standardize
from fastcnn.train.model import Sequential
from fastcnn.tuning import DaskExecutor, LocalExecutor, LogUniform, random_search
from fastcnn.tuning.space import space_to_config

PROG = "python -m fastcnn search"


def _fail(message: str):
    sys.stderr.write(f"{PROG}: error: {message}\n")
    sys.exit(2)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--dataset", default="digits", help=f"one of {', '.join(DATASET_CHOICES)} "
                                            f"(default: digits, bundled)")
    add("--data-dir", default=None, metavar="DIR", help="folder of the data set files")
    add("--model", default=None, help="a zoo model (default: the dataset's, as in train)")
    add("--optimizer", default="adam", help="optimizer name (default: adam)")
    add("--trials", type=int, default=20, help="coarse trials (default: 20)")
    add("--epochs", type=int, default=5, help="epochs per coarse trial (default: 5)")
    add("--refine", type=int, default=0, metavar="N",
        help="fine trials around the best coarse ones (default: 0, no fine stage)")
    add("--fine-epochs", type=int, default=None, help="epochs per fine trial (default: 2x "
                                                      "--epochs)")
    add("--top-k", type=int, default=5, help="coarse trials the fine space is built around "
                                             "(default: 5)")
    add("--ensemble", type=int, default=3, metavar="K",
        help="test the ensemble of the K best models (default: 3)")
    add("--lr-range", default="1e-4,1e-1", metavar="LOW,HIGH",
        help="learning-rate range, drawn log-uniformly (default: 1e-4,1e-1)")
    add("--reg-range", default="1e-6,1e-1", metavar="LOW,HIGH",
        help="L2 factor range, drawn log-uniformly (default: 1e-6,1e-1)")
    add("--batch-size", type=int, default=32, help="default: 32")
    add("--val-split", type=float, default=0.2,
        help="fraction of the training set that ranks the trials (default: 0.2)")
    add("--workers", type=int, default=None, help="local worker processes (default: one per "
                                                   "core; 0 runs trials in this process)")
    add("--scheduler", default=None, metavar="ADDRESS",
        help="run the trials on a Dask cluster, e.g. tcp://10.0.0.5:8786")
    add("--seed", type=int, default=0, help="seeds the split and the search (default: 0)")
    add("--out", default=None, metavar="DIR",
        help="run folder (default: runs/search-<dataset>-<timestamp>)")
    add("--quiet", action="store_true", help="print only the final result lines")
    parser.error = lambda message: _fail(f"{message}. Hint: see '{PROG} --help'.")


class ZooBuilder:
    """``build(params)`` of the CLI: zoo model ``model`` with an L2 penalty
    ``params["reg"]`` on every kernel, compiled with ``optimizer`` at ``params["lr"]``.
    A top-level class, so instances pickle to local worker processes."""

    def __init__(self, model: str, input_shape: tuple, classes: int, optimizer: str):
        self.model, self.input_shape = model, tuple(input_shape)
        self.classes, self.optimizer = classes, optimizer

    def __call__(self, params: dict):
        config = zoo.get(self.model, input_shape=self.input_shape,
                         classes=self.classes).get_config()
        for layer in config["layers"]:
            if "kernel_regularizer" in layer["config"]:
                layer["config"]["kernel_regularizer"] = {
                    "class_name": "L2", "config": {"l2": float(params["reg"])}}
        model = Sequential.from_config(config)
        model.compile(optimizer={"class_name": self.optimizer,
                                 "config": {"learning_rate": float(params["lr"])}},
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        return model


def _parse_range(option: str, text: str) -> LogUniform:
    try:
        low, high = (float(v) for v in str(text).split(","))
        return LogUniform(low, high)
    except ValueError as exc:
        raise UsageError(f"{option} must be LOW,HIGH with 0 < LOW < HIGH, e.g. 1e-4,1e-1; "
                         f"got {text!r} ({exc}).") from None


def _check_args(args) -> dict:
    dataset = str(args.dataset).strip().lower()
    if dataset not in DATASET_CHOICES:
        raise UsageError(f"--dataset must be one of {', '.join(DATASET_CHOICES)}; "
                         f"got {args.dataset!r}.")
    model = (args.model or DEFAULT_MODEL[dataset]).strip().lower().replace("-", "_")
    if model not in zoo.MODELS:
        raise UsageError(f"--model must be one of {', '.join(zoo.MODELS)}; got {args.model!r}.")
    for option in ("trials", "epochs", "top_k", "ensemble", "batch_size"):
        if getattr(args, option) < 1:
            raise UsageError(f"--{option.replace('_', '-')} must be a positive int; got "
                             f"{getattr(args, option)}.")
    for option in ("refine", "workers", "seed"):
        value = getattr(args, option)
        if value is not None and value < 0:
            raise UsageError(f"--{option} must be a non-negative int; got {value}.")
    if not 0 < args.val_split < 1:
        raise UsageError(f"--val-split must lie in (0, 1); got {args.val_split}.")
    fine_epochs = args.fine_epochs if args.fine_epochs is not None else 2 * args.epochs
    if fine_epochs < 1:
        raise UsageError(f"--fine-epochs must be a positive int; got {fine_epochs}.")
    space = {"lr": _parse_range("--lr-range", args.lr_range),
             "reg": _parse_range("--reg-range", args.reg_range)}
    return {"dataset": dataset, "model": model, "fine_epochs": fine_epochs, "space": space}


def _executor(args):
    if args.scheduler:
        try:
            return DaskExecutor(args.scheduler)
        except ImportError:
            raise UsageError("--scheduler needs dask.distributed. Hint: pip install "
                             "'fastcnn[distributed]'.") from None
        except (OSError, TimeoutError) as exc:
            raise UsageError(f"--scheduler: cannot reach {args.scheduler!r} ({exc}).") from None
    if args.workers == 0:
        return None
    return LocalExecutor(workers=args.workers)


def _out_dir(args, dataset: str) -> Path:
    path = Path(args.out) if args.out else Path("runs") / (
        f"search-{dataset}-{time.strftime('%Y%m%d-%H%M%S')}")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--out: cannot create {str(path)!r} ({exc.strerror}).") from None
    return path


def run(args) -> int:
    try:
        return _run(args)
    except UsageError as exc:
        _fail(str(exc))
    return 2  # pragma: no cover - _fail exits


def _prepare(args, cfg):
    """Data (standardized with training statistics), the builder and the run folder."""
    (x_train, y_train), (x_test, y_test) = load_data(cfg["dataset"], args.data_dir)
    (x_fit, y_fit), (x_val, y_val) = split_validation(x_train, y_train, args.val_split, args.seed)
    scaler = Standardize(per="channel").fit(x_fit)
    x_fit, x_val, x_test = (scaler.transform(a) for a in (x_fit, x_val, x_test))
    classes = int(max(y_train.max(), y_test.max())) + 1
    build = ZooBuilder(cfg["model"], x_fit.shape[1:], classes, args.optimizer)
    try:
        build({"lr": 1e-3, "reg": 1e-4})             # fail here, not in 20 trials
    except ValueError as exc:
        raise UsageError(f"--model {cfg['model']} / --optimizer {args.optimizer}: "
                         f"{str(exc).splitlines()[0]}") from None
    return build, (x_fit, y_fit), (x_val, y_val), (x_test, y_test)


def _run(args) -> int:
    # As in `fastcnn train`: idle OpenMP threads must not spin-wait on a shared machine
    # (only effective before the compiled kernels load; inherited by local workers).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    cfg = _check_args(args)
    say = (lambda *a: None) if args.quiet else (lambda *a: print(*a, flush=True))
    build, (x, y), val, (x_test, y_test) = _prepare(args, cfg)
    out = _out_dir(args, cfg["dataset"])
    executor = _executor(args)
    common = dict(validation_data=val, batch_size=args.batch_size, executor=executor,
                  verbose=0 if args.quiet else 1)
    say(f"fastcnn search: {cfg['dataset']} ({len(x)} train, {len(val[0])} validation, "
        f"{len(x_test)} test), model {cfg['model']}, {args.optimizer}; {args.trials} coarse "
        f"trials x {args.epochs} epochs" + (f", {args.refine} fine trials x "
                                            f"{cfg['fine_epochs']} epochs" if args.refine else "")
        + f"; executor {executor or 'this process'}; run folder {out}")
    t0 = time.perf_counter()
    results = coarse = random_search(build, cfg["space"], x, y, trials=args.trials,
                                     epochs=args.epochs, seed=args.seed, stage="coarse",
                                     **common)
    say(coarse.table(10))
    fine_space = None
    if args.refine and coarse.top(1):            # a fine stage needs a finished trial
        fine_space = coarse.refine(top_k=args.top_k)
        say(f"fine space: {fine_space}")
        fine = random_search(build, fine_space, x, y, trials=args.refine,
                             epochs=cfg["fine_epochs"], seed=args.seed + 1, stage="fine",
                             **common)
        say(fine.table(10))
        results = coarse + fine
    search_seconds = time.perf_counter() - t0
    return _report(args, cfg, results, fine_space, out, (x_test, y_test), search_seconds)


def _report(args, cfg, results, fine_space, out, test, search_seconds) -> int:
    """Score the best model and the top-k ensemble on the test set; write the files."""
    x_test, y_test = test
    if not results.top(1):
        print(f"{PROG}: no trial finished ({results.counts}): every one diverged or failed. "
              f"Hint: narrow --lr-range towards smaller rates.", file=sys.stderr, flush=True)
        return 1
    best = results.model()
    best_loss, best_acc = best.evaluate(x_test, y_test, batch_size=256)
    k = min(args.ensemble, len(results.top(args.ensemble)))
    ens_loss, ens_acc = results.ensemble(k).evaluate(x_test, y_test, batch_size=256)
    best.save(out / "best_model.npz")
    results.to_csv(out / "results.csv")
    results.to_json(out / "results.json")
    results.plot("lr", "reg", out / "search.png",
                 title=f"{cfg['model']} on {cfg['dataset']}: {len(results)} trials")
    summary = {"args": {k: v for k, v in vars(args).items() if k != "command"},
               "coarse_space": space_to_config(cfg["space"]),
               "fine_space": None if fine_space is None else space_to_config(fine_space),
               "counts": results.counts, "best": {k: v for k, v in results.best.items()
                                                  if k not in ("model", "history")},
               "best_test_loss": float(best_loss), "best_test_accuracy": float(best_acc),
               "ensemble_k": k, "ensemble_test_loss": float(ens_loss),
               "ensemble_test_accuracy": float(ens_acc), "search_seconds": search_seconds}
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=float))
    counts = ", ".join(f"{n} {s}" for s, n in results.counts.items())
    params = ", ".join(f"{name}={value:.3g}" for name, value in results.best["params"].items())
    print(f"{len(results)} trials ({counts}) in {search_seconds:.1f} s; best: {params}, "
          f"val_acc {results.best['val_accuracy']:.4f}", flush=True)
    print(f"test accuracy: best model {best_acc:.4f}, ensemble of the top {k} "
          f"{ens_acc:.4f}; saved to {out}{os.sep}", flush=True)
    return 0 if np.isfinite(best_acc) else 1
