"""``Maxout`` (Goodfellow et al. 2013): the max of ``pieces`` affine functions."""

from __future__ import annotations

import numpy as np

from fastcnn.common.validation import check_positive_int
from fastcnn.nn.layers._util import initializer_config, regularizer_config, store_weight_options
from fastcnn.nn.layers.base import Layer
from fastcnn.nn.layers.core import check_flat_shape

__all__ = ["Maxout"]


class Maxout(Layer):
    """``out[n, u] = max_k (x[n] @ W[:, u, k] + b[u, k])`` for ``k < pieces``.

    A generalization of ReLU (``max(w1.x + b1, 0)`` is a 2-piece maxout with the
    second piece fixed at 0) that never dies; it costs ``pieces`` times the
    parameters of a Dense layer (CS231n, "Activation functions").

    Backward: only the winning piece gets gradient:
    ``dz[n, u, k] = dout[n, u] * [k == argmax]``, then Dense's backward on ``z``.

    Parameters
    ----------
    units : int
        Output features.
    pieces : int >= 1
        Affine pieces per unit.

    Shape
    -----
    Input ``(N, D_in)``, output ``(N, units)``.

    Attributes
    ----------
    kernel : Parameter ``(D_in, units * pieces)`` (column ``u * pieces + k``)
    bias : Parameter ``(units * pieces,)``
    """

    def __init__(self, units, pieces=2, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        self.units = check_positive_int("Maxout", "units", units)
        self.pieces = check_positive_int("Maxout", "pieces", pieces)
        store_weight_options(self, kernel_initializer, bias_initializer, kernel_regularizer)

    def compute_output_shape(self, input_shape):
        check_flat_shape(f"Maxout '{self.name}'", input_shape)
        return (self.units,)

    def _build(self, input_shape):
        width = self.units * self.pieces
        self.kernel = self.add_weight("kernel", (input_shape[0], width), self._kernel_init,
                                      self.dtype, self._kernel_reg)
        self.bias = self.add_weight("bias", (width,), self._bias_init, self.dtype)

    def call(self, x, training):
        self._x = x
        z = (x @ self.kernel.data + self.bias.data).reshape(len(x), self.units, self.pieces)
        self._argmax = z.argmax(axis=2)[..., None]            # (N, units, 1)
        return np.take_along_axis(z, self._argmax, axis=2)[..., 0]

    def call_backward(self, dout):
        dz = np.zeros((len(dout), self.units, self.pieces), dtype=dout.dtype)
        np.put_along_axis(dz, self._argmax, dout[..., None], axis=2)
        dz = dz.reshape(len(dout), -1)
        self.kernel.grad += self._x.T @ dz
        self.bias.grad += dz.sum(axis=0)
        return dz @ self.kernel.data.T

    def get_config(self):
        return {**super().get_config(), "units": self.units, "pieces": self.pieces,
                "kernel_initializer": initializer_config(self.kernel_initializer),
                "bias_initializer": initializer_config(self.bias_initializer),
                "kernel_regularizer": regularizer_config(self.kernel_regularizer)}
