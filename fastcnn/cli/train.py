"""``python -m fastcnn train``: train a CNN end to end and keep everything in a run folder.

With no options it trains :func:`fastcnn.models.digits_cnn` on scikit-learn's bundled
8x8 digits (nothing to download) with Adam, prints one line per epoch and the final
test accuracy, and writes ``runs/digits-<timestamp>/``::

    history.json        arguments, per-epoch history, test loss/accuracy, timings,
                        update/weight ratios and the preprocessing statistics
    model.npz           the trained model (``fastcnn.model.load_model``)
    curves.png          loss and accuracy, train vs validation
    lr.png              learning rate per epoch
    filters.png         the first convolution's filters
    update_ratios.png   per-parameter update/weight ratios

The recipe is the course's: standardize each channel with training-set statistics,
hold out ``--val-split`` of the training set for validation, shuffle every epoch, and
evaluate on the untouched test set once at the end. Every user error (a bad option,
missing data files, an unavailable backend) is one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from fastcnn import zoo as models
from fastcnn.cli.shared import (
    DATASET_CHOICES,
    DEFAULT_MODEL,
    UsageError,
    load_data,
    split_validation,
)
from fastcnn.common import random as _random
from fastcnn.common.exceptions import BackendUnavailableError, FastCNNWarning
from fastcnn.data.augment import get as get_augment
from fastcnn.data.preprocessing import Standardize
from fastcnn.kernels import _dispatch as _backend
from fastcnn.nn.layers import Conv2D
from fastcnn.nn.layers.base import _all_layers
from fastcnn.optim import optimizers
from fastcnn.optim.optimizers import _REGISTRY as OPTIMIZERS
from fastcnn.optim.schedules import ExponentialDecay
from fastcnn.train.callbacks import LearningRateScheduler
from fastcnn.zoo import MODELS

# Tuned on this project's 2-core machine: digits reaches >= 98% test accuracy within
# a few seconds of training; the larger data sets get the course's usual few epochs.
DEFAULT_EPOCHS = {"digits": 30, "mnist": 5, "fashion-mnist": 5, "cifar10": 5}
# Each default trains the default model without tripping the divergence guard's 3x
# warning (tests/cli check it); Adagrad's first steps are large (lr * g / sqrt(0.1 + g^2)),
# so it gets a smaller rate than the 0.05 that made the loss spike 4x at batch 2.
DEFAULT_LR = {"adam": 3e-3, "adamw": 3e-3, "nadam": 3e-3, "sgd": 0.05, "rmsprop": 1e-3,
              "adagrad": 0.02, "adadelta": 1.0}
PROG = "python -m fastcnn train"


def _fail(message: str):
    sys.stderr.write(f"{PROG}: error: {message}\n")
    sys.exit(2)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", default="digits", metavar="NAME",
                        help=f"one of {', '.join(DATASET_CHOICES)} (default: digits, bundled)")
    parser.add_argument("--data-dir", default=None, metavar="DIR",
                        help="folder holding the data set files (default: $FASTCNN_DATA/<name> "
                             "or ~/.cache/fastcnn/<name>)")
    parser.add_argument("--model", default=None, metavar="NAME",
                        help=f"one of {', '.join(MODELS)} (default: digits_cnn for digits, "
                             f"mnist_net for (fashion-)mnist, cifar10_net for cifar10)")
    parser.add_argument("--optimizer", default="adam", metavar="NAME",
                        help=f"one of {', '.join(sorted(OPTIMIZERS))} (default: adam)")
    parser.add_argument("--lr", type=float, default=None,
                        help="learning rate (default: 3e-3 for adam, 0.05 for sgd, ...)")
    parser.add_argument("--lr-decay", type=float, default=30.0, metavar="FACTOR",
                        help="the learning rate decays exponentially, epoch by epoch, to "
                             "lr / FACTOR in the last epoch (default: 30; 1 keeps it constant)")
    parser.add_argument("--batch-size", type=int, default=32, help="default: 32")
    parser.add_argument("--epochs", type=int, default=None,
                        help="default: 30 for digits, 5 for the others")
    parser.add_argument("--val-split", type=float, default=0.1,
                        help="fraction of the training set held out for validation "
                             "(default: 0.1; 0 validates on nothing)")
    parser.add_argument("--augment", default=None, metavar="SPEC",
                        help="training augmentation, e.g. 'shift' or 'flip,shift' (default: none)")
    parser.add_argument("--backend", default=None, metavar="NAME",
                        help="kernel backend: cython, numba or numpy (default: the fastest)")
    parser.add_argument("--seed", type=int, default=0, help="seeds init, split, shuffling "
                                                            "(default: 0)")
    parser.add_argument("--out", default=None, metavar="DIR",
                        help="run folder (default: runs/<dataset>-<timestamp>)")
    parser.add_argument("--quiet", action="store_true",
                        help="print only the final result line")
    # argparse's own errors print the usage too; we want one line with the fix. This
    # parser is ours (a sub-parser made for this command), so we redefine its error.
    parser.error = lambda message: _fail(f"{message}. Hint: see '{PROG} --help'.")
    # Unknown options are handed back to the top-level parser as "extras"; catch them
    # here so they get the same one-line treatment.
    original = parser.parse_known_args

    def parse_known_args(args=None, namespace=None):
        ns, extras = original(args, namespace)
        if extras:
            _fail(f"unrecognized arguments: {' '.join(extras)}. Hint: see '{PROG} --help'.")
        return ns, extras

    parser.parse_known_args = parse_known_args


# ---------------------------------------------------------------------------- helpers
def _check_args(args) -> dict:
    """Validate and fill defaults; a UsageError names the option and the fix."""
    dataset = str(args.dataset).strip().lower().replace("_", "-")
    dataset = {"fashion": "fashion-mnist", "cifar-10": "cifar10"}.get(dataset, dataset)
    if dataset not in DATASET_CHOICES:
        raise UsageError(f"--dataset must be one of {', '.join(DATASET_CHOICES)}; "
                         f"got {args.dataset!r}.")
    if dataset == "digits" and args.data_dir is not None:
        raise UsageError("--data-dir is not used with --dataset digits (bundled with "
                         "scikit-learn). Hint: drop --data-dir or pick another --dataset.")
    model = (args.model or DEFAULT_MODEL[dataset]).strip().lower().replace("-", "_")
    if model not in MODELS:
        raise UsageError(f"--model must be one of {', '.join(MODELS)}; got {args.model!r}.")
    optimizer = str(args.optimizer).strip().lower()
    if optimizer not in OPTIMIZERS:
        raise UsageError(f"--optimizer must be one of {', '.join(sorted(OPTIMIZERS))}; "
                         f"got {args.optimizer!r}.")
    lr = args.lr if args.lr is not None else DEFAULT_LR.get(optimizer, 1e-3)
    if not np.isfinite(lr) or lr <= 0:
        raise UsageError(f"--lr must be a positive number, e.g. 1e-3; got {args.lr!r}.")
    if not np.isfinite(args.lr_decay) or args.lr_decay < 1:
        raise UsageError(f"--lr-decay must be a number >= 1 (1: constant rate); "
                         f"got {args.lr_decay}.")
    if args.batch_size < 1:
        raise UsageError(f"--batch-size must be a positive int; got {args.batch_size}.")
    epochs = args.epochs if args.epochs is not None else DEFAULT_EPOCHS[dataset]
    if epochs < 1:
        raise UsageError(f"--epochs must be a positive int; got {epochs}.")
    if not 0 <= args.val_split < 1:
        raise UsageError(f"--val-split must lie in [0, 1); got {args.val_split}.")
    if args.seed < 0:
        raise UsageError(f"--seed must be a non-negative int; got {args.seed}.")
    if args.augment:
        try:
            get_augment(args.augment)
        except (ValueError, TypeError) as exc:
            raise UsageError(f"--augment: {exc}") from None
    return {"dataset": dataset, "model": model, "optimizer": optimizer, "lr": float(lr),
            "epochs": int(epochs)}


def _run_dir(args, dataset: str) -> Path:
    if args.out:
        return Path(args.out)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = Path("runs") / f"{dataset}-{stamp}"
    path, k = base, 1
    while path.exists():                        # two runs within one second
        k += 1
        path = base.with_name(f"{base.name}-{k}")
    return path


def _first_conv_kernel(model):
    for layer in _all_layers(model.layers):
        if isinstance(layer, Conv2D):
            return layer.kernel.data
    return None


# ------------------------------------------------------------------------------- run
def run(args) -> int:
    try:
        return _run(args)
    except UsageError as exc:
        _fail(str(exc))
    return 2  # pragma: no cover - _fail exits


def _prepare_data(cfg, args):
    """Load, split and standardize (training-set statistics only). Returns
    ``(x_fit, y_fit), val, (x_test, y_test), scaler``; ``val`` may be None."""
    (x_train, y_train), (x_test, y_test) = load_data(cfg["dataset"], args.data_dir)
    (x_fit, y_fit), val = split_validation(x_train, y_train, args.val_split, args.seed)
    scaler = Standardize(per="channel").fit(x_fit)
    val = None if val is None else (scaler.transform(val[0]), val[1])
    return (scaler.transform(x_fit), y_fit), val, (scaler.transform(x_test), y_test), scaler


def _build_model(cfg, input_shape, classes):
    try:
        model = models.get(cfg["model"], input_shape=input_shape, classes=classes)
    except ValueError as exc:
        raise UsageError(f"--model {cfg['model']} does not fit {cfg['dataset']} images "
                         f"{input_shape}: {str(exc).splitlines()[0]} Hint: pick "
                         f"another --model (default for {cfg['dataset']}: "
                         f"{DEFAULT_MODEL[cfg['dataset']]}).") from None
    opt = optimizers.get({"class_name": cfg["optimizer"], "config": {"learning_rate": cfg["lr"]}})
    model.compile(optimizer=opt, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _make_run_dir(args, dataset) -> Path:
    out = _run_dir(args, dataset)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--out: cannot create {str(out)!r} ({exc.strerror}). Hint: pass "
                         f"--out with a writable folder.") from None
    return out


def _train(model, cfg, args, x_fit, y_fit, val):
    """``model.fit`` with the optional exponential decay; FastCNN warnings go to stderr
    as one line each. Returns ``(history, seconds)``."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", FastCNNWarning)
        t_fit = time.perf_counter()
        callbacks = []
        if args.lr_decay > 1 and cfg["epochs"] > 1:
            # lr(epoch) = lr * exp(-k * epoch), reaching lr / lr_decay in the last epoch
            rate = float(np.log(args.lr_decay) / (cfg["epochs"] - 1))
            callbacks.append(LearningRateScheduler(ExponentialDecay(cfg["lr"], rate)))
        history = model.fit(x_fit, y_fit, batch_size=args.batch_size, epochs=cfg["epochs"],
                            validation_data=val, verbose=0 if args.quiet else 1,
                            seed=args.seed, augment=args.augment or None,
                            callbacks=callbacks)
        fit_seconds = time.perf_counter() - t_fit
    for w in caught:
        if not args.quiet:
            sys.stderr.write(f"warning: {w.message}\n")
    return history, fit_seconds


