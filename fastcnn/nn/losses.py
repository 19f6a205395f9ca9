"""Loss functions: ``loss.forward(pred, y) -> float`` (mean over the batch) and
``loss.backward() -> dpred`` (d loss / d pred, shaped like ``pred``).

=====================================  =========================================
Keras name                             loss per sample (mean over the N samples)
=====================================  =========================================
``sparse_categorical_crossentropy``    ``-log p[y]``                (y: int labels)
``categorical_crossentropy``           ``-sum_k y_k log p_k``       (y: one-hot)
``binary_crossentropy``                ``-(y log p + (1-y) log(1-p))`` per output
``mean_squared_error`` (``mse``)       ``mean_k (pred_k - y_k)^2``
``categorical_hinge``                  ``max(0, 1 + max_{j!=y} s_j - s_y)`` (Keras)
``multiclass_hinge``                   ``sum_{j!=y} max(0, s_j - s_y + 1)`` (CS231n SVM)
=====================================  =========================================

With ``from_logits=True`` the cross-entropies take raw scores ``z`` and use the
stable log-softmax ``log p_k = z_k - max(z) - log sum_j exp(z_j - max(z))``: no
overflow, no ``log(0)``, and the gradient is simply ``(softmax(z) - y) / N``.
Given probabilities instead, they clip ``p`` to ``[1e-7, 1 - 1e-7]`` as Keras does.
A model ending in Softmax and compiled with a cross-entropy uses the logits form
automatically (see :class:`fastcnn.model.Sequential`).
"""

from __future__ import annotations

import numpy as np

from fastcnn.common.keywords import wrap_init_keywords

__all__ = ["Loss", "SparseCategoricalCrossentropy", "CategoricalCrossentropy",
           "BinaryCrossentropy", "MeanSquaredError", "CategoricalHinge", "MulticlassHinge",
           "get", "serialize", "log_softmax", "softmax"]

EPSILON = 1e-7   # Keras' backend epsilon, used to clip probabilities


def log_softmax(z: np.ndarray) -> np.ndarray:
    """``z - logsumexp(z)`` along axis 1, stably (shift by the row max first)."""
    shifted = z - z.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _as_labels(where: str, y, pred: np.ndarray) -> np.ndarray:
    """Integer class labels ``(N,)`` in ``[0, K)`` (accepts ``(N, 1)`` and integral floats)."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.shape != (pred.shape[0],):
        raise ValueError(f"{where}: y must be integer class labels of shape ({pred.shape[0]},) "
                         f"to match pred.shape={pred.shape}; got y.shape={y.shape}. Hint: for "
                         f"one-hot targets use CategoricalCrossentropy.")
    if not np.issubdtype(y.dtype, np.integer):
        if not (np.issubdtype(y.dtype, np.floating) and np.all(y == np.round(y))):
            raise TypeError(f"{where}: y must hold integer class labels; got dtype {y.dtype}.")
        y = y.astype(np.int64)
    if y.size and (y.min() < 0 or y.max() >= pred.shape[1]):
        raise ValueError(f"{where}: labels must lie in [0, {pred.shape[1]}) for "
                         f"{pred.shape[1]} classes; got min {y.min()}, max {y.max()}.")
    return y


def _check_pred(where: str, pred, ndim=None) -> np.ndarray:
    if not isinstance(pred, np.ndarray) or pred.dtype.kind != "f":
        raise TypeError(f"{where}: pred must be a float numpy array; got "
                        f"{getattr(pred, 'dtype', type(pred).__name__)}.")
    if ndim is not None and pred.ndim != ndim:
        raise ValueError(f"{where}: pred must have shape (N, K); got pred.shape={pred.shape}.")
    if pred.shape[0] == 0:
        raise ValueError(f"{where}: pred must hold at least one sample; got {pred.shape}.")
    return pred


def _same_shape_target(where: str, y, pred) -> np.ndarray:
    y = np.asarray(y)
    if y.shape != pred.shape:
        if y.size == pred.size and y.ndim + 1 == pred.ndim and pred.shape[-1] == 1:
            return y.reshape(pred.shape).astype(pred.dtype, copy=False)
        raise ValueError(f"{where}: y must have the shape of pred {pred.shape}; got "
                         f"y.shape={y.shape}.")
    return y.astype(pred.dtype, copy=False)


class Loss:
    """Base class. ``forward`` stores what ``backward`` needs; ``backward`` before
    ``forward`` is a RuntimeError."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        wrap_init_keywords(cls)    # unknown keywords name the closest valid one

    name = "loss"
    _grad = None

    def __call__(self, pred, y) -> float:
        return self.forward(pred, y)

    def forward(self, pred, y) -> float:
        raise NotImplementedError

    def backward(self) -> np.ndarray:
        """``d loss / d pred`` of the last :meth:`forward` call."""
        if self._grad is None:
            raise RuntimeError(f"{type(self).__name__}.backward: no forward pass to "
                               f"differentiate. Hint: call forward(pred, y) first.")
        return self._grad

    def get_config(self) -> dict:
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class _CrossentropyBase(Loss):
    def __init__(self, from_logits: bool = False):
        self.from_logits = bool(from_logits)

    def get_config(self):
        return {"from_logits": self.from_logits}

    def _targets(self, where, y, pred) -> np.ndarray:
        raise NotImplementedError

    def forward(self, pred, y):
        where = type(self).__name__
        pred = _check_pred(where, pred, ndim=2)
        n = pred.shape[0]
        if self.from_logits:
            logp = log_softmax(pred)
            target = self._targets(where, y, pred)
            # d/dz of -sum_k y_k log p_k = p * sum_k y_k - y   (= p - y for one-hot)
            grad = np.exp(logp) * target.sum(axis=1, keepdims=True) - target
            loss = -float(np.sum(target * logp)) / n
        else:
            clipped = np.clip(pred, EPSILON, 1 - EPSILON)
            target = self._targets(where, y, pred)
            loss = -float(np.sum(target * np.log(clipped))) / n
            # Derivative of the clipped function: zero where clipping is active.
            inside = (pred > EPSILON) & (pred < 1 - EPSILON)
            grad = np.where(inside, -target / clipped, 0)
        self._grad = (grad / n).astype(pred.dtype, copy=False)
        return loss


