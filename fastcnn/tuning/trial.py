"""One trial of a search: build a model from parameters, train it, report.

:func:`run_trial` is the unit of work every executor runs (in this process, in a
local worker process, or on a Dask worker). It depends only on its arguments:

* ``fastcnn.seed(spec.seed)`` before ``build(params)`` fixes the initial weights and
  the dropout masks, and ``fit(seed=spec.seed)`` fixes the shuffling, so the same
  parameters and seed give the same numbers whichever executor runs the trial (the
  kernels are bitwise identical for any thread count).
* :class:`AbortOnDivergence` stops a trial whose batch loss exceeds
  ``abort_factor`` times its first batch loss, or becomes NaN/inf (the course's "if
  the cost is ever > 3 * original cost, break out early"). Such a trial is recorded
  with status ``"diverged"``; it is not an error.
* Any exception inside the trial is caught and recorded as status ``"failed"``
  (with the message), so one bad parameter combination cannot end a search.

The result is a plain dict (a *record*), with the trained model as the bytes of its
``.npz`` file when asked for: records travel between processes as they are.
"""

from __future__ import annotations

import math
import os
import tempfile
import threading
import time
import traceback
import warnings
from dataclasses import dataclass, field

import numpy as np
from threadpoolctl import threadpool_limits

from fastcnn.common.random import seed as seed_global_rng
from fastcnn.kernels._dispatch import get_num_threads, use_num_threads
from fastcnn.train.callbacks import Callback
from fastcnn.train.model import load_model

__all__ = ["AbortOnDivergence", "TrialConfig", "TrialData", "TrialSpec", "run_trial",
           "model_to_bytes", "model_from_bytes", "STATUSES"]

#: every record's ``status`` is one of these
STATUSES = ("ok", "diverged", "failed")

# The package-global random generator and the kernel thread count are per process:
# two trials running at once in one process (a Dask worker with several threads) would
# draw from each other's generator. Trials in one process therefore take turns.
_TRIAL_LOCK = threading.Lock()


class AbortOnDivergence(Callback):
    """Stop training when the batch loss explodes.

    After every batch: stop if ``loss`` is NaN/inf, or if ``factor`` is not None and
    ``loss > factor * first_loss`` (``first_loss`` = the first batch loss of this
    ``fit``). Sets ``model.stop_training``; ``fit`` then returns after that batch.

    Attributes
    ----------
    first_loss : float or None
    diverged : dict or None
        ``{"epoch", "batch", "loss", "first_loss", "reason"}`` when it stopped training.
    """

    def __init__(self, factor: float | None = 3.0):
        super().__init__()
        if factor is not None and (not isinstance(factor, (int, float)) or
                                   isinstance(factor, bool) or not factor > 1
                                   or not math.isfinite(factor)):
            raise ValueError(f"AbortOnDivergence: factor must be a finite number > 1 or "
                             f"None (stop only on NaN/inf); got {factor!r}.")
        self.factor = None if factor is None else float(factor)
        self.first_loss = None
        self.diverged = None

    def on_train_begin(self, logs=None):
        self.first_loss, self.diverged, self._epoch = None, None, 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_batch_end(self, batch, logs=None):
        loss = float((logs or {}).get("loss", 0.0))
        reason = None
        if not math.isfinite(loss):
            reason = "non-finite loss"
        elif (self.factor is not None and self.first_loss is not None
              and loss > self.factor * self.first_loss):
            reason = f"loss > {self.factor:g} x first loss"
        if self.first_loss is None and math.isfinite(loss):
            self.first_loss = loss
        if reason is not None:
            self.diverged = {"epoch": self._epoch, "batch": batch, "loss": loss,
                             "first_loss": self.first_loss, "reason": reason}
            self.model.stop_training = True

    def __repr__(self):
        return f"AbortOnDivergence(factor={self.factor})"


@dataclass(frozen=True)
class TrialData:
    """The arrays every trial trains and validates on (sent to each worker once)."""

    x: np.ndarray
    y: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray


@dataclass(frozen=True)
class TrialConfig:
    """What is the same for every trial of one search."""

    build: object                     # build(params) -> compiled model
    epochs: int
    batch_size: int
    abort_factor: float | None
    keep_model: bool = True
    fit_kwargs: dict = field(default_factory=dict)


