"""``Reshape``: give each sample a new shape with the same number of elements."""

from __future__ import annotations

import numpy as np

from fastcnn.common.data_format import to_internal_shape
from fastcnn.common.validation import _is_int
from fastcnn.nn.layers.base import Layer

__all__ = ["Reshape"]


class Reshape(Layer):
    """``(N, *input_shape) -> (N, *target_shape)`` in C order; backward reshapes back.

    Parameters
    ----------
    target_shape : tuple of int
        Per-sample shape (no batch dim); one entry may be -1 (inferred). A 3-D target
        is read in the model's data format: ``(7, 7, 64)`` in a channels-last model
        is built as the NCHW ``(64, 7, 7)``. NOTE: the values are laid out in NCHW
        order, not Keras' HWC order; a model trained here is unaffected, but weights
        imported from Keras across a ``Reshape`` would need permuting.
    """

    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        target = tuple(target_shape) if isinstance(target_shape, (tuple, list)) else None
        if (not target or not all(_is_int(s) and (s > 0 or s == -1) for s in target)
                or target.count(-1) > 1):
            raise ValueError(f"Reshape: target_shape must be a tuple of positive ints with "
                             f"at most one -1; got {target_shape!r}.")
        self.target_shape = tuple(int(s) for s in target)

    def compute_output_shape(self, input_shape):
        size = int(np.prod(input_shape))
        target = list(to_internal_shape(self.target_shape, self._data_format)
                      if -1 not in self.target_shape else self.target_shape)
        if -1 in target:
            known = int(np.prod([s for s in target if s != -1]))
            if known == 0 or size % known:
                raise ValueError(f"Reshape '{self.name}': cannot reshape {tuple(input_shape)} "
                                 f"({size} values) to {self.target_shape}.")
            target[target.index(-1)] = size // known
            target = list(to_internal_shape(tuple(target), self._data_format))
        if int(np.prod(target)) != size:
            raise ValueError(f"Reshape '{self.name}': target_shape {self.target_shape} holds "
                             f"{int(np.prod(target))} values but the input "
                             f"{tuple(input_shape)} holds {size}.")
        return tuple(target)

    def call(self, x, training):
        return x.reshape((x.shape[0],) + self.output_shape)

    def call_backward(self, dout):
        return dout.reshape((dout.shape[0],) + self.input_shape)

    def get_config(self):
        return {**super().get_config(), "target_shape": self.target_shape}