def _write_plots(out, cfg, model, history):
    # deferred: fastcnn.tools.plot imports matplotlib (slow); `--help` should not pay it
    from fastcnn.tools import plot

    if history.history:
        plot.plot_history(history.history, out / "curves.png",
                          title=f"{cfg['model']} on {cfg['dataset']}")
        plot.plot_learning_rate(history.history, out / "lr.png")
    kernel = _first_conv_kernel(model)
    if kernel is not None and np.isfinite(kernel).all():
        plot.plot_filters(kernel, out / "filters.png")
    if history.update_ratios:
        plot.plot_update_ratios(history.update_ratios, out / "update_ratios.png")


def _run(args) -> int:
    # OpenMP threads spin while they wait for work by default; on a machine whose
    # cores are busy with other processes that makes small-layer training up to 20x
    # slower. Passive waiting costs nothing measurable here. Only effective before the
    # compiled backend loads the OpenMP runtime; an explicit setting is respected.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    cfg = _check_args(args)
    if args.backend is not None:
        try:
            _backend.set_backend(args.backend)
        except (BackendUnavailableError, ValueError) as exc:
            raise UsageError(f"--backend: {str(exc).splitlines()[0]} Hint: one of "
                             f"{', '.join(_backend.available_backends())}.") from None
    say = (lambda *a: None) if args.quiet else (lambda *a: print(*a, flush=True))
    t_start = time.perf_counter()
    (x_fit, y_fit), val, (x_test, y_test), scaler = _prepare_data(cfg, args)
    _random.seed(args.seed)
    classes = int(max(y_fit.max(), y_test.max(), -1 if val is None else val[1].max())) + 1
    model = _build_model(cfg, tuple(x_fit.shape[1:]), classes)
    out = _make_run_dir(args, cfg["dataset"])
    say(f"fastcnn train: {cfg['dataset']} ({len(x_fit)} train, "
        f"{0 if val is None else len(val[0])} validation, {len(x_test)} test), model "
        f"{cfg['model']} ({model.count_params():,} params), {cfg['optimizer']} lr={cfg['lr']:g}, "
        f"{cfg['epochs']} epochs, backend {_backend.get_backend()}; run folder {out}")
    history, fit_seconds = _train(model, cfg, args, x_fit, y_fit, val)
    test_loss, test_acc = model.evaluate(x_test, y_test, batch_size=256)
    seconds = time.perf_counter() - t_start
    model.save(out / "model.npz")
    record = {"args": {k: (v if not isinstance(v, Path) else str(v)) for k, v in
                       vars(args).items() if k != "command"},
              "resolved": cfg, "test_loss": float(test_loss), "test_accuracy": float(test_acc),
              "fit_seconds": fit_seconds, "total_seconds": seconds,
              "preprocessing": {"class_name": "Standardize", "per": "channel",
                                "mean": np.asarray(scaler.mean_).tolist(),
                                "scale": np.asarray(scaler.scale_).tolist()},
              **history.to_dict()}
    (out / "history.json").write_text(json.dumps(record, indent=1, default=float))
    _write_plots(out, cfg, model, history)
    status = " (training diverged: see the warning)" if history.diverged else ""
    print(f"test accuracy: {test_acc:.4f}  test loss: {test_loss:.4f}  ({seconds:.1f} s, "
          f"fit {fit_seconds:.1f} s){status}; saved to {out}{os.sep}", flush=True)
    return 0
