"""The training loop behind ``fit`` / ``evaluate`` / ``predict`` of every model
(``Sequential`` and the functional ``Model``; their data arrives here already converted
to NCHW arrays of the model's dtype, see :mod:`fastcnn.train.edge`).

``fit`` repeats the training step of :mod:`fastcnn.train.step` over shuffled
mini-batches and adds the babysitting a course teaches, at little cost:

* **Shuffling** every epoch from one seeded generator; mini-batches are gathered
  with ``np.take(..., out=)`` into two buffers allocated once per ``fit``.
* **Progress**: a ``tqdm.auto`` bar per epoch (``verbose=1`` in a terminal or a Jupyter
  notebook, or ``progress=True``; ``progress=False`` or ``verbose`` 0/2: none): a live
  widget in Jupyter, text on stderr elsewhere; and one summary line per epoch on stdout
  (``verbose`` 1 or 2): loss, metrics, validation metrics, learning rate, time.
* **History** (:mod:`fastcnn.train.history`): per-epoch ``loss``, metrics, ``val_*`` and
  ``lr`` (the rate in force at the start of the epoch), plus ``update_ratios`` and
  ``diverged``.
* **Explosion guard** (:mod:`fastcnn.train.guard`): a NaN/Inf loss is not applied; the
  batch is re-run layer by layer to name the first layer that went non-finite, and
  training stops (Keras' ``TerminateOnNaN``, with a diagnosis): a :class:`FastCNNWarning`,
  ``history.diverged`` holds it, and ``fit`` returns normally (the completed epochs are
  kept; checkpoints already written are never touched, since no epoch end is reached).
  A finite loss above 3x the reference loss only *warns*, once per ``fit``: healthy runs
  (He initialisation, Adagrad's first steps) spike early and recover. The hard 3x stop is
  opt-in: ``explosion_guard="strict"`` (warning) or ``"raise"`` (raises
  :class:`TrainingDivergedError` after ``on_train_end``; hyper-parameter search uses it).
  ``False`` turns the guard off.
* **Update/weight ratios** (:mod:`fastcnn.train.update_ratios`), sampled ~5 times per
  epoch, with a warning far from the ~1e-3 rule of thumb.
* **Callbacks** (:mod:`fastcnn.train.callbacks`) with Keras' hooks and
  ``model.stop_training``.
"""

from __future__ import annotations

import math
import sys
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
from tqdm.auto import tqdm   # a widget in Jupyter, the text bar elsewhere

from fastcnn.common import random as _random
from fastcnn.common.exceptions import FastCNNWarning
from fastcnn.common.validation import check_nonnegative_int, check_positive_int
from fastcnn.data import augment as _augment
from fastcnn.data.augment import tta_predict
from fastcnn.train.callbacks import CallbackList
from fastcnn.train.guard import (
    EXPLOSION_FACTOR,
    TrainingDivergedError,
    check_guard,
    diverged_report,
    reference_floor,
)
from fastcnn.train.history import History
from fastcnn.train.step import loss_and_gradients, regularization_penalty, train_step
from fastcnn.train.update_ratios import (
    SAMPLES_PER_EPOCH,
    UPDATE_RATIO_HIGH,
    UPDATE_RATIO_LOW,
    RatioMeter,
)

__all__ = ["History", "TrainingDivergedError", "loss_and_gradients", "train_step", "fit",
           "evaluate", "predict", "regularization_penalty", "EXPLOSION_FACTOR",
           "UPDATE_RATIO_LOW", "UPDATE_RATIO_HIGH"]


def _where(model, method: str) -> str:
    return f"{type(model).__name__}.{method}"


def _check_xy(where: str, model, x, y):
    if not isinstance(x, np.ndarray) or x.dtype != model.dtype:
        got = x.dtype if isinstance(x, np.ndarray) else type(x).__name__
        raise TypeError(f"{where}: x must be a numpy array of dtype {model.dtype} (the "
                        f"model's dtype); got {got}. Hint: x.astype(np.{model.dtype}).")
    if y is not None and len(y) != len(x):
        raise ValueError(f"{where}: x and y must hold the same number of samples; got "
                         f"len(x)={len(x)}, len(y)={len(y)}.")
    if len(x) == 0:
        raise ValueError(f"{where}: x must hold at least one sample; got x.shape={x.shape}.")


