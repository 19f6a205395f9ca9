"""Callbacks: code that ``fit`` runs at fixed points of training (Keras' hooks).

``model.fit(x, y, callbacks=[EarlyStopping(patience=3), ModelCheckpoint("best.npz")])``

The hooks, in the order ``fit`` calls them::

    on_train_begin(logs)
      on_epoch_begin(epoch, logs)            logs = {}
        on_batch_begin(batch, logs)          batch = index within the epoch
        on_batch_end(batch, logs)            logs = {"loss": batch loss, "size": n}
        ...
        on_test_begin(logs)                  only with validation_data, around it
        on_test_end(logs)
      on_epoch_end(epoch, logs)              logs = {"loss", metrics, "val_*", "lr", "time"}
    on_train_end(logs)                       logs = the last epoch's logs

A callback sees the model as ``self.model`` (set by ``fit`` through ``set_model``) and
can stop training by setting ``self.model.stop_training = True``: ``fit`` finishes the
current batch (or epoch, when set at epoch end) and returns. Every callback is
cheap to create and keeps no state between two ``fit`` calls except what it documents
(``EarlyStopping.best`` etc. are reset by ``on_train_begin``), so one instance can be
reused across runs of a hyper-parameter search.

``History`` (in :mod:`fastcnn.training`) is always added by ``fit``; the callbacks
here are the Keras set: :class:`EarlyStopping`, :class:`ModelCheckpoint`,
:class:`LearningRateScheduler`, :class:`ReduceLROnPlateau`, :class:`TerminateOnNaN`,
plus :class:`ParameterAveraging` (an exponential moving average of the weights).
"""

from __future__ import annotations

import contextlib
import inspect
import math
import os
import warnings

import numpy as np

from fastcnn.common.validation import check_float, check_nonnegative_int
from fastcnn.common.exceptions import FastCNNWarning
from fastcnn.train.loop import History

__all__ = ["Callback", "CallbackList", "History", "EarlyStopping", "ModelCheckpoint",
           "LearningRateScheduler", "ReduceLROnPlateau", "TerminateOnNaN",
           "ParameterAveraging"]


class Callback:
    """Base class: every hook is a no-op; override the ones you need."""

    def __init__(self):
        self.model = None

    def set_model(self, model) -> None:
        self.model = model

    def on_train_begin(self, logs=None): ...
    def on_train_end(self, logs=None): ...
    def on_epoch_begin(self, epoch, logs=None): ...
    def on_epoch_end(self, epoch, logs=None): ...
    def on_batch_begin(self, batch, logs=None): ...
    def on_batch_end(self, batch, logs=None): ...
    def on_test_begin(self, logs=None): ...
    def on_test_end(self, logs=None): ...

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


_HOOKS = ("on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end",
          "on_batch_begin", "on_batch_end", "on_test_begin", "on_test_end")


class CallbackList:
    """Calls a hook on every callback in order. Only callbacks that override a per-batch
    hook are called per batch, so an empty list costs nothing in the inner loop."""

    def __init__(self, callbacks, model):
        self.callbacks = list(callbacks or [])
        for cb in self.callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(f"Sequential.fit: callbacks must be fastcnn.callbacks.Callback "
                                f"instances; got {type(cb).__name__}.")
            cb.set_model(model)
        self._batch_end = [cb for cb in self.callbacks
                           if type(cb).on_batch_end is not Callback.on_batch_end]
        self._batch_begin = [cb for cb in self.callbacks
                             if type(cb).on_batch_begin is not Callback.on_batch_begin]

    def on_train_begin(self, logs=None):
        for cb in self.callbacks:
            cb.on_train_begin(logs)

    def on_train_end(self, logs=None):
        for cb in self.callbacks:
            cb.on_train_end(logs)

    def on_epoch_begin(self, epoch, logs=None):
        for cb in self.callbacks:
            cb.on_epoch_begin(epoch, logs)

    def on_epoch_end(self, epoch, logs=None):
        for cb in self.callbacks:
            cb.on_epoch_end(epoch, logs)

    def on_batch_begin(self, batch, logs=None):
        for cb in self._batch_begin:
            cb.on_batch_begin(batch, logs)

    def on_batch_end(self, batch, logs=None):
        for cb in self._batch_end:
            cb.on_batch_end(batch, logs)

    def on_test_begin(self, logs=None):
        for cb in self.callbacks:
            cb.on_test_begin(logs)

    def on_test_end(self, logs=None):
        for cb in self.callbacks:
            cb.on_test_end(logs)


# ------------------------------------------------------------------------ helpers
def _check_mode(where: str, mode: str, monitor: str):
    """``(np.less or np.greater, mode)``; "auto" maximises accuracy-like quantities."""
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"{where}: mode must be 'auto', 'min' or 'max'; got {mode!r}.")
    if mode == "auto":
        mode = "max" if ("acc" in monitor or monitor.endswith("auc")) else "min"
    return mode


