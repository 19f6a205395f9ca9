"""Saving the model during training: :class:`ModelCheckpoint` (Keras' surface)."""

from __future__ import annotations

import math
import os
import warnings

import numpy as np

from fastcnn.common.exceptions import FastCNNWarning
from fastcnn.train.serialization import check_npz_path
from fastcnn.train.callbacks.base import (
    Callback,
    _check_mode,
    _improved,
    _monitored,
)


class ModelCheckpoint(Callback):
    """Save the model (``model.save``, atomic: temp file + rename) at the end of epochs.

    Parameters
    ----------
    filepath : str or PathLike
        May contain ``{epoch}`` (1-based) and log keys:
        ``"ckpt-{epoch:02d}-{val_loss:.3f}.npz"``. Must end in ``.npz`` (checked here,
        before training).
    monitor : str, default "val_loss"
    verbose : 0 or 1
        1 prints one line per epoch saying what was saved, or why not (Keras' wording).
    save_best_only : bool
        Save only when ``monitor`` improves on the best value seen *so far by this
        callback*, across ``fit`` calls (a second ``fit`` that diverges cannot
        overwrite the first one's best checkpoint). Otherwise save every epoch.
    save_weights_only : bool
        ``model.save_weights`` (weights and statistics only) instead of ``model.save``.
    mode : "auto" | "min" | "max"
        Whether smaller or larger is better; "auto" maximises accuracy-like quantities.
    initial_value_threshold : float, optional
        The value to beat first (Keras): with ``save_best_only``, nothing is saved
        until ``monitor`` is better than this -- e.g. the value of a checkpoint
        already on disk from an earlier session.

    A checkpoint is never written from a model with non-finite weights, statistics,
    loss or monitored value: that epoch is skipped with a warning, so a diverging run
    cannot replace a good file with a broken one.

    Attributes
    ----------
    best : float
        The best monitored value saved so far (``inf``/``-inf`` before the first).
    saved : list[str]
        Paths written, in order, over all ``fit`` calls.
    """

    def __init__(self, filepath, monitor="val_loss", verbose=0, save_best_only=False,
                 save_weights_only=False, mode="auto", initial_value_threshold=None):
        super().__init__()
        # checked now, not at the first epoch's end: a wrong extension ("best.keras")
        # should not cost an epoch of training to find out
        self.filepath = check_npz_path("ModelCheckpoint: filepath", filepath)
        self.monitor = str(monitor)
        if verbose not in (0, 1, 2) or isinstance(verbose, bool):
            raise ValueError(f"ModelCheckpoint: verbose must be 0 or 1; got {verbose!r}.")
        self.verbose = int(verbose)
        self.save_best_only = bool(save_best_only)
        self.save_weights_only = bool(save_weights_only)
        self.mode = _check_mode("ModelCheckpoint", mode, self.monitor)
        # Kept across fit calls (Keras 3 also sets it once, here): the best checkpoint
        # of an earlier fit is what a later one has to beat.
        self.best = math.inf if self.mode == "min" else -math.inf
        if initial_value_threshold is not None:
            if (not isinstance(initial_value_threshold, (int, float, np.floating))
                    or not math.isfinite(initial_value_threshold)):
                raise ValueError(f"ModelCheckpoint: initial_value_threshold must be a finite "
                                 f"number or None; got {initial_value_threshold!r}.")
            self.best = float(initial_value_threshold)
        self.saved: list[str] = []

    @property
    def path(self) -> str:
        """The ``filepath`` pattern (the name this callback had before Keras' one)."""
        return self.filepath

    def _say(self, message: str) -> None:
        if self.verbose:
            print(message, flush=True)

    def _broken(self, logs: dict, current) -> str | None:
        """Why this model must not be saved (None when it may be)."""
        loss = logs.get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            return f"loss is {loss}"
        if current is not None and not math.isfinite(current):
            return f"{self.monitor} is {current}"
        arrays = [p.data for p in self.model.parameters()] + list(self.model.states().values())
        if not all(np.isfinite(a).all() for a in arrays):
            return "the weights are not all finite"
        return None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        current = (_monitored("ModelCheckpoint", logs, self.monitor) if self.save_best_only
                   else (float(logs[self.monitor]) if self.monitor in logs else None))
        if self.save_best_only:
            if current is None:
                return
            if not _improved(self.mode, current, self.best, 0.0):
                self._say(f"Epoch {epoch + 1}: {self.monitor} did not improve from "
                          f"{self.best:.5f}")
                return
        reason = self._broken(logs, current)
        if reason is not None:
            warnings.warn(f"ModelCheckpoint: epoch {epoch + 1} not saved: {reason} (earlier "
                          f"checkpoints are kept).", FastCNNWarning, stacklevel=2)
            return
        path = self.filepath.format(epoch=epoch + 1, **logs)
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        if self.save_weights_only:
            self.model.save_weights(path)
        else:
            self.model.save(path)
        if self.save_best_only:
            self._say(f"Epoch {epoch + 1}: {self.monitor} improved from {self.best:.5f} to "
                      f"{current:.5f}, saving model to {path}")
            self.best = current
        else:
            self._say(f"Epoch {epoch + 1}: saving model to {path}")
        self.saved.append(path)

    def __repr__(self):
        return (f"ModelCheckpoint({self.filepath!r}, monitor={self.monitor!r}, "
                f"save_best_only={self.save_best_only}, "
                f"save_weights_only={self.save_weights_only}, mode={self.mode!r})")
