"""Stopping early: :class:`EarlyStopping` (no improvement for ``patience`` epochs) and
:class:`TerminateOnNaN`."""

from __future__ import annotations

import math

from fastcnn.common.validation import check_float, check_nonnegative_int
from fastcnn.train.callbacks.base import (
    Callback,
    _check_mode,
    _improved,
    _monitored,
    _restore,
    _snapshot,
)


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
    verbose : 0 or 1
        1 prints one line when it stops training and when it restores weights (Keras).

    Attributes
    ----------
    best : float, best_epoch : int, stopped_epoch : int (0-based; -1 if not stopped)
    """

    def __init__(self, monitor="val_loss", patience=0, min_delta=0.0, mode="auto",
                 restore_best_weights=False, verbose=0):
        super().__init__()
        where = "EarlyStopping"
        if verbose not in (0, 1) or isinstance(verbose, float):
            raise ValueError(f"{where}: verbose must be 0 or 1; got {verbose!r}.")
        self.verbose = int(verbose)
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
            if self.verbose:
                print(f"Epoch {epoch + 1}: early stopping ({self.monitor} has not improved "
                      f"for {self.wait} epochs; best {self.best:.4f} at epoch "
                      f"{self.best_epoch + 1}).", flush=True)

    def on_train_end(self, logs=None):
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose:
                print(f"Restoring model weights from the end of the best epoch: "
                      f"{self.best_epoch + 1}.", flush=True)
            _restore(self.model, self.best_weights)
            self.best_weights = None          # free the copy

    def __repr__(self):
        return (f"EarlyStopping(monitor={self.monitor!r}, patience={self.patience}, "
                f"min_delta={self.min_delta}, mode={self.mode!r}, "
                f"restore_best_weights={self.restore_best_weights}, verbose={self.verbose})")


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
