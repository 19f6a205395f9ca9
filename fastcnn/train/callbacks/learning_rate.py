"""Changing the learning rate during training: :class:`LearningRateScheduler` (a
schedule of the epoch) and :class:`ReduceLROnPlateau` (when progress stalls)."""

from __future__ import annotations

import inspect
import math

from fastcnn.common.validation import check_float, check_nonnegative_int
from fastcnn.train.callbacks.base import (
    Callback,
    _check_mode,
    _improved,
    _monitored,
)


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
