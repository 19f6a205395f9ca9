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

import numpy as np

from fastcnn.common.configurable import lookup_class
from fastcnn.common.validation import check_float, check_nonnegative_float
from fastcnn.optim.base import Optimizer, _check_bool
from fastcnn.optim.rules import (
    adadelta_update_,
    adagrad_update_,
    adam_update_,
    momentum_schedule,
    nadam_update_,
    rmsprop_update_,
    sgd_update_,
)

#: Smallest epsilon a division-guarding optimizer accepts: float32's smallest normal
#: number. Below it the Python float rounds to 0 (or a subnormal) once it meets a
#: float32 array, and the guarded division ``g / (sqrt(v) + epsilon)`` is ``0 / 0 = NaN``
#: on the first zero gradient (a frozen feature, a dead ReLU) -- the weights go NaN.
MIN_EPSILON = float(np.finfo(np.float32).tiny)


def _epsilon(where: str, value, why: str) -> float:
    """An epsilon that keeps a denominator away from 0: a finite float >= MIN_EPSILON."""
    try:
        return check_float(where, "epsilon", value, low=MIN_EPSILON)
    except ValueError:
        raise ValueError(f"{where}: epsilon must be a finite float >= {MIN_EPSILON:.4g} "
                         f"(float32's smallest normal number), because {why}; got {value!r}."
                         ) from None

__all__ = [
    "Optimizer", "SGD", "Adagrad", "RMSprop", "Adam", "AdamW", "Adadelta", "Nadam", "get",
    "serialize", "sgd_update_", "adagrad_update_", "rmsprop_update_", "adam_update_",
    "adadelta_update_", "nadam_update_",
]


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
        self.weight_decay = check_nonnegative_float("SGD", "weight_decay", weight_decay)
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
    epsilon : float >= 0, default 1e-7 (0 only with initial_accumulator_value > 0)
    """

    _slots = ("accumulator",)
    _hyper = ("initial_accumulator_value", "epsilon")

    def __init__(self, learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7,
                 **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.initial_accumulator_value = check_nonnegative_float(
            "Adagrad", "initial_accumulator_value", initial_accumulator_value)
        self.epsilon = check_nonnegative_float("Adagrad", "epsilon", epsilon)
        if self.epsilon < MIN_EPSILON and self.initial_accumulator_value < MIN_EPSILON:
            # G = initial_accumulator_value + sum g^2 is 0 while the gradients are 0
            raise ValueError(
                f"Adagrad: epsilon and initial_accumulator_value cannot both be (nearly) 0: "
                f"g / sqrt(G + epsilon) is 0 / 0 on a zero gradient; got epsilon={epsilon!r}, "
                f"initial_accumulator_value={initial_accumulator_value!r}.")

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
    epsilon : float >= MIN_EPSILON (about 1.2e-38), default 1e-7
    centered : bool, default False
    """

    _hyper = ("rho", "momentum", "epsilon", "centered")

    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7,
                 centered=False, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.rho = check_float("RMSprop", "rho", rho, low=0, high=1, high_inclusive=False)
        self.momentum = check_float("RMSprop", "momentum", momentum, low=0, high=1)
        self.epsilon = _epsilon("RMSprop", epsilon,
                                "g / sqrt(v + epsilon) with v starting at 0 is 0 / 0 on a "
                                "zero gradient")
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
    epsilon : float >= MIN_EPSILON (about 1.2e-38), default 1e-7 (Keras; PyTorch uses 1e-8 in its convention)
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
        self.epsilon = _epsilon(where, epsilon, "m / (sqrt(v) + epsilon) is 0 / 0 on a "
                                                "zero gradient")
        self.weight_decay = check_nonnegative_float(where, "weight_decay", weight_decay)
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
    epsilon : float >= MIN_EPSILON (about 1.2e-38), default 1e-7 (Keras; PyTorch 1e-6)
    """

    _slots = ("accumulated_grad", "accumulated_delta")
    _n_work = 2
    _hyper = ("rho", "epsilon")

    def __init__(self, learning_rate=1.0, rho=0.95, epsilon=1e-7, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.rho = check_float("Adadelta", "rho", rho, low=0, high=1, high_inclusive=False)
        self.epsilon = _epsilon("Adadelta", epsilon,
                                "sqrt(E[dx^2] + epsilon) / sqrt(E[g^2] + epsilon) is 0 / 0 "
                                "on a zero gradient (and the steps stay 0 forever)")

    def _update(self, w, grad, state, work, lr, t):
        adadelta_update_(w, grad, state["accumulated_grad"], state["accumulated_delta"],
                         lr=lr, rho=self.rho, epsilon=self.epsilon, work=work[0], work2=work[1])


class Nadam(Optimizer):
    r"""Nadam: Adam whose momentum looks one step ahead (Nesterov), with Dozat's
    momentum schedule ``mu_t`` (:func:`momentum_schedule`). With ``t`` the 1-based step
    and ``P_t = mu_1 mu_2 ... mu_t``::

        m <- beta_1 m + (1 - beta_1) g            v <- beta_2 v + (1 - beta_2) g^2
        m_hat = mu_{t+1} m / (1 - P_{t+1}) + (1 - mu_t) g / (1 - P_t)
        w <- w - lr * m_hat / (sqrt(v / (1 - beta_2^t)) + epsilon)

    as ``keras.optimizers.Nadam`` and ``torch.optim.NAdam`` (``momentum_decay=0.004``)
    compute it; epsilon is added to the bias-corrected ``sqrt(v_hat)`` in both.

    Parameters
    ----------
    learning_rate : float >= 0 or schedule, default 0.001
    beta_1, beta_2 : float in [0, 1), default 0.9 and 0.999
    epsilon : float > 0, default 1e-7 (Keras; PyTorch 1e-8)
    """

    _slots = ("m", "v")
    _n_work = 2
    _hyper = ("beta_1", "beta_2", "epsilon")

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, **kwargs):
        super().__init__(learning_rate, **kwargs)
        where = "Nadam"
        self.beta_1 = check_float(where, "beta_1", beta_1, low=0, high=1, high_inclusive=False)
        self.beta_2 = check_float(where, "beta_2", beta_2, low=0, high=1, high_inclusive=False)
        self.epsilon = check_nonnegative_float(where, "epsilon", epsilon)
        if self.epsilon == 0:
            raise ValueError("Nadam: epsilon must be > 0 (it keeps the first step's "
                             "division finite on zero gradients); got 0.")
        self._products = [1.0]                  # P_0, P_1, ... extended as steps go

    def _mu_product(self, t: int) -> float:
        while len(self._products) <= t:
            s = len(self._products)
            self._products.append(self._products[-1] * momentum_schedule(self.beta_1, s))
        return self._products[t]

    def _update(self, w, grad, state, work, lr, t):
        nadam_update_(w, grad, state["m"], state["v"], t, lr=lr, beta_1=self.beta_1,
                      beta_2=self.beta_2, epsilon=self.epsilon, mu_product=self._mu_product(t),
                      work=work[0], work2=work[1])


# --------------------------------------------------------------------------- registry

_REGISTRY: dict[str, type] = {
    "sgd": SGD, "adagrad": Adagrad, "rmsprop": RMSprop, "adam": Adam, "adamw": AdamW,
    "adadelta": Adadelta, "nadam": Nadam,
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
