"""Saving the model during training: :class:`ModelCheckpoint`."""

from __future__ import annotations

import math
import os
import warnings

import numpy as np

from fastcnn.common.exceptions import FastCNNWarning
from fastcnn.train.callbacks.base import (
    Callback,
    _check_mode,
    _improved,
    _monitored,
)


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
