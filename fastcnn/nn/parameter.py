"""``Parameter``: one trainable (or frozen) array and its gradient.

Layers own Parameters; optimizers update them; regularizers add to their
gradients. A named object rather than a dict entry, so that a typo is an
AttributeError instead of a silently ignored key.
"""

from __future__ import annotations

import numpy as np

__all__ = ["Parameter"]


class Parameter:
    """A weight array ``data`` with a gradient ``grad`` of the same shape and dtype.

    Attributes
    ----------
    data : ndarray
        The value, updated in place by optimizers (so views into it stay valid).
    grad : ndarray
        d(loss)/d(data), same shape and dtype; starts at zero, and layers
        *accumulate* into it during ``backward`` until :meth:`zero_grad`.
    name : str
        Unique within a model once the model names it (e.g. ``"conv2d_1/kernel"``);
        optimizers key their per-parameter state by it, so saved optimizer state
        finds its parameter again after ``load_model``.
    trainable : bool
        False for frozen parameters: optimizers skip them.
    regularizer : callable or None
        ``regularizer(data) -> (penalty, gradient)``, added to the loss and to ``grad``.
    """

    __slots__ = ("data", "grad", "name", "trainable", "regularizer")

    def __init__(self, data: np.ndarray, name: str = "", trainable: bool = True,
                 regularizer=None):
        self.data = data
        self.grad = np.zeros_like(data)
        self.name = name
        self.trainable = trainable
        self.regularizer = regularizer

    @property
    def shape(self) -> tuple:
        return self.data.shape

    @property
    def size(self) -> int:
        return self.data.size

    def zero_grad(self) -> None:
        """Set the gradient to zero in place."""
        self.grad[...] = 0

    def __repr__(self) -> str:
        frozen = "" if self.trainable else ", trainable=False"
        return f"Parameter({self.name!r}, shape={self.data.shape}, dtype={self.data.dtype}{frozen})"