def _improved(mode: str, current: float, best: float, min_delta: float) -> bool:
    """``current < best - min_delta`` (min) or ``current > best + min_delta`` (max)."""
    if not math.isfinite(current):
        return False
    if mode == "min":
        return current < best - min_delta
    return current > best + min_delta


def _monitored(where: str, logs: dict, monitor: str):
    """The monitored value, or None with a one-time warning listing what is logged."""
    value = (logs or {}).get(monitor)
    if value is None:
        warnings.warn(f"{where}: monitor {monitor!r} is not in the epoch logs (available: "
                      f"{sorted(logs or {})}); this epoch is skipped. Hint: pass "
                      f"validation_data= to fit for 'val_*' quantities.", FastCNNWarning,
                      stacklevel=3)
        return None
    return float(value)


def _snapshot(model) -> list[np.ndarray]:
    """Copies of every parameter and moving statistic (what ``_restore`` puts back)."""
    return [p.data.copy() for p in model.parameters()] + \
        [a.copy() for a in model.states().values()]


def _restore(model, saved) -> None:
    targets = [p.data for p in model.parameters()] + list(model.states().values())
    for dst, src in zip(targets, saved):
        dst[...] = src                        # in place: optimizers hold these arrays


# ------------------------------------------------------------------ the callbacks
class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved for ``patience`` epochs.

    An epoch *improves* when ``monitor < best - min_delta`` (mode "min") or
    ``monitor > best + min_delta`` (mode "max"); "auto" means "max" for accuracies and
    "min" otherwise. Once ``max(patience, 1)`` epochs in a row have not improved,
    ``model.stop_training`` is set (Keras' rule: ``patience=0`` and ``patience=1`` both
    stop at the first epoch that does not improve, ``patience=2`` at the second).

    Parameters
    ----------
    monitor : str
        A key of the epoch logs (``"val_loss"``, ``"val_accuracy"``, ``"loss"`` ...).
    patience : int >= 0
    min_delta : float >= 0
    mode : "auto" | "min" | "max"
    restore_best_weights : bool
        At the end of training, copy back the weights (and batch-norm statistics) of
        the best epoch if a later epoch was worse. Costs one copy of the weights per
        improving epoch.

    Attributes
    ----------
    best : float, best_epoch : int, stopped_epoch : int (0-based; -1 if not stopped)
    """

    def __init__(self, monitor="val_loss", patience=0, min_delta=0.0, mode="auto",
                 restore_best_weights=False):
        super().__init__()
        where = "EarlyStopping"
        self.monitor = str(monitor)
        self.patience = check_nonnegative_int(where, "patience", patience)
        self.min_delta = check_float(where, "min_delta", min_delta, low=0,
                                     high_inclusive=False)
        self.mode = _check_mode(where, mode, self.monitor)
        self.restore_best_weights = bool(restore_best_weights)

    def on_train_begin(self, logs=None):
        self.best = math.inf if self.mode == "min" else -math.inf
        self.best_epoch = -1
        self.stopped_epoch = -1
        self.wait = 0
        self.best_weights = None

    def on_epoch_end(self, epoch, logs=None):
        current = _monitored("EarlyStopping", logs, self.monitor)
        if current is None:
            return
        if _improved(self.mode, current, self.best, self.min_delta):
            self.best, self.best_epoch, self.wait = current, epoch, 0
            if self.restore_best_weights:
                self.best_weights = _snapshot(self.model)
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.restore_best_weights and self.best_weights is not None:
            _restore(self.model, self.best_weights)
            self.best_weights = None          # free the copy

    def __repr__(self):
        return (f"EarlyStopping(monitor={self.monitor!r}, patience={self.patience}, "
                f"min_delta={self.min_delta}, mode={self.mode!r}, "
                f"restore_best_weights={self.restore_best_weights})")


class ModelCheckpoint(Callback):
    """Save the model with ``model.save`` (atomic: temp file + rename) after epochs.

    Parameters
    ----------
    path : str or PathLike
        May contain ``{epoch}`` (1-based) and log keys: ``"ckpt-{epoch:02d}-{val_loss:.3f}.npz"``.
    monitor : str
    save_best_only : bool
        Save only when ``monitor`` improves on the best value seen (mode as in
        :class:`EarlyStopping`). Otherwise save every epoch.
    mode : "auto" | "min" | "max"

    A checkpoint is never written from non-finite weights or a non-finite loss: that
    epoch is skipped with a warning, so a diverging run cannot overwrite a good file.

    Attributes
    ----------
    best : float, saved : list[str] (paths written, in order)
    """

    def __init__(self, path, monitor="val_loss", save_best_only=False, mode="auto"):
        super().__init__()
        self.path = os.fspath(path)
        self.monitor = str(monitor)
        self.save_best_only = bool(save_best_only)
        self.mode = _check_mode("ModelCheckpoint", mode, self.monitor)

    def on_train_begin(self, logs=None):
        self.best = math.inf if self.mode == "min" else -math.inf
        self.saved = []

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.save_best_only:
            current = _monitored("ModelCheckpoint", logs, self.monitor)
            if current is None or not _improved(self.mode, current, self.best, 0.0):
                return
            self.best = current
        loss = logs.get("loss", 0.0)
        if not math.isfinite(loss) or not all(np.isfinite(p.data).all()
                                              for p in self.model.parameters()):
            warnings.warn(f"ModelCheckpoint: epoch {epoch + 1} has a non-finite loss or "
                          f"weights; not saved (earlier checkpoints are kept).",
                          FastCNNWarning, stacklevel=2)
            return
        path = self.path.format(epoch=epoch + 1, **logs)
        directory = os.path.dirname(os.path.abspath(path))
        os.makedirs(directory, exist_ok=True)
        self.model.save(path)
        self.saved.append(path)

    def __repr__(self):
        return (f"ModelCheckpoint({self.path!r}, monitor={self.monitor!r}, "
                f"save_best_only={self.save_best_only})")


class LearningRateScheduler(Callback):
    """Set the optimizer's learning rate at the start of every epoch.

    Parameters
    ----------
    schedule : callable
        ``schedule(epoch) -> lr`` (0-based epoch), e.g. any :mod:`fastcnn.schedules`
        schedule (``StepDecay(0.1, drop_every=5)`` halves every 5 *epochs* here), or
        Keras' ``schedule(epoch, lr) -> lr`` when it takes two arguments.

    The rate is set with ``optimizer.set_learning_rate(float)``, so it replaces a
    per-step schedule given to the optimizer.
    """

    def __init__(self, schedule):
        super().__init__()
        if not callable(schedule):
            raise TypeError(f"LearningRateScheduler: schedule must be callable (epoch -> lr); "
                            f"got {schedule!r}.")
        self.schedule = schedule
        try:
            params = inspect.signature(schedule).parameters.values()
            positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY,
                                                          p.POSITIONAL_OR_KEYWORD)
                          and p.default is p.empty]
            self._two_args = len(positional) >= 2
        except (TypeError, ValueError):      # builtins without a signature
            self._two_args = False

    def on_epoch_begin(self, epoch, logs=None):
        opt = self.model.optimizer
        lr = (self.schedule(epoch, opt.current_learning_rate()) if self._two_args
              else self.schedule(epoch))
        lr = float(lr)
        if not math.isfinite(lr) or lr < 0:
            raise ValueError(f"LearningRateScheduler: schedule({epoch}) must return a finite "
                             f"float >= 0; got {lr!r}.")
        opt.set_learning_rate(lr)

    def __repr__(self):
        return f"LearningRateScheduler({self.schedule!r})"


class ReduceLROnPlateau(Callback):
    """Multiply the learning rate by ``factor`` when ``monitor`` stalls.

    Once ``max(patience, 1)`` epochs in a row have not improved (as in
    :class:`EarlyStopping`, with ``min_delta``), ``lr <- max(lr * factor, min_lr)``,
    then wait ``cooldown`` epochs before counting again. A per-step schedule on the optimizer is replaced by the
    float rate it had reached, times ``factor``.

    Attributes
    ----------
    reductions : list of (epoch, new_lr)
    """

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, min_lr=0.0,
                 min_delta=1e-4, cooldown=0, mode="auto"):
        super().__init__()
        where = "ReduceLROnPlateau"
        self.monitor = str(monitor)
        self.factor = check_float(where, "factor", factor, low=0, high=1,
                                  low_inclusive=False, high_inclusive=False)
        self.patience = check_nonnegative_int(where, "patience", patience)
        self.min_lr = check_float(where, "min_lr", min_lr, low=0, high_inclusive=False)
        self.min_delta = check_float(where, "min_delta", min_delta, low=0,
                                     high_inclusive=False)
        self.cooldown = check_nonnegative_int(where, "cooldown", cooldown)
        self.mode = _check_mode(where, mode, self.monitor)

    def on_train_begin(self, logs=None):
        self.best = math.inf if self.mode == "min" else -math.inf
        self.wait = 0
        self.cooldown_left = 0
        self.reductions = []

    def on_epoch_end(self, epoch, logs=None):
        current = _monitored("ReduceLROnPlateau", logs, self.monitor)
        if current is None:
            return
        if self.cooldown_left > 0:
            self.cooldown_left -= 1
            self.wait = 0
        if _improved(self.mode, current, self.best, self.min_delta):
            self.best, self.wait = current, 0
            return
        if self.cooldown_left > 0:
            return
        self.wait += 1
        if self.wait >= self.patience:
            opt = self.model.optimizer
            old = opt.current_learning_rate()
            new = max(old * self.factor, self.min_lr)
            if new < old:
                opt.set_learning_rate(new)
                self.reductions.append((epoch, new))
            self.wait = 0
            self.cooldown_left = self.cooldown

    def __repr__(self):
        return (f"ReduceLROnPlateau(monitor={self.monitor!r}, factor={self.factor}, "
                f"patience={self.patience}, min_lr={self.min_lr})")


class TerminateOnNaN(Callback):
    """Stop training at the first batch whose loss is NaN or infinite.

    ``fit``'s explosion guard (on by default) already stops on a non-finite loss and
    says which layer went first; this callback is the plain Keras behaviour for runs
    with ``explosion_guard=False``. Attribute ``terminated_at``: ``(epoch, batch)``.
    """

    def on_train_begin(self, logs=None):
        self.terminated_at = None
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            self.terminated_at = (self._epoch, batch)
            self.model.stop_training = True


class ParameterAveraging(Callback):
    """Exponential moving average (EMA) of the trainable weights (Polyak averaging).

    After every optimizer step, for each trainable parameter ``w``::

        d_t   = min(decay, (1 + t) / (10 + t))     if warmup   (t = steps averaged so far)
        d_t   = decay                              otherwise
        avg  <- d_t * avg + (1 - d_t) * w          (avg starts as a copy of w at train begin)

    The warm-up (TensorFlow's ``num_updates`` rule) lets the average forget the random
    initial weights quickly in short runs. Batch-norm moving statistics are not
    averaged (they are already averages).

    Parameters
    ----------
    decay : float in [0, 1)
    warmup : bool
    use_for_validation : bool
        Validation at the end of each epoch runs with the averaged weights (swapped in
        for the evaluation, swapped back before training goes on), so ``val_*`` in the
        history measures the averaged model.
    swap_at_end : bool
        At the end of training leave the averaged weights in the model (the raw ones
        are kept in ``raw_weights``). With False the model keeps its raw weights and
        :meth:`averaged` swaps the averages in on demand.

    Use ``with avg.averaged(): model.evaluate(x_test, y_test)`` to evaluate the average.
    """

    def __init__(self, decay=0.995, warmup=True, use_for_validation=True, swap_at_end=True):
        super().__init__()
        self.decay = check_float("ParameterAveraging", "decay", decay, low=0, high=1,
                                 high_inclusive=False)
        self.warmup = bool(warmup)
        self.use_for_validation = bool(use_for_validation)
        self.swap_at_end = bool(swap_at_end)
        self.averages = None
        self.raw_weights = None

    def _params(self):
        return [p for p in self.model.parameters() if p.trainable]

    def on_train_begin(self, logs=None):
        self.steps = 0
        self.averages = [p.data.copy() for p in self._params()]
        self.raw_weights = None

    def current_decay(self) -> float:
        """The ``d_t`` the next update uses."""
        t = self.steps
        return min(self.decay, (1.0 + t) / (10.0 + t)) if self.warmup else self.decay

    def on_batch_end(self, batch, logs=None):
        d = self.current_decay()
        for avg, p in zip(self.averages, self._params()):
            # avg = d * avg + (1 - d) * w, in place: avg += (1 - d) * (w - avg)
            avg -= p.data
            avg *= d
            avg += p.data
        self.steps += 1

    def _swap(self) -> None:
        for avg, p in zip(self.averages, self._params()):
            tmp = p.data.copy()
            p.data[...] = avg
            avg[...] = tmp

    @contextlib.contextmanager
    def averaged(self):
        """Context manager: the model holds the averaged weights inside the block."""
        if self.averages is None:
            raise RuntimeError("ParameterAveraging.averaged: no averages yet. Hint: pass "
                               "this callback to fit first.")
        if self.raw_weights is not None:        # already swapped in at train end
            yield
            return
        self._swap()
        try:
            yield
        finally:
            self._swap()

    def on_test_begin(self, logs=None):
        if self.use_for_validation:
            self._swap()

    def on_test_end(self, logs=None):
        if self.use_for_validation:
            self._swap()

    def on_train_end(self, logs=None):
        if self.swap_at_end and self.averages is not None and self.raw_weights is None:
            self.raw_weights = [p.data.copy() for p in self._params()]
            for avg, p in zip(self.averages, self._params()):
                p.data[...] = avg

    def __repr__(self):
        return (f"ParameterAveraging(decay={self.decay}, warmup={self.warmup}, "
                f"use_for_validation={self.use_for_validation}, "
                f"swap_at_end={self.swap_at_end})")
