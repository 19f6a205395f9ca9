"""The update rules, as functions that change their arrays **in place**.

``sgd_update_``, ``adagrad_update_``, ``rmsprop_update_``, ``adam_update_``,
``adadelta_update_``, ``nadam_update_``: PyTorch's class -> function split. Each is written with ``out=``
and in-place NumPy operators so that a training step allocates nothing: every temporary
lives in one (Adadelta: two) scratch array(s) per parameter, made once by the optimizer
class and passed in as ``work``. The classes in :mod:`fastcnn.optim.optimizers` only
validate hyper-parameters, hold per-parameter state and call these.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["sgd_update_", "adagrad_update_", "rmsprop_update_", "adam_update_",
           "adadelta_update_", "nadam_update_", "momentum_schedule"]


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
    work = _scratch(param, work)
    work2 = _scratch(param, work2)
    mu_t = momentum_schedule(beta_1, step)
    mu_next = momentum_schedule(beta_1, step + 1)
    _lerp_(m, grad, beta_1)                           # m = b1 m + (1 - b1) g
    np.square(grad, out=work)
    _lerp_(v, work, beta_2)                           # v = b2 v + (1 - b2) g^2
    # Nesterov: the next step's momentum on m, plus this step's share of the gradient.
    np.multiply(grad, lr * (1.0 - mu_t) / (1.0 - mu_product), out=work)
    np.multiply(m, lr * mu_next / (1.0 - mu_product * mu_next), out=work2)
    work2 += work                                     # lr * m_hat
    np.multiply(v, 1.0 / (1.0 - beta_2 ** step), out=work)
    np.sqrt(work, out=work)
    work += epsilon                                   # sqrt(v_hat) + eps
    work2 /= work
    param -= work2