class SparseCategoricalCrossentropy(_CrossentropyBase):
    """``-mean_n log p[n, y_n]`` with integer labels ``y (N,)``; ``pred (N, K)``."""

    name = "sparse_categorical_crossentropy"

    def _targets(self, where, y, pred):
        labels = _as_labels(where, y, pred)
        onehot = np.zeros(pred.shape, dtype=pred.dtype)
        onehot[np.arange(len(labels)), labels] = 1
        return onehot


class CategoricalCrossentropy(_CrossentropyBase):
    """``-mean_n sum_k y[n, k] log p[n, k]`` with one-hot (or soft) targets ``y (N, K)``."""

    name = "categorical_crossentropy"

    def _targets(self, where, y, pred):
        return _same_shape_target(where, y, pred)


class BinaryCrossentropy(Loss):
    """``-mean (y log p + (1 - y) log(1 - p))`` over all outputs; ``y`` in [0, 1].

    From logits (stable form): ``max(z, 0) - z y + log(1 + exp(-|z|))``, gradient
    ``(sigmoid(z) - y) / size``.
    """

    name = "binary_crossentropy"

    def __init__(self, from_logits: bool = False):
        self.from_logits = bool(from_logits)

    def get_config(self):
        return {"from_logits": self.from_logits}

    def forward(self, pred, y):
        pred = _check_pred("BinaryCrossentropy", pred)
        y = _same_shape_target("BinaryCrossentropy", y, pred)
        size = pred.size
        if self.from_logits:
            per = np.maximum(pred, 0) - pred * y + np.log1p(np.exp(-np.abs(pred)))
            grad = 0.5 * (1 + np.tanh(0.5 * pred)) - y
        else:
            p = np.clip(pred, EPSILON, 1 - EPSILON)
            per = -(y * np.log(p) + (1 - y) * np.log(1 - p))
            inside = (pred > EPSILON) & (pred < 1 - EPSILON)
            grad = np.where(inside, (p - y) / (p * (1 - p)), 0)
        self._grad = (grad / size).astype(pred.dtype, copy=False)
        return float(per.sum()) / size


