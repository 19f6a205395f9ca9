"""Metrics computed on a batch: ``metric(pred, y) -> float`` (a mean over samples).

``accuracy`` picks its meaning from the shapes, as Keras' ``"accuracy"`` string does:

* ``y`` integer labels ``(N,)`` and ``pred (N, K)``, K > 1: ``mean(argmax(pred) == y)``;
* ``y`` one-hot ``(N, K)`` like ``pred``: ``mean(argmax(pred) == argmax(y))``;
* one output per sample (``pred (N,)`` or ``(N, 1)``): ``mean((pred > 0.5) == y)``.

Argmax is the same on logits and on probabilities, so accuracy does not care
whether the model's softmax was fused into the loss.
"""

from __future__ import annotations

import numpy as np

__all__ = ["accuracy", "sparse_categorical_accuracy", "categorical_accuracy",
           "binary_accuracy", "get"]


def _fraction_true(hits: np.ndarray) -> float:
    """``np.mean(hits)`` of a bool array, as a float: the count of True over the size
    (the same number: NumPy's mean sums the bools exactly in double, then divides; a
    count is cheaper than a floating-point sum). An empty array keeps NumPy's NaN."""
    if hits.size == 0:
        return float(np.mean(hits))
    return float(np.count_nonzero(hits) / hits.size)


def sparse_categorical_accuracy(pred: np.ndarray, y) -> float:
    """``mean(argmax(pred, axis=1) == y)`` for integer labels ``y (N,)``."""
    y = np.asarray(y).reshape(-1)
    return _fraction_true(pred.argmax(axis=1) == y)


def categorical_accuracy(pred: np.ndarray, y) -> float:
    """``mean(argmax(pred) == argmax(y))`` for one-hot ``y (N, K)``."""
    return _fraction_true(pred.argmax(axis=1) == np.asarray(y).argmax(axis=1))


def binary_accuracy(pred: np.ndarray, y, threshold: float = 0.5) -> float:
    """``mean((pred > threshold) == y)`` over all outputs."""
    y = np.asarray(y).reshape(pred.shape)
    return _fraction_true((pred > threshold) == (y > 0.5))


def accuracy(pred: np.ndarray, y) -> float:
    """Sparse, one-hot or binary accuracy, chosen from the shapes (see module doc)."""
    y = np.asarray(y)
    if pred.ndim == 1 or pred.shape[1] == 1:
        return binary_accuracy(pred, y)
    if y.shape == pred.shape:
        return categorical_accuracy(pred, y)
    if y.shape not in ((pred.shape[0],), (pred.shape[0], 1)):
        raise ValueError(f"accuracy: y must be labels ({pred.shape[0]},) or one-hot "
                         f"{pred.shape}; got y.shape={y.shape}.")
    return sparse_categorical_accuracy(pred, y)


_METRICS = {"accuracy": accuracy, "acc": accuracy,
            "sparse_categorical_accuracy": sparse_categorical_accuracy,
            "categorical_accuracy": categorical_accuracy, "binary_accuracy": binary_accuracy}


def get(identifier):
    """``(name, function)`` for a metric name or a function ``f(pred, y) -> float``."""
    if isinstance(identifier, str):
        if identifier not in _METRICS:
            raise ValueError(f"metrics.get: unknown metric {identifier!r}; expected one of "
                             f"{sorted(_METRICS)} or a function f(pred, y) -> float.")
        return identifier, _METRICS[identifier]
    if callable(identifier):
        return getattr(identifier, "__name__", "metric"), identifier
    raise TypeError(f"metrics.get: a metric must be a str or a callable; got {identifier!r}.")