def _check_batch_size(where: str, batch_size) -> int:
    return check_positive_int(where, "batch_size", batch_size)


def _check_verbose(where: str, verbose) -> int:
    if verbose not in (0, 1, 2) or isinstance(verbose, float):
        raise ValueError(f"{where}: verbose must be 0, 1 or 2; got {verbose!r}.")
    return int(verbose)


def _in_jupyter() -> bool:
    """True inside a Jupyter kernel (where stderr is no terminal, but a bar shows live)."""
    ipython = sys.modules.get("IPython")       # only if the user's session imported it
    shell = ipython.get_ipython() if ipython is not None else None
    return shell is not None and hasattr(shell, "kernel")


def _format_logs(epoch: int, epochs: int, logs: dict, seconds: float) -> str:
    parts = [f"Epoch {epoch + 1}/{epochs}"]
    for key, value in logs.items():
        parts.append(f"{key}: {value:.3g}" if key == "lr" else f"{key}: {value:.4f}")
    parts.append(f"{seconds:.2f}s")
    return " - ".join(parts)


@dataclass
class _Run:
    """Everything one ``fit`` call sets up once and its epochs share."""

    model: object
    x: np.ndarray
    y: np.ndarray
    batch_size: int
    epochs: int
    steps: int
    shuffle: bool
    guard: str | None
    rng: np.random.Generator
    transform: object
    aug_rng: np.random.Generator | None
    show_bar: bool
    history: History
    callbacks: CallbackList
    meter: RatioMeter | None
    xbuf: np.ndarray
    ybuf: np.ndarray
    initial: float | None = None          # the guard's reference loss, set by batch 1
    warned: bool = False                  # the 3x warning is given once per fit
    params: list = field(default_factory=list)


