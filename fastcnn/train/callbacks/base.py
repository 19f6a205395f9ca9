"""The callback protocol (:class:`Callback`), the list ``fit`` drives, and the helpers
the monitoring callbacks share (mode, improvement, weight snapshots)."""

from __future__ import annotations

import math
import warnings

import numpy as np

from fastcnn.common.exceptions import FastCNNWarning
from fastcnn.common.keywords import wrap_init_keywords


class Callback:
    """Base class: every hook is a no-op; override the ones you need."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        wrap_init_keywords(cls)    # unknown keywords name the closest valid one

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
