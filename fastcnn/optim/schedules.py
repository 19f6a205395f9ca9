"""Learning-rate schedules: ``lr = schedule(step)``, closed forms from CS231n.

A schedule is a callable ``step -> float`` and can be passed wherever a learning rate
is accepted: ``SGD(learning_rate=StepDecay(0.1, drop_every=1000, factor=0.5))``. The
optimizer calls it with its own ``iterations`` counter, so the first update uses
``schedule(0)``.

==========================  =====================================================
class                       learning rate at time ``t``
==========================  =====================================================
``StepDecay``               ``lr0 * factor ** floor(t / drop_every)``
``ExponentialDecay``        ``lr0 * exp(-decay_rate * t)``
``InverseTimeDecay``        ``lr0 / (1 + decay_rate * t)``
==========================  =====================================================

**What t counts.** By default ``t`` is the optimizer step (one mini-batch update).
For per-epoch decay, as CS231n writes it, either pass ``steps_per_epoch=N``, which
makes ``t = floor(step / N)`` (the number of completed epochs: the rate is constant
within an epoch), or give the schedule to a ``LearningRateScheduler`` callback,
which calls it with the epoch index and sets the optimizer's rate through
``optimizer.set_learning_rate`` at the start of each epoch.

NOTE: Keras has classes with the same names but other arguments:
Keras' ``ExponentialDecay(lr0, decay_steps, decay_rate)`` is
``lr0 * decay_rate ** (step / decay_steps)``, i.e. ours with
``decay_rate = -ln(keras_decay_rate) / decay_steps``; Keras' ``InverseTimeDecay``
is ours with ``decay_rate = keras_decay_rate / decay_steps``.
"""

from __future__ import annotations

import math
import numbers

from fastcnn.common.configurable import Configurable, lookup_class
from fastcnn.common.validation import (
    check_float,
    check_nonnegative_float,
    check_nonnegative_int,
    check_positive_int,
)

__all__ = ["LearningRateSchedule", "StepDecay", "ExponentialDecay", "InverseTimeDecay",
           "get", "serialize"]


class LearningRateSchedule(Configurable):
    """Base class: ``__call__(step) -> float``, ``get_config()``, ``from_config()``.

    Subclasses implement ``_rate(t)`` for the (step or epoch) time ``t``.
    """

    def __init__(self, initial_learning_rate: float, steps_per_epoch=None):
        where = type(self).__name__
        self.initial_learning_rate = check_nonnegative_float(where, "initial_learning_rate",
                                                  initial_learning_rate)
        self.steps_per_epoch = (None if steps_per_epoch is None else
                                check_positive_int(where, "steps_per_epoch", steps_per_epoch))

    def __call__(self, step) -> float:
        step = check_nonnegative_int(type(self).__name__, "step", step)
        t = step if self.steps_per_epoch is None else step // self.steps_per_epoch
        return float(self._rate(t))

    def _rate(self, t: int) -> float:
        raise NotImplementedError(f"{type(self).__name__} must implement _rate().")

    def get_config(self) -> dict:
        keys = ("initial_learning_rate",) + self._config_keys + ("steps_per_epoch",)
        return {key: getattr(self, key) for key in keys}