@dataclass(frozen=True)
class TrialSpec:
    """What differs: the trial's number, its parameters and its seed."""

    index: int
    params: dict
    seed: int
    stage: str = "search"


def model_to_bytes(model) -> bytes:
    """The model's ``.npz`` file (``model.save``) as bytes, to ship between processes."""
    with tempfile.TemporaryDirectory(prefix="fastcnn-trial-") as folder:
        path = os.path.join(folder, "model.npz")
        model.save(path)
        with open(path, "rb") as f:
            return f.read()


def model_from_bytes(data: bytes):
    """Inverse of :func:`model_to_bytes` (architecture, weights, compile settings)."""
    with tempfile.TemporaryDirectory(prefix="fastcnn-trial-") as folder:
        path = os.path.join(folder, "model.npz")
        with open(path, "wb") as f:
            f.write(data)
        return load_model(path)


def _new_record(spec: TrialSpec) -> dict:
    return {"stage": spec.stage, "index": spec.index, "params": dict(spec.params),
            "seed": spec.seed, "status": "failed", "val_loss": math.nan,
            "val_accuracy": math.nan, "epochs": 0, "time": 0.0, "cpu_time": 0.0,
            "first_loss": None,
            "diverged": None, "error": None, "traceback": None, "history": {},
            "worker": os.getpid(), "model": None}


def _train(config: TrialConfig, data: TrialData, spec: TrialSpec, record: dict) -> None:
    """Build, fit and fill ``record`` (raises whatever build/fit raise)."""
    seed_global_rng(spec.seed)                   # initial weights, dropout masks
    model = config.build(dict(spec.params))
    if not callable(getattr(model, "fit", None)) or getattr(model, "optimizer", 0) is None:
        raise TypeError(f"build(params) must return a compiled model (call "
                        f"model.compile(...) inside build); got {type(model).__name__}.")
    abort = AbortOnDivergence(config.abort_factor)
    history = model.fit(data.x, data.y, batch_size=config.batch_size, epochs=config.epochs,
                        validation_data=(data.x_val, data.y_val), verbose=0, seed=spec.seed,
                        callbacks=[abort], explosion_guard=False, **config.fit_kwargs)
    values = history.history
    record["history"] = {key: [float(v) for v in vals] for key, vals in values.items()}
    record["epochs"] = len(history.epoch)
    record["first_loss"] = abort.first_loss
    for key in ("val_loss", "val_accuracy"):
        if values.get(key):
            record[key] = float(values[key][-1])
    record["diverged"] = abort.diverged
    record["status"] = "diverged" if abort.diverged else "ok"
    if config.keep_model and record["status"] == "ok":
        record["model"] = model_to_bytes(model)


def run_trial(config: TrialConfig, data: TrialData, spec: TrialSpec,
              threads: int | None = None) -> dict:
    """Train one model and return its record (never raises for a failing trial).

    Parameters
    ----------
    threads : int, optional
        Kernel and BLAS threads for this trial (default: the process' setting).

    Returns
    -------
    dict
        ``stage, index, params, seed, status ("ok" | "diverged" | "failed"), val_loss,
        val_accuracy`` (of the last epoch run), ``epochs`` (run), ``time`` (wall-clock
        seconds), ``cpu_time`` (CPU seconds of the process, all threads),
        ``first_loss, diverged`` (see :class:`AbortOnDivergence`), ``error`` (for
        failed trials), ``history`` (per-epoch values), ``worker`` (process id) and
        ``model`` (``.npz`` bytes of an "ok" trial's model, or None).
    """
    record = _new_record(spec)
    threads = threads or get_num_threads()
    start, cpu_start = time.perf_counter(), time.process_time()
    with _TRIAL_LOCK, use_num_threads(threads), threadpool_limits(threads), \
            np.errstate(all="ignore"), warnings.catch_warnings():
        # Search trials are meant to explore bad settings: their overflow and
        # "learning rate too high" warnings would drown the progress lines.
        warnings.simplefilter("ignore")
        try:
            _train(config, data, spec, record)
        except Exception as exc:                 # recorded, the search goes on
            record["status"] = "failed"
            record["error"] = f"{type(exc).__name__}: {exc}"
            record["traceback"] = traceback.format_exc(limit=8)
    record["time"] = time.perf_counter() - start
    # CPU seconds of this process (all its threads): well below `time` when the
    # trial waited for cores that other processes held
    record["cpu_time"] = time.process_time() - cpu_start
    return record
