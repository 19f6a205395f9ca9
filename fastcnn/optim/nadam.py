"""``Nadam``: Adam with Nesterov momentum (Dozat 2016), Keras' and PyTorch's form.

Kept in its own module (the other optimizers live in :mod:`fastcnn.optim.optimizers`);
importing it registers ``"nadam"`` with :func:`fastcnn.optim.optimizers.get`, and
``import fastcnn`` imports it.
"""

from __future__ import annotations


import numpy as np

from fastcnn.common.validation import check_float, check_nonnegative_float
from fastcnn.optim import optimizers as _optimizers
from fastcnn.optim.base import Optimizer
from fastcnn.optim.rules import _lerp_

__all__ = ["Nadam", "nadam_update_", "momentum_schedule"]

#: Dozat's momentum warm-up: ``mu_t = beta_1 * (1 - 0.5 * 0.96 ** (MOMENTUM_DECAY * t))``
MOMENTUM_DECAY = 0.004


def momentum_schedule(beta_1: float, t: int) -> float:
    """``mu_t = beta_1 * (1 - 0.5 * 0.96 ** (0.004 t))``: the momentum of step ``t``
    (starts near ``beta_1 / 2`` and rises to ``beta_1``)."""
    return beta_1 * (1.0 - 0.5 * 0.96 ** (MOMENTUM_DECAY * t))


def nadam_update_(param, grad, m, v, step, *, lr, beta_1, beta_2, epsilon, mu_product,
                  work=None, work2=None) -> None:
    """One Nadam step at 1-based ``step``, in place. ``mu_product`` is
    ``prod_{s <= step} mu_s`` (see :class:`Nadam`)."""
    work = np.empty_like(param) if work is None else work
    work2 = np.empty_like(param) if work2 is None else work2
    mu_t = momentum_schedule(beta_1, step)
    mu_next = momentum_schedule(beta_1, step + 1)
    _lerp_(m, grad, beta_1)                           # m = b1 m + (1 - b1) g
    np.square(grad, out=work)
    _lerp_(v, work, beta_2)                           # v = b2 v + (1 - b2) g^2
    np.multiply(v, 1.0 / (1.0 - beta_2 ** step), out=work)
    np.sqrt(work, out=work)
    work += epsilon                                   # denom = sqrt(v_hat) + eps
    # Nesterov: the next step's momentum on m, plus this step's share of the gradient.
    np.multiply(m, lr * mu_next / (1.0 - mu_product * mu_next), out=work2)
    work2 += grad * (lr * (1.0 - mu_t) / (1.0 - mu_product))
    work2 /= work
    param -= work2


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


_optimizers._REGISTRY["nadam"] = Nadam