def _setup(model, x, y, batch_size, epochs, shuffle, verbose, seed, augment, callbacks,
           explosion_guard, progress, update_ratio_every) -> _Run:
    """Validate the arguments of ``fit`` and allocate what its epochs reuse."""
    where = _where(model, "fit")
    _check_xy(where, model, x, y)
    batch_size = _check_batch_size(where, batch_size)
    epochs = check_nonnegative_int(where, "epochs", epochs)
    verbose = _check_verbose(where, verbose)
    guard = check_guard(where, explosion_guard)
    y = np.asarray(y)
    n = len(x)
    steps = -(-n // batch_size)
    if update_ratio_every is None:
        update_ratio_every = max(1, steps // SAMPLES_PER_EPOCH)
    update_ratio_every = check_nonnegative_int(where, "update_ratio_every", update_ratio_every)
    rng = _random.get_rng(seed)
    transform = _augment.get(augment)
    # The augmentation draws from its own stream, split off the shuffling generator,
    # so a seeded fit is reproducible with or without augmentation.
    aug_rng = np.random.default_rng(int(rng.integers(2**63))) if transform else None
    show_bar = ((verbose == 1 and (sys.stderr.isatty() or _in_jupyter()))
                if progress is None else bool(progress))
    history = History({"batch_size": batch_size, "epochs": epochs, "samples": n,
                       "steps": steps})
    model.history = history
    model.stop_training = False
    params = model.parameters()
    m0 = min(batch_size, n)         # batch buffers, allocated once per fit
    return _Run(model=model, x=x, y=y, batch_size=batch_size, epochs=epochs, steps=steps,
                shuffle=shuffle, guard=guard, rng=rng, transform=transform, aug_rng=aug_rng,
                show_bar=show_bar, history=history,
                callbacks=CallbackList(callbacks, model),
                meter=RatioMeter(params, update_ratio_every) if update_ratio_every else None,
                xbuf=np.empty((m0,) + x.shape[1:], dtype=x.dtype),
                ybuf=np.empty((m0,) + y.shape[1:], dtype=y.dtype), params=params)


def _batches(run: _Run):
    """Yield ``(batch, xb, yb)`` for one epoch: shuffled (gathered into the reused
    buffers) or in order (views), augmented when asked."""
    n = len(run.x)
    order = run.rng.permutation(n) if run.shuffle else None
    for batch in range(run.steps):
        start = batch * run.batch_size
        m = min(run.batch_size, n - start)
        if order is None:
            xb, yb = run.x[start:start + m], run.y[start:start + m]
        else:
            idx = order[start:start + m]
            xb = np.take(run.x, idx, axis=0, out=run.xbuf[:m])
            yb = np.take(run.y, idx, axis=0, out=run.ybuf[:m])
        if run.transform is not None:
            xb = run.transform(xb, rng=run.aug_rng)
        yield batch, xb, yb


def _diverges(run: _Run, loss: float, epoch: int, batch: int) -> bool:
    """True when the guard stops here: a non-finite loss, or (strict modes) one above
    3x the reference. Above 3x in the default mode: one warning per fit."""
    if not run.guard:
        return False
    if not math.isfinite(loss):
        return True
    if run.initial is None or loss <= EXPLOSION_FACTOR * run.initial:
        return False
    if run.guard in ("strict", "raise"):
        return True
    if not run.warned:
        run.warned = True
        warnings.warn(f"fit: the loss {loss:.4g} at epoch {epoch + 1}, batch {batch + 1} "
                      f"exceeds {EXPLOSION_FACTOR:g}x the reference loss {run.initial:.4g}; "
                      f"training goes on (it often recovers). If it keeps rising, lower the "
                      f"learning rate; explosion_guard='strict' stops at this point.",
                      FastCNNWarning, stacklevel=5)
    return False


def _train_epoch(run: _Run, epoch: int) -> tuple[list, int]:
    """One pass over the data. Returns the sample-weighted sums ``[loss, metric1, ...]``
    and the number of samples trained on (0 when stopped before the first batch)."""
    model, cbs, meter = run.model, run.callbacks, run.meter
    metrics = model.compiled_metrics
    totals, seen = [0.0] * (1 + len(metrics)), 0
    bar = (tqdm(total=run.steps, desc=f"Epoch {epoch + 1}/{run.epochs}", unit="batch",
                file=sys.stderr, leave=False, dynamic_ncols=True) if run.show_bar else None)
    for batch, xb, yb in _batches(run):
        m = len(xb)
        cbs.on_batch_begin(batch, {"size": m})
        loss, out = loss_and_gradients(model, xb, yb, training=True)
        if _diverges(run, loss, epoch, batch):
            run.history.diverged = diverged_report(model, xb, yb, epoch, batch, loss,
                                                   run.initial)
            break
        if run.initial is None:
            run.initial = max(loss, reference_floor(model))
        sample = meter is not None and batch % meter.every == 0
        if sample:
            meter.before()
        model.optimizer.step(run.params)
        if sample:
            meter.after()
        totals[0] += loss * m
        for i, (_, metric) in enumerate(metrics, start=1):
            totals[i] += metric(out, yb) * m
        seen += m
        cbs.on_batch_end(batch, {"loss": loss, "size": m})
        if bar is not None:
            bar.update(1)
            if batch % 8 == 0:
                bar.set_postfix_str(f"loss {totals[0] / seen:.4f}", refresh=False)
        if model.stop_training:
            break
    if bar is not None:
        bar.close()
    return totals, seen


def _epoch_logs(run: _Run, totals: list, seen: int, validation_data) -> dict:
    """Mean loss and metrics of the epoch, then the validation ones (``val_*``)."""
    metrics = run.model.compiled_metrics
    logs = {"loss": totals[0] / seen}
    logs.update({name: totals[i] / seen for i, (name, _) in enumerate(metrics, start=1)})
    if validation_data is not None:
        x_val, y_val = validation_data
        run.callbacks.on_test_begin()
        values = evaluate(run.model, x_val, y_val, batch_size=run.batch_size, as_dict=True)
        run.callbacks.on_test_end(values)
        logs.update({f"val_{key}": value for key, value in values.items()})
    return logs


def fit(model, x, y, batch_size=32, epochs=1, validation_data=None, shuffle=True,
        verbose=1, seed=None, augment=None, callbacks=None, explosion_guard=True,
        progress=None, update_ratio_every=None) -> History:
    """Train ``model`` (compiled) on ``(x, y)``; see :meth:`Sequential.fit` and the
    module docstring for what each option does."""
    run = _setup(model, x, y, batch_size, epochs, shuffle, verbose, seed, augment,
                 callbacks, explosion_guard, progress, update_ratio_every)
    history, cbs = run.history, run.callbacks
    logs: dict = {}
    cbs.on_train_begin()
    for epoch in range(run.epochs):
        t0 = time.perf_counter()
        cbs.on_epoch_begin(epoch, {})
        lr = model.optimizer.current_learning_rate()
        if model.stop_training:                        # set by on_epoch_begin
            break
        totals, seen = _train_epoch(run, epoch)
        if history.diverged is not None or seen == 0:
            break
        logs = _epoch_logs(run, totals, seen, validation_data)
        logs["lr"] = lr
        if run.meter is not None:
            run.meter.end_epoch(history, epoch)
        seconds = time.perf_counter() - t0
        history.append(epoch, logs)
        history.epoch_times.append(seconds)
        cbs.on_epoch_end(epoch, {**logs, "time": seconds})
        if verbose:
            print(_format_logs(epoch, run.epochs, logs, seconds), flush=True)
        if model.stop_training:
            break
    cbs.on_train_end(logs)
    if history.diverged is not None:
        if run.guard == "raise":
            raise TrainingDivergedError(history.diverged, history)
        warnings.warn(history.diverged["message"], FastCNNWarning, stacklevel=3)
    return history


def evaluate(model, x, y, batch_size=32, as_dict: bool = False):
    """Loss (+ penalties) and metrics over ``(x, y)`` in inference mode.

    Returns ``[loss, metric1, ...]`` (or the loss alone without metrics), or a dict.
    """
    where = _where(model, "evaluate")
    _check_xy(where, model, x, y)
    batch_size = _check_batch_size(where, batch_size)
    y = np.asarray(y)
    totals = {"loss": 0.0, **{name: 0.0 for name, _ in model.compiled_metrics}}
    for start in range(0, len(x), batch_size):
        xb, yb = x[start:start + batch_size], y[start:start + batch_size]
        out = model.forward_for_loss(xb, training=False)
        totals["loss"] += model.compiled_loss.forward(out, yb) * len(xb)
        for name, metric in model.compiled_metrics:
            totals[name] += metric(out, yb) * len(xb)
    values = {key: value / len(x) for key, value in totals.items()}
    values["loss"] += regularization_penalty(model, add_gradients=False)
    if as_dict:
        return values
    return list(values.values()) if model.compiled_metrics else values["loss"]


def predict(model, x, batch_size=32, tta=None, verbose=0) -> np.ndarray:
    """Model outputs for ``x`` in inference mode (probabilities after a Softmax).

    ``tta``: None/False for plain prediction; True (identity + mirror), a dict of
    :func:`fastcnn.augment.tta_views` arguments (``{"flips": True, "shifts": [(1, 0)]}``)
    or an iterable of view batches averages the predictions over test-time views
    (:func:`fastcnn.augment.tta_predict`).
    """
    where = _where(model, "predict")
    _check_xy(where, model, x, None)
    batch_size = _check_batch_size(where, batch_size)
    verbose = 1 if verbose == "auto" else _check_verbose(where, verbose)
    if tta is not None and tta is not False:
        return tta_predict(lambda view: predict(model, view, batch_size), x, views=tta)
    starts = range(0, len(x), batch_size)
    if verbose == 1:                  # Keras' predict(verbose=1): a progress bar
        starts = tqdm(starts, desc="predict", unit="batch", file=sys.stderr, leave=False)
    outs = [model.forward(x[start:start + batch_size], training=False) for start in starts]
    return np.concatenate(outs, axis=0)
