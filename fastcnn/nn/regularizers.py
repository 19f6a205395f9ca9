"""Weight regularizers: a penalty added to the loss and its gradient (Keras semantics).

A regularizer is called on a weight array and returns both halves of its job::

    penalty, grad = L2(1e-4)(w)     # penalty: float, grad: d(penalty)/dw, shaped like w

==========  ======================================  ====================================
class       penalty                                 gradient
==========  ======================================  ====================================
``L1``      ``l1 * sum(|w|)``                       ``l1 * sign(w)`` (0 at w == 0)
``L2``      ``l2 * sum(w**2)``                      ``2 * l2 * w``
``L1L2``    ``l1 * sum(|w|) + l2 * sum(w**2)``      the sum of both
==========  ======================================  ====================================

Note the Keras convention: *no* factor 1/2 in the L2 penalty, so the gradient is
``2 * l2 * w``. CS231n writes ``0.5 * reg * sum(W**2)`` (gradient ``reg * W``):
that is ``L2(l2=0.5 * reg)``. PyTorch's ``weight_decay=wd`` (coupled) equals
``L2(l2=wd / 2)``.

A layer stores its regularizer on the ``Parameter`` (``Parameter.regularizer``); the
training loop adds ``penalty`` to the reported loss and ``grad`` to ``p.grad``.
:meth:`Regularizer.apply_` does the latter in place.
"""

from __future__ import annotations

import numpy as np

from fastcnn.common.configurable import Configurable, lookup_class
from fastcnn.common.validation import check_nonnegative_float

__all__ = ["Regularizer", "L1", "L2", "L1L2", "l1", "l2", "l1_l2", "get", "serialize"]


def _sum_abs(w: np.ndarray) -> float:
    """``sum(|w|)`` accumulated in float64."""
    return float(np.sum(np.abs(w), dtype=np.float64))


def _sum_sq(w: np.ndarray) -> float:
    """``sum(w**2)`` as a dot product (no temporary), in float64 for float64 input."""
    flat = w.reshape(-1)
    return float(np.dot(flat, flat))


class Regularizer(Configurable):
    """Base class: ``reg(w) -> (penalty, grad)``; ``get_config()``; ``from_config()``."""


    def __call__(self, w: np.ndarray) -> tuple[float, np.ndarray]:
        grad = np.zeros_like(w)
        return self._accumulate(w, grad), grad

    def apply_(self, param) -> float:
        """Add the gradient to ``param.grad`` in place; return the penalty."""
        return self._accumulate(param.data, param.grad)

    def _accumulate(self, w: np.ndarray, grad: np.ndarray) -> float:
        """Add d(penalty)/dw to ``grad`` in place and return the penalty."""
        raise NotImplementedError(f"{type(self).__name__} must implement _accumulate().")



def _add_l1(w, grad, l1: float) -> float:
    # grad += l1 * sign(w), staged through np.sign's output to avoid a second temporary.
    s = np.sign(w)
    s *= l1
    grad += s
    return l1 * _sum_abs(w)


def _add_l2(w, grad, l2: float) -> float:
    # grad += 2*l2*w. NOTE: a Python float scalar keeps float32 arrays float32 (NEP 50).
    grad += (2.0 * l2) * w
    return l2 * _sum_sq(w)


class L1(Regularizer):
    """``penalty = l1 * sum(|w|)``, ``grad = l1 * sign(w)``. Drives weights to exactly 0
    (sparse weights). The gradient at ``w == 0`` is taken as 0 (a subgradient)."""

    _config_keys = ("l1",)

    def __init__(self, l1: float = 0.01):
        self.l1 = check_nonnegative_float("L1", "l1", l1)

    def _accumulate(self, w, grad):
        return _add_l1(w, grad, self.l1)


class L2(Regularizer):
    """``penalty = l2 * sum(w**2)``, ``grad = 2 * l2 * w`` (Keras; no factor 1/2)."""

    _config_keys = ("l2",)

    def __init__(self, l2: float = 0.01):
        self.l2 = check_nonnegative_float("L2", "l2", l2)

    def _accumulate(self, w, grad):
        return _add_l2(w, grad, self.l2)


class L1L2(Regularizer):
    """``penalty = l1 * sum(|w|) + l2 * sum(w**2)`` (elastic net); Keras defaults 0, 0."""

    _config_keys = ("l1", "l2")

    def __init__(self, l1: float = 0.0, l2: float = 0.0):
        self.l1 = check_nonnegative_float("L1L2", "l1", l1)
        self.l2 = check_nonnegative_float("L1L2", "l2", l2)

    def _accumulate(self, w, grad):
        penalty = 0.0
        if self.l1:
            penalty += _add_l1(w, grad, self.l1)
        if self.l2:
            penalty += _add_l2(w, grad, self.l2)
        return penalty


# Keras aliases: regularizers.l2(1e-4) is L2(1e-4).
l1, l2, l1_l2 = L1, L2, L1L2

_REGISTRY: dict[str, type] = {"l1": L1, "l2": L2, "l1_l2": L1L2, "l1l2": L1L2}


def _lookup(name: str) -> type:
    return lookup_class("regularizers.get", "regularizer", _REGISTRY, name,
                        case_insensitive=True, shown="l1, l2, l1_l2")


def get(identifier):
    """A regularizer from ``None``, a name, an instance, a config dict or a callable.

    * ``None`` -> ``None`` (no regularization);
    * ``"l2"`` / ``"L2"`` -> ``L2()`` with Keras' default factor 0.01;
    * ``{"class_name": "L2", "config": {"l2": 1e-4}}`` -> ``L2(l2=1e-4)``;
    * a ``Regularizer`` or any callable ``f(w) -> (penalty, grad)`` -> itself.
    """
    if identifier is None or isinstance(identifier, Regularizer):
        return identifier
    if isinstance(identifier, str):
        return _lookup(identifier)()
    if isinstance(identifier, dict):
        if "class_name" not in identifier:
            raise ValueError(f"regularizers.get: a config dict needs a 'class_name' key; "
                             f"got keys {sorted(identifier)}.")
        return _lookup(identifier["class_name"]).from_config(dict(identifier.get("config", {})))
    if callable(identifier):
        return identifier
    raise TypeError(f"regularizers.get: identifier must be None, a str, a dict, a "
                    f"Regularizer or a callable; got {type(identifier).__name__}.")


def serialize(regularizer: Regularizer) -> dict:
    """``{"class_name": ..., "config": ...}``, the inverse of :func:`get` for a dict."""
    return {"class_name": type(regularizer).__name__, "config": regularizer.get_config()}