class StepDecay(LearningRateSchedule):
    """``lr(t) = initial_learning_rate * factor ** floor(t / drop_every)``.

    "Reduce the learning rate by half every 5 epochs" is
    ``StepDecay(lr0, drop_every=5, factor=0.5, steps_per_epoch=batches_per_epoch)``.

    Parameters
    ----------
    initial_learning_rate : float >= 0
    drop_every : int >= 1
        Period, in units of ``t`` (steps; epochs if ``steps_per_epoch`` is given).
    factor : float in (0, 1]
        Multiplier applied at each drop.
    steps_per_epoch : int >= 1 or None
        If given, ``t = floor(step / steps_per_epoch)`` counts completed epochs.
    """

    _config_keys = ("drop_every", "factor")

    def __init__(self, initial_learning_rate: float, drop_every: int, factor: float = 0.5,
                 steps_per_epoch=None):
        super().__init__(initial_learning_rate, steps_per_epoch)
        self.drop_every = check_positive_int("StepDecay", "drop_every", drop_every)
        self.factor = check_float("StepDecay", "factor", factor, low=0, high=1,
                                  low_inclusive=False)

    def _rate(self, t):
        return self.initial_learning_rate * self.factor ** (t // self.drop_every)


class ExponentialDecay(LearningRateSchedule):
    """``lr(t) = initial_learning_rate * exp(-decay_rate * t)`` (CS231n's ``a0 e^{-kt}``).

    Parameters
    ----------
    initial_learning_rate : float >= 0
    decay_rate : float >= 0
        ``k``, per unit of ``t``: the rate halves every ``ln(2) / k`` steps (or epochs).
    steps_per_epoch : int >= 1 or None
        If given, ``t = floor(step / steps_per_epoch)`` counts completed epochs.
    """

    _config_keys = ("decay_rate",)

    def __init__(self, initial_learning_rate: float, decay_rate: float,
                 steps_per_epoch=None):
        super().__init__(initial_learning_rate, steps_per_epoch)
        self.decay_rate = check_nonnegative_float("ExponentialDecay", "decay_rate", decay_rate)

    def _rate(self, t):
        return self.initial_learning_rate * math.exp(-self.decay_rate * t)


class InverseTimeDecay(LearningRateSchedule):
    """``lr(t) = initial_learning_rate / (1 + decay_rate * t)`` (CS231n's ``a0 / (1 + kt)``).

    Parameters
    ----------
    initial_learning_rate : float >= 0
    decay_rate : float >= 0
        ``k``, per unit of ``t``: the rate halves after ``1 / k`` steps (or epochs).
    steps_per_epoch : int >= 1 or None
        If given, ``t = floor(step / steps_per_epoch)`` counts completed epochs.
    """

    _config_keys = ("decay_rate",)

    def __init__(self, initial_learning_rate: float, decay_rate: float,
                 steps_per_epoch=None):
        super().__init__(initial_learning_rate, steps_per_epoch)
        self.decay_rate = check_nonnegative_float("InverseTimeDecay", "decay_rate", decay_rate)

    def _rate(self, t):
        return self.initial_learning_rate / (1.0 + self.decay_rate * t)


_REGISTRY: dict[str, type] = {
    "step_decay": StepDecay,
    "exponential_decay": ExponentialDecay,
    "inverse_time_decay": InverseTimeDecay,
}


def _lookup(name: str) -> type:
    return lookup_class("schedules.get", "schedule", _REGISTRY, name)


def get(identifier):
    """A schedule from an instance, a config dict or a callable.

    * ``None`` -> ``None``;
    * ``{"class_name": "StepDecay", "config": {"initial_learning_rate": 0.1,
      "drop_every": 10}}`` -> ``StepDecay(0.1, drop_every=10)``;
    * a ``LearningRateSchedule`` or any callable ``step -> float`` -> itself.

    A bare name is not enough (every schedule needs ``initial_learning_rate``): a known
    name raises a ``ValueError`` saying so, an unknown one lists the valid names.
    """
    if identifier is None or isinstance(identifier, LearningRateSchedule):
        return identifier
    if isinstance(identifier, str):
        cls = _lookup(identifier)
        raise ValueError(f"schedules.get: {cls.__name__} needs arguments; got only the name "
                         f"{identifier!r}. Hint: pass {{'class_name': {cls.__name__!r}, "
                         f"'config': {{'initial_learning_rate': ..., ...}}}} or an instance.")
    if isinstance(identifier, dict):
        if "class_name" not in identifier:
            raise ValueError(f"schedules.get: a config dict needs a 'class_name' key; "
                             f"got keys {sorted(identifier)}.")
        return _lookup(identifier["class_name"]).from_config(dict(identifier.get("config", {})))
    if callable(identifier) and not isinstance(identifier, numbers.Number):
        return identifier
    raise TypeError(f"schedules.get: identifier must be None, a dict, a LearningRateSchedule "
                    f"or a callable; got {type(identifier).__name__}.")


def serialize(schedule: LearningRateSchedule) -> dict:
    """``{"class_name": ..., "config": ...}``, the inverse of :func:`get` for a dict."""
    if not isinstance(schedule, LearningRateSchedule):
        raise TypeError(f"schedules.serialize: {schedule!r} is not a LearningRateSchedule and "
                        f"cannot be serialized. Hint: subclass "
                        f"fastcnn.schedules.LearningRateSchedule and give it get_config().")
    return {"class_name": type(schedule).__name__, "config": schedule.get_config()}
