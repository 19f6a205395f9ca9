"""``to_categorical``: integer class labels -> one-hot rows (Keras' ``keras.utils`` name)."""

from __future__ import annotations

import numpy as np

from fastcnn.common.validation import check_positive_int

__all__ = ["to_categorical"]


def to_categorical(y, num_classes=None, dtype="float32") -> np.ndarray:
    """One-hot encode integer labels: ``out[..., k] = 1.0 if y == k else 0.0``.

    Parameters
    ----------
    y : array-like of ints in ``[0, num_classes)``, any shape ``S``
        (a trailing axis of size 1, as ``(N, 1)`` labels often come, is dropped, as
        Keras does).
    num_classes : int, optional
        Default ``max(y) + 1``.
    dtype : the output dtype (default float32)

    Returns
    -------
    ndarray of shape ``S + (num_classes,)``. A model compiled with
    ``loss="categorical_crossentropy"`` trains on it; ``"sparse_categorical_crossentropy"``
    takes the integer labels directly.
    """
    y = np.asarray(y)
    if y.dtype.kind not in "iub" and not (y.dtype.kind == "f" and y.size
                                          and np.all(y == np.round(y))):
        raise TypeError(f"to_categorical: y must hold integer class labels; got dtype "
                        f"{y.dtype}.")
    y = y.astype(np.int64)
    if y.ndim > 1 and y.shape[-1] == 1:
        y = y[..., 0]
    if y.size and y.min() < 0:
        raise ValueError(f"to_categorical: labels must be >= 0; got min {int(y.min())}.")
    top = int(y.max()) + 1 if y.size else 0
    num_classes = top if num_classes is None else check_positive_int(
        "to_categorical", "num_classes", num_classes)
    if top > num_classes:
        raise ValueError(f"to_categorical: label {top - 1} does not fit num_classes="
                         f"{num_classes} (labels must lie in [0, num_classes)).")
    out = np.zeros(y.shape + (num_classes,), dtype=dtype)
    # out[i, y[i]] = 1 for every sample: index the flattened rows with their labels.
    flat = out.reshape(-1, num_classes)
    flat[np.arange(flat.shape[0]), y.reshape(-1)] = 1
    return out
