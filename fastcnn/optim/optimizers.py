"""Optimizers: Keras constructors and defaults, PyTorch's class -> function split.

Each update rule is a module-level function that changes its arrays **in place**
(``sgd_update_``, ``adam_update_``, ...), written with ``out=`` and in-place NumPy
operators so that a training step allocates nothing: every temporary lives in one
(Adadelta: two) scratch array(s) per parameter, made once and reused. The classes
only validate hyper-parameters, hold per-parameter state and call those functions::

    opt = Adam(learning_rate=1e-3)
    opt.step(model.parameters())        # p.data -= update(p.grad), for p.trainable only

Conventions shared by every optimizer:

* State is created lazily on the first ``step`` and keyed by ``Parameter.name``
  (unique within a model), so ``state_dict()`` finds its parameters again after a
  model is rebuilt and loaded. Frozen parameters (``trainable=False``) are skipped.
* ``learning_rate`` is a float or a schedule (a callable ``step -> lr``, see
  :mod:`fastcnn.schedules`) called with ``iterations``, the number of steps taken
  before the current one (so the first step uses ``schedule(0)``).
* ``weight_decay`` in ``SGD`` and ``Adam`` is PyTorch's *coupled* L2 decay
  (``g <- g + weight_decay * w`` before the update); ``AdamW`` decays *decoupled*
  (``w <- w - lr * weight_decay * w``, Loshchilov & Hutter). NOTE: Keras 3's
  ``weight_decay=`` argument is decoupled on every optimizer; use ``AdamW`` for that.
* ``clipnorm`` / ``clipvalue`` / ``global_clipnorm`` (Keras; at most one) clip a
  copy of the gradient before the update; ``p.grad`` itself is never modified.
* float32 parameters stay float32: hyper-parameters enter as Python floats, which
  NumPy 2 treats as "weak" scalars that never up-cast an array (NEP 50).

The epsilon conventions differ between Keras, PyTorch and the papers; each class
says which one it follows, and ``tests/optim/test_torch_optim_parity.py`` shows the
conversion to ``torch.optim``.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from fastcnn.optim import schedules as _schedules
from fastcnn.common.configurable import lookup_class
from fastcnn.common.validation import check_float

__all__ = [
    "Optimizer", "SGD", "Adagrad", "RMSprop", "Adam", "AdamW", "Adadelta", "get", "serialize",
    "sgd_update_", "adagrad_update_", "rmsprop_update_", "adam_update_", "adadelta_update_",
]


def _nonnegative(where: str, name: str, value) -> float:
    """A finite float >= 0 ("... must lie in [0, inf); got ...")."""
    return check_float(where, name, value, low=0, high_inclusive=False)


def _scratch(param: np.ndarray, work):
    return np.empty_like(param) if work is None else work


def _lerp_(acc: np.ndarray, x: np.ndarray, rho: float) -> None:
    """``acc = rho * acc + (1 - rho) * x`` in place, with no temporary:
    ``acc = rho * (acc - x) + x``."""
    acc -= x
    acc *= rho
    acc += x


# --------------------------------------------------------------------------- update rules

def sgd_update_(param, grad, velocity=None, *, lr, momentum=0.0, nesterov=False,
                weight_decay=0.0, work=None) -> None:
    """One SGD step, in place (Keras' form of momentum). See :class:`SGD`."""
    work = _scratch(param, work)
    g = grad
    if weight_decay:
        np.multiply(param, weight_decay, out=work)   # g = grad + wd * param
        work += grad
        g = work
    np.multiply(g, lr, out=work)                      # work = lr * g
    if velocity is None or momentum == 0.0:
        param -= work
        return
    velocity *= momentum
    velocity -= work                                  # v = momentum * v - lr * g
    if nesterov:
        param -= work                                 # w += momentum * v - lr * g
        np.multiply(velocity, momentum, out=work)
        param += work
    else:
        param += velocity                             # w += v


def adagrad_update_(param, grad, accumulator, *, lr, epsilon, work=None) -> None:
    """One Adagrad step, in place. See :class:`Adagrad`."""
    work = _scratch(param, work)
    np.square(grad, out=work)
    accumulator += work                               # G += g^2
    np.add(accumulator, epsilon, out=work)
    np.sqrt(work, out=work)
    np.divide(grad, work, out=work)                   # g / sqrt(G + eps)
    work *= lr
    param -= work


def rmsprop_update_(param, grad, velocity, momentum_buffer=None, average_grad=None, *, lr,
                    rho, momentum=0.0, epsilon, work=None) -> None:
    """One RMSprop step, in place (``average_grad`` given: centered). See :class:`RMSprop`."""
    work = _scratch(param, work)
    np.square(grad, out=work)
    _lerp_(velocity, work, rho)                       # v = rho v + (1 - rho) g^2
    if average_grad is not None:
        _lerp_(average_grad, grad, rho)               # mg = rho mg + (1 - rho) g
        np.square(average_grad, out=work)
        np.subtract(velocity, work, out=work)         # v - mg^2: a variance estimate
        work += epsilon
    else:
        np.add(velocity, epsilon, out=work)
    np.sqrt(work, out=work)
    np.divide(grad, work, out=work)
    work *= lr                                        # increment = lr g / sqrt(v + eps)
    if momentum_buffer is not None and momentum:
        momentum_buffer *= momentum
        momentum_buffer += work                       # b = momentum b + increment
        param -= momentum_buffer
    else:
        param -= work


def adam_update_(param, grad, m, v, step, *, lr, beta_1, beta_2, epsilon, weight_decay=0.0,
                 decoupled_weight_decay=False, v_max=None, work=None) -> None:
    """One Adam/AdamW step at 1-based ``step``, in place (``v_max`` given: AMSGrad).
    See :class:`Adam`."""
    work = _scratch(param, work)
    g = grad
    if weight_decay:
        if decoupled_weight_decay:
            param *= 1.0 - lr * weight_decay          # AdamW: w -= lr * wd * w, first
        else:
            np.multiply(param, weight_decay, out=work)  # Adam: g = grad + wd * w
            work += grad
            g = work
    _lerp_(m, g, beta_1)                              # m = b1 m + (1 - b1) g
    np.square(g, out=work)                            # (g is no longer needed)
    _lerp_(v, work, beta_2)                           # v = b2 v + (1 - b2) g^2
    if v_max is not None:
        np.maximum(v_max, v, out=v_max)               # AMSGrad: the running max of v
        v = v_max
    # Bias correction folded into the step size (Kingma & Ba, end of section 2).
    alpha = lr * math.sqrt(1.0 - beta_2 ** step) / (1.0 - beta_1 ** step)
    np.sqrt(v, out=work)
    work += epsilon
    np.divide(m, work, out=work)
    work *= alpha
    param -= work                                     # w -= alpha m / (sqrt(v) + eps)


def adadelta_update_(param, grad, accumulated_grad, accumulated_delta, *, lr, rho, epsilon,
                     work=None, work2=None) -> None:
    """One Adadelta step, in place. See :class:`Adadelta`."""
    work = _scratch(param, work)
    work2 = _scratch(param, work2)
    np.square(grad, out=work)
    _lerp_(accumulated_grad, work, rho)               # E[g^2] = rho E[g^2] + (1 - rho) g^2
    np.add(accumulated_delta, epsilon, out=work)
    np.sqrt(work, out=work)                           # RMS[dx]_{t-1}
    np.add(accumulated_grad, epsilon, out=work2)
    np.sqrt(work2, out=work2)                         # RMS[g]_t
    np.divide(work, work2, out=work)
    work *= grad                                      # dx = RMS[dx]_{t-1} / RMS[g]_t * g
    np.square(work, out=work2)
    _lerp_(accumulated_delta, work2, rho)             # E[dx^2] = rho E[dx^2] + (1 - rho) dx^2
    work *= lr
    param -= work


# --------------------------------------------------------------------------- base class

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

class SGD(Optimizer):
    r"""Stochastic gradient descent, with optional (Nesterov) momentum.

    With ``g = grad + weight_decay * w`` (coupled decay, as PyTorch)::

        momentum == 0:   w <- w - lr * g
        momentum > 0:    v <- momentum * v - lr * g                 (v starts at 0)
                         w <- w + v                                  (classical)
                         w <- w + momentum * v - lr * g              (nesterov=True)

    This is Keras' form (CS231n's too): the velocity ``v`` includes the learning rate.
    PyTorch keeps ``b <- momentum * b + g`` and steps ``w <- w - lr * b``
    (nesterov: ``w <- w - lr * (g + momentum * b)``); the two agree exactly while
    ``lr`` is constant (``v = -lr * b``) and differ slightly when it changes.
    No epsilon.

    Parameters
    ----------
    learning_rate : float >= 0 or schedule, default 0.01 (Keras)
    momentum : float in [0, 1], default 0
    nesterov : bool, default False (True requires momentum > 0)
    weight_decay : float >= 0, default 0 (coupled L2, see above)
    """

    _hyper = ("momentum", "nesterov", "weight_decay")

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, weight_decay=0.0,
                 **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.momentum = check_float("SGD", "momentum", momentum, low=0, high=1)
        self.nesterov = _check_bool("SGD", "nesterov", nesterov)
        if self.nesterov and self.momentum == 0.0:
            raise ValueError(f"SGD: nesterov=True requires momentum > 0; "
                             f"got momentum={momentum!r}.")
        self.weight_decay = _nonnegative("SGD", "weight_decay", weight_decay)
        # momentum == 0 needs no state at all
        self._slots = ("momentum",) if self.momentum > 0 else ()

    def _update(self, w, grad, state, work, lr, t):
        sgd_update_(w, grad, state.get("momentum"), lr=lr, momentum=self.momentum,
                    nesterov=self.nesterov, weight_decay=self.weight_decay, work=work[0])


class Adagrad(Optimizer):
    r"""Adagrad (Duchi et al. 2011): per-element rates shrinking with the summed squares::

        G <- G + g^2                          (G starts at initial_accumulator_value)
        w <- w - lr * g / sqrt(G + epsilon)

    Epsilon convention: Keras' — *inside* the square root. PyTorch (and CS231n) put it
    outside, ``g / (sqrt(G) + eps)``, and start ``G`` at 0 by default; the two agree
    when both epsilons are negligible against ``G`` (``initial_accumulator_value > 0``).

    Parameters
    ----------
    learning_rate : float >= 0 or schedule, default 0.001 (Keras)
    initial_accumulator_value : float >= 0, default 0.1 (Keras)
    epsilon : float >= 0, default 1e-7
    """

    _slots = ("accumulator",)
    _hyper = ("initial_accumulator_value", "epsilon")

    def __init__(self, learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7,
                 **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.initial_accumulator_value = _nonnegative(
            "Adagrad", "initial_accumulator_value", initial_accumulator_value)
        self.epsilon = _nonnegative("Adagrad", "epsilon", epsilon)

    def _init_state(self, w):
        return {"accumulator": np.full_like(w, self.initial_accumulator_value)}

    def _update(self, w, grad, state, work, lr, t):
        adagrad_update_(w, grad, state["accumulator"], lr=lr, epsilon=self.epsilon,
                        work=work[0])


class RMSprop(Optimizer):
    r"""RMSprop (Hinton, Coursera lecture 6e): divide by a running RMS of the gradient::

        v <- rho * v + (1 - rho) * g^2                       (v starts at 0)
        centered:  mg <- rho * mg + (1 - rho) * g;  d = v - mg^2     else d = v
        u <- lr * g / sqrt(d + epsilon)
        momentum > 0:  b <- momentum * b + u;  w <- w - b            else w <- w - u

    Epsilon convention: Keras' — *inside* the square root. PyTorch puts it outside,
    ``g / (sqrt(d) + eps)``; and PyTorch's momentum buffer excludes ``lr`` (identical
    while ``lr`` is constant).

    Parameters
    ----------
    learning_rate : float >= 0 or schedule, default 0.001 (Keras)
    rho : float in [0, 1), default 0.9 (PyTorch calls it ``alpha``, default 0.99)
    momentum : float in [0, 1], default 0
    epsilon : float >= 0, default 1e-7
    centered : bool, default False
    """

    _hyper = ("rho", "momentum", "epsilon", "centered")

    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7,
                 centered=False, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.rho = check_float("RMSprop", "rho", rho, low=0, high=1, high_inclusive=False)
        self.momentum = check_float("RMSprop", "momentum", momentum, low=0, high=1)
        self.epsilon = _nonnegative("RMSprop", "epsilon", epsilon)
        self.centered = _check_bool("RMSprop", "centered", centered)
        self._slots = (("velocity",) + (("momentum",) if self.momentum > 0 else ())
                       + (("average_gradient",) if self.centered else ()))

    def _update(self, w, grad, state, work, lr, t):
        rmsprop_update_(w, grad, state["velocity"], state.get("momentum"),
                        state.get("average_gradient"), lr=lr, rho=self.rho,
                        momentum=self.momentum, epsilon=self.epsilon, work=work[0])


class Adam(Optimizer):
    r"""Adam (Kingma & Ba 2015): momentum on ``g`` and RMS scaling, both bias-corrected.

    With ``g = grad + weight_decay * w`` (coupled L2 decay, as ``torch.optim.Adam``) and
    ``t`` the 1-based step::

        m <- beta_1 * m + (1 - beta_1) * g                 (m, v start at 0)
        v <- beta_2 * v + (1 - beta_2) * g^2
        amsgrad:  v_max <- max(v_max, v);  use v_max for v below
        alpha_t = lr * sqrt(1 - beta_2^t) / (1 - beta_1^t)
        w <- w - alpha_t * m / (sqrt(v) + epsilon)

    Epsilon convention: Keras' (and TensorFlow's), the paper's "epsilon hat" (end of
    its section 2): epsilon is added to ``sqrt(v)``, *not* to the bias-corrected
    ``sqrt(v_hat)`` as in the paper's Algorithm 1 and in PyTorch. Keras' epsilon
    equals PyTorch's ``eps_t = epsilon / sqrt(1 - beta_2^t)``; the difference only
    matters while ``sqrt(v)`` is as small as epsilon.

    Parameters
    ----------
    learning_rate : float >= 0 or schedule, default 0.001
    beta_1, beta_2 : float in [0, 1), default 0.9 and 0.999
    epsilon : float >= 0, default 1e-7 (Keras; PyTorch uses 1e-8 in its convention)
    weight_decay : float >= 0, default 0 (coupled; for decoupled decay use AdamW)
    amsgrad : bool, default False (Reddi et al. 2018)
    """

    _hyper = ("beta_1", "beta_2", "epsilon", "weight_decay", "amsgrad")
    _decoupled = False

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 weight_decay=0.0, amsgrad=False, **kwargs):
        super().__init__(learning_rate, **kwargs)
        where = type(self).__name__
        self.beta_1 = check_float(where, "beta_1", beta_1, low=0, high=1,
                                  high_inclusive=False)
        self.beta_2 = check_float(where, "beta_2", beta_2, low=0, high=1,
                                  high_inclusive=False)
        self.epsilon = _nonnegative(where, "epsilon", epsilon)
        self.weight_decay = _nonnegative(where, "weight_decay", weight_decay)
        self.amsgrad = _check_bool(where, "amsgrad", amsgrad)
        self._slots = ("m", "v") + (("v_max",) if self.amsgrad else ())

    def _update(self, w, grad, state, work, lr, t):
        adam_update_(w, grad, state["m"], state["v"], t, lr=lr, beta_1=self.beta_1,
                     beta_2=self.beta_2, epsilon=self.epsilon, weight_decay=self.weight_decay,
                     decoupled_weight_decay=self._decoupled, v_max=state.get("v_max"),
                     work=work[0])


class AdamW(Adam):
    r"""Adam with decoupled weight decay (Loshchilov & Hutter 2019).

    Before the Adam update of :class:`Adam` (with ``g = grad``, no L2 term)::

        w <- w - lr * weight_decay * w

    as Keras' ``AdamW`` and ``torch.optim.AdamW`` do (the decay is scaled by ``lr``,
    so it follows a schedule). Same epsilon convention as :class:`Adam` (Keras').

    Parameters
    ----------
    learning_rate : float >= 0 or schedule, default 0.001
    weight_decay : float >= 0, default 0.004 (Keras; PyTorch uses 0.01)
    beta_1, beta_2, epsilon, amsgrad : as :class:`Adam`
    """

    _decoupled = True

    def __init__(self, learning_rate=0.001, weight_decay=0.004, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-7, amsgrad=False, **kwargs):
        super().__init__(learning_rate, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon,
                         weight_decay=weight_decay, amsgrad=amsgrad, **kwargs)


class Adadelta(Optimizer):
    r"""Adadelta (Zeiler 2012): Adagrad without a global rate to tune::

        E[g^2]  <- rho * E[g^2] + (1 - rho) * g^2                    (both start at 0)
        dx      =  sqrt(E[dx^2] + epsilon) / sqrt(E[g^2] + epsilon) * g
        E[dx^2] <- rho * E[dx^2] + (1 - rho) * dx^2
        w       <- w - lr * dx

    Epsilon convention: the paper's, Keras' and PyTorch's alike — inside both roots.

    Parameters
    ----------
    learning_rate : float >= 0 or schedule, default 1.0 (the paper's and PyTorch's
        value; NOTE: Keras' default is 0.001)
    rho : float in [0, 1), default 0.95
    epsilon : float >= 0, default 1e-7 (Keras; PyTorch 1e-6)
    """

    _slots = ("accumulated_grad", "accumulated_delta")
    _n_work = 2
    _hyper = ("rho", "epsilon")

    def __init__(self, learning_rate=1.0, rho=0.95, epsilon=1e-7, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.rho = check_float("Adadelta", "rho", rho, low=0, high=1, high_inclusive=False)
        self.epsilon = _nonnegative("Adadelta", "epsilon", epsilon)

    def _update(self, w, grad, state, work, lr, t):
        adadelta_update_(w, grad, state["accumulated_grad"], state["accumulated_delta"],
                         lr=lr, rho=self.rho, epsilon=self.epsilon, work=work[0], work2=work[1])


# --------------------------------------------------------------------------- registry

_REGISTRY: dict[str, type] = {
    "sgd": SGD, "adagrad": Adagrad, "rmsprop": RMSprop, "adam": Adam, "adamw": AdamW,
    "adadelta": Adadelta,
}


def _lookup(name: str) -> type:
    return lookup_class("optimizers.get", "optimizer", _REGISTRY, name, case_insensitive=True)


def get(identifier) -> Optimizer:
    """An optimizer from a name (``"adam"``, case-insensitive; Keras defaults), an
    instance (returned as is) or a config dict ``{"class_name": "Adam", "config": {...}}``.
    Unknown names raise ``ValueError`` listing the valid ones."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, str):
        return _lookup(identifier)()
    if isinstance(identifier, dict):
        if "class_name" not in identifier:
            raise ValueError(f"optimizers.get: a config dict needs a 'class_name' key; "
                             f"got keys {sorted(identifier)}.")
        return _lookup(identifier["class_name"]).from_config(dict(identifier.get("config", {})))
    raise TypeError(f"optimizers.get: identifier must be a str, a dict or an Optimizer; "
                    f"got {type(identifier).__name__}.")


def serialize(optimizer: Optimizer) -> dict:
    """``{"class_name": ..., "config": ...}``, the inverse of :func:`get` for a dict."""
    return {"class_name": type(optimizer).__name__, "config": optimizer.get_config()}