class MeanSquaredError(Loss):
    """``mean (pred - y)^2`` over all elements; gradient ``2 (pred - y) / size``."""

    name = "mean_squared_error"

    def forward(self, pred, y):
        pred = _check_pred("MeanSquaredError", pred)
        diff = pred - _same_shape_target("MeanSquaredError", y, pred)
        self._grad = diff * pred.dtype.type(2.0 / diff.size)
        return float(np.sum(diff * diff)) / diff.size


class MulticlassHinge(Loss):
    """Multiclass SVM loss (CS231n): ``mean_n sum_{j != y_n} max(0, s_j - s_{y_n} + margin)``.

    Gradient per sample: every class ``j`` with a positive margin gets ``+1``; the true
    class gets ``-(number of positive margins)``; divided by N. ``y``: int labels or one-hot.
    """

    name = "multiclass_hinge"

    def __init__(self, margin: float = 1.0):
        self.margin = float(margin)

    def get_config(self):
        return {"margin": self.margin}

    def forward(self, pred, y):
        pred = _check_pred("MulticlassHinge", pred, ndim=2)
        y = np.asarray(y)
        labels = (y.argmax(axis=1) if y.shape == pred.shape and pred.shape[1] > 1
                  else _as_labels("MulticlassHinge", y, pred))
        n, rows = pred.shape[0], np.arange(pred.shape[0])
        margins = pred - pred[rows, labels][:, None] + self.margin
        margins[rows, labels] = 0
        positive = (margins > 0).astype(pred.dtype)
        positive[rows, labels] = -positive.sum(axis=1)
        self._grad = positive / pred.dtype.type(n)
        return float(np.maximum(margins, 0).sum()) / n


class CategoricalHinge(Loss):
    """Keras' categorical hinge (Crammer & Singer): with one-hot ``y``,
    ``pos = sum_k y_k s_k``, ``neg = max_k (1 - y_k) s_k``, loss ``mean max(0, neg - pos + 1)``.

    Gradient: where the hinge is active, ``+1`` at the argmax of ``(1 - y) s`` and ``-y``.
    """

    name = "categorical_hinge"

    def forward(self, pred, y):
        pred = _check_pred("CategoricalHinge", pred, ndim=2)
        y = _same_shape_target("CategoricalHinge", y, pred)
        n, rows = pred.shape[0], np.arange(pred.shape[0])
        pos = (y * pred).sum(axis=1)
        other = (1 - y) * pred
        winner = other.argmax(axis=1)
        hinge = other[rows, winner] - pos + 1
        active = (hinge > 0).astype(pred.dtype)[:, None]
        grad = -y * active
        grad[rows, winner] += active[:, 0] * (1 - y[rows, winner])
        self._grad = grad / pred.dtype.type(n)
        return float(np.maximum(hinge, 0).sum()) / n


_LOSSES = {cls.name: cls for cls in (SparseCategoricalCrossentropy, CategoricalCrossentropy,
                                      BinaryCrossentropy, MeanSquaredError, CategoricalHinge,
                                      MulticlassHinge)}
_ALIASES = {"mse": "mean_squared_error", "svm": "multiclass_hinge"}
_BY_CLASS = {cls.__name__: cls for cls in _LOSSES.values()}


def get(identifier) -> Loss:
    """A :class:`Loss` from a Keras name (``"sparse_categorical_crossentropy"``, ``"mse"``,
    ...), a class name, a ``{"class_name", "config"}`` dict or an instance."""
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, dict) and "class_name" in identifier:
        return get(identifier["class_name"]).from_config(dict(identifier.get("config", {})))
    if isinstance(identifier, str):
        key = _ALIASES.get(identifier, identifier)
        cls = _LOSSES.get(key) or _BY_CLASS.get(key)
        if cls is not None:
            return cls()
    raise ValueError(f"losses.get: unknown loss {identifier!r}; expected a Loss instance or "
                     f"one of {sorted(_LOSSES) + sorted(_ALIASES)}.")


def serialize(loss: Loss) -> dict:
    return {"class_name": type(loss).__name__, "config": loss.get_config()}
