"""The :class:`Optimizer` base class: hyper-parameter checks, learning rate (a float or
a schedule), gradient clipping, lazily created per-parameter state, ``state_dict`` and the
Keras config protocol. The update rules are in :mod:`fastcnn.optim.rules`; the concrete
optimizers in :mod:`fastcnn.optim.optimizers`.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from fastcnn.common.keywords import wrap_init_keywords
from fastcnn.common.validation import check_float
from fastcnn.optim import schedules as _schedules

__all__ = ["Optimizer"]


def _check_bool(where: str, name: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{where}: {name} must be a bool; got {value!r}.")
    return bool(value)


def _check_rate(where: str, value):
    """A learning rate: a float >= 0 or a schedule (callable step -> float)."""
    if isinstance(value, dict):
        value = _schedules.get(value)
    if callable(value) and not isinstance(value, numbers.Number):
        return value
    if (not isinstance(value, numbers.Real) or isinstance(value, bool)
            or not math.isfinite(value) or value < 0):
        raise ValueError(f"{where}: learning_rate must be a float >= 0 or a schedule "
                         f"(callable step -> float); got {value!r}.")
    return float(value)


class Optimizer:
    """Base class. Subclasses define ``_slots`` (state array names), ``_n_work`` (scratch
    arrays per parameter), ``_hyper`` (hyper-parameter names, in constructor order)
    and ``_update(p, grad, state, work, lr, t)``.

    Parameters
    ----------
    learning_rate : float or schedule
    clipnorm : float > 0, optional
        Rescale each parameter's gradient so its L2 norm is at most ``clipnorm``.
    clipvalue : float > 0, optional
        Clip each gradient element to ``[-clipvalue, clipvalue]``.
    global_clipnorm : float > 0, optional
        Rescale all gradients together so their joint L2 norm is at most this.

    Attributes
    ----------
    iterations : int
        Number of steps taken.
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        wrap_init_keywords(cls)    # unknown keywords name the closest valid one

    _slots: tuple[str, ...] = ()
    _n_work = 1
    _hyper: tuple[str, ...] = ()

    def __init__(self, learning_rate, clipnorm=None, clipvalue=None, global_clipnorm=None):
        where = type(self).__name__
        self._learning_rate = _check_rate(where, learning_rate)
        clips = {"clipnorm": clipnorm, "clipvalue": clipvalue, "global_clipnorm": global_clipnorm}
        given = [k for k, v in clips.items() if v is not None]
        if len(given) > 1:
            raise ValueError(f"{where}: at most one of clipnorm, clipvalue and global_clipnorm "
                             f"may be set; got {', '.join(f'{k}={clips[k]!r}' for k in given)}.")
        for k in given:
            clips[k] = check_float(where, k, clips[k], low=0, low_inclusive=False,
                                   high_inclusive=False)
        self.clipnorm = clips["clipnorm"]
        self.clipvalue = clips["clipvalue"]
        self.global_clipnorm = clips["global_clipnorm"]
        self.iterations = 0
        self._state: dict[str, dict[str, np.ndarray]] = {}   # name -> {slot: array}
        self._work: dict[str, list[np.ndarray]] = {}          # name -> scratch arrays
        self._clip_buf: dict[str, np.ndarray] = {}           # name -> clipped gradient
        self._unchecked: set[str] = set()                     # loaded, not yet matched

    # -- learning rate
    @property
    def learning_rate(self):
        """The configured learning rate: a float or a schedule."""
        return self._learning_rate

    @learning_rate.setter
    def learning_rate(self, value):
        self.set_learning_rate(value)

    def set_learning_rate(self, lr) -> None:
        """Replace the learning rate (a float or a schedule), e.g. from ReduceLROnPlateau."""
        self._learning_rate = _check_rate(type(self).__name__, lr)

    def current_learning_rate(self) -> float:
        """The learning rate the next ``step`` will use."""
        lr = self._learning_rate
        return float(lr(self.iterations)) if callable(lr) else lr

    # -- the step
    def step(self, parameters) -> None:
        """Update every trainable parameter's ``data`` in place from its ``grad``."""
        lr = self.current_learning_rate()
        t = self.iterations + 1
        params = [p for p in parameters if p.trainable]
        scale = self._global_clip_scale(params) if self.global_clipnorm is not None else 1.0
        seen = set()
        for p in params:
            if p.name in seen:
                raise ValueError(f"{type(self).__name__}.step: two parameters are named "
                                 f"{p.name!r}; optimizer state is keyed by name, so names must "
                                 f"be unique. Hint: build the model (it names its parameters).")
            seen.add(p.name)
            state = self._state.get(p.name)
            if state is None or p.name in self._unchecked:
                state = self._prepare(p)
            grad = self._clipped(p, scale)
            self._update(p.data, grad, state, self._work[p.name], lr, t)
        self.iterations += 1

    def _prepare(self, p) -> dict:
        """Check the parameter, create its state lazily (or check loaded state)."""
        where = f"{type(self).__name__}.step"
        if not p.name:
            raise ValueError(f"{where}: a parameter has no name (shape {p.data.shape}); "
                             f"optimizer state is keyed by name. Hint: give it one.")
        if p.grad.shape != p.data.shape or p.grad.dtype != p.data.dtype:
            raise ValueError(f"{where}: parameter {p.name!r} has data {p.data.shape} "
                             f"{p.data.dtype} but grad {p.grad.shape} {p.grad.dtype}; they must "
                             f"match.")
        state = self._state.get(p.name)
        if state is None:
            state = self._state[p.name] = self._init_state(p.data)
        else:                                  # loaded by load_state_dict: check it fits
            for slot, arr in state.items():
                if arr.shape != p.data.shape or arr.dtype != p.data.dtype:
                    raise ValueError(f"{where}: loaded state {slot!r} of parameter {p.name!r} "
                                     f"has shape {arr.shape} dtype {arr.dtype}; the parameter "
                                     f"has shape {p.data.shape} dtype {p.data.dtype}.")
            self._unchecked.discard(p.name)
        self._work[p.name] = [np.empty_like(p.data) for _ in range(self._n_work)]
        return state

    def _init_state(self, w: np.ndarray) -> dict:
        return {slot: np.zeros_like(w) for slot in self._slots}

    def _global_clip_scale(self, params) -> float:
        total = math.sqrt(sum(float(np.dot(p.grad.reshape(-1), p.grad.reshape(-1)))
                              for p in params))
        return min(1.0, self.global_clipnorm / total) if total > 0 else 1.0

    def _clipped(self, p, scale: float) -> np.ndarray:
        """The gradient to use: ``p.grad`` itself, or a clipped copy in a reused buffer."""
        if self.clipnorm is not None:
            g = p.grad.reshape(-1)
            norm = math.sqrt(float(np.dot(g, g)))
            scale = min(1.0, self.clipnorm / norm) if norm > 0 else 1.0
        if scale == 1.0 and self.clipvalue is None:
            return p.grad
        buf = self._clip_buf.get(p.name)
        if buf is None or buf.shape != p.grad.shape or buf.dtype != p.grad.dtype:
            buf = self._clip_buf[p.name] = np.empty_like(p.grad)
        if self.clipvalue is not None:
            np.clip(p.grad, -self.clipvalue, self.clipvalue, out=buf)
        else:
            np.multiply(p.grad, scale, out=buf)
        return buf

    def _update(self, w, grad, state, work, lr, t):
        raise NotImplementedError(f"{type(self).__name__} must implement _update().")

    # -- state and config
    def state_dict(self) -> dict:
        """``{"iterations": int, "state": {param_name: {slot_name: ndarray}}}`` (copies)."""
        return {"iterations": self.iterations,
                "state": {name: {k: a.copy() for k, a in slots.items()}
                          for name, slots in self._state.items()}}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore ``iterations`` and the per-parameter state (copied); the arrays are
        checked against their parameters at the next ``step``."""
        where = f"{type(self).__name__}.load_state_dict"
        if not isinstance(state_dict, dict) or set(state_dict) != {"iterations", "state"}:
            got = sorted(state_dict) if isinstance(state_dict, dict) else type(state_dict).__name__
            raise ValueError(f"{where}: state_dict must be a dict with keys 'iterations' and "
                             f"'state'; got {got}.")
        iterations = state_dict["iterations"]
        if not isinstance(iterations, numbers.Integral) or isinstance(iterations, bool) \
                or iterations < 0:
            raise ValueError(f"{where}: iterations must be a non-negative int; "
                             f"got {iterations!r}.")
        new_state = {}
        for name, slots in state_dict["state"].items():
            if not isinstance(slots, dict) or set(slots) != set(self._slots):
                got = sorted(slots) if isinstance(slots, dict) else type(slots).__name__
                raise ValueError(f"{where}: state of parameter {name!r} must have slots "
                                 f"{sorted(self._slots)}; got {got}.")
            new_state[name] = {k: np.array(a, copy=True) for k, a in slots.items()}
        self.iterations = int(iterations)
        self._state = new_state
        self._work.clear()
        self._clip_buf.clear()
        self._unchecked = set(new_state)

    def get_config(self) -> dict:
        lr = self._learning_rate
        config = {"learning_rate": lr if not callable(lr) else _schedules.serialize(lr)}
        config.update({k: getattr(self, k) for k in self._hyper})
        config.update(clipnorm=self.clipnorm, clipvalue=self.clipvalue,
                      global_clipnorm=self.global_clipnorm)
        return config

    @classmethod
    def from_config(cls, config: dict):
        return cls(**config)

    def __repr__(self) -> str:
        lr = self._learning_rate
        args = [f"learning_rate={lr!r}"] + [f"{k}={getattr(self, k)!r}" for k in self._hyper]
        args += [f"{k}={getattr(self, k)!r}" for k in ("clipnorm", "clipvalue", "global_clipnorm")
                 if getattr(self, k) is not None]
        return f"{type(self).__name__}({', '.join(args)})"


# --------------------------------------------------------------------------- optimizers
