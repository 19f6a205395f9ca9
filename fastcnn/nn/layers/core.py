"""``Dense``, ``Flatten``, ``Dropout``."""

from __future__ import annotations

import numpy as np

from fastcnn.common import random as _random
from fastcnn.common.validation import check_positive_int
from fastcnn.nn.layers import activations
from fastcnn.nn.layers._util import initializer_config, regularizer_config, store_weight_options
from fastcnn.nn.layers.base import Layer

__all__ = ["Dense", "Flatten", "Dropout"]


def check_flat_shape(where: str, input_shape) -> None:
    if len(input_shape) != 1:
        raise ValueError(f"{where}: expects a flat per-sample input (D,); got "
                         f"{tuple(input_shape)}. Hint: put Flatten() before it.")


class Dense(Layer):
    """Fully connected layer ``out = x @ W + b`` (then the optional ``activation``).

    Backward: ``dW += x^T @ dout``, ``db += sum_n dout[n]``, ``dx = dout @ W^T``.

    Parameters
    ----------
    units : int
        Output features ``D_out``.
    activation, use_bias, kernel_initializer, bias_initializer, kernel_regularizer,
    bias_regularizer
        As in :class:`~fastcnn.layers.Conv2D` (Keras' defaults).

    Shape
    -----
    Input ``(N, D_in)``, output ``(N, D_out)``.

    Attributes
    ----------
    kernel : Parameter ``(D_in, D_out)`` (PyTorch's ``Linear.weight`` transposed)
    bias : Parameter ``(D_out,)`` when ``use_bias``
    """

    def __init__(self, units, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        self.units = check_positive_int("Dense", "units", units)
        self.activation = activation
        self._activation = activations.get(activation, where="Dense")
        self.use_bias = bool(use_bias)
        store_weight_options(self, kernel_initializer, bias_initializer, kernel_regularizer,
                             bias_regularizer)

    def compute_output_shape(self, input_shape):
        check_flat_shape(f"Dense '{self.name}'", input_shape)
        return (self.units,)

    def _build(self, input_shape):
        self.kernel = self.add_weight("kernel", (input_shape[0], self.units),
                                      self._kernel_init, self.dtype, self._kernel_reg)
        self.bias = (self.add_weight("bias", (self.units,), self._bias_init, self.dtype,
                                     self._bias_reg)
                     if self.use_bias else None)

    _dw = None          # x^T @ dout, a (D_in, D_out) buffer kept across steps

    def call(self, x, training):
        self._x = x
        out = x @ self.kernel.data
        if self.bias is not None:
            out += self.bias.data
        return out

    skips_input_grad = True

    def call_backward(self, dout, need_dx=True):
        # x^T @ dout into a kept buffer (never handed out), then one in-place add.
        w = self.kernel
        if self._dw is None or self._dw.shape != w.shape or self._dw.dtype != w.grad.dtype:
            self._dw = np.empty_like(w.grad)
        w.grad += np.matmul(self._x.T, dout, out=self._dw)
        if self.bias is not None:
            self.bias.grad += dout.sum(axis=0)
        if not need_dx:             # first layer of a training step: dL/dx unused
            return None
        return dout @ w.data.T

    def get_config(self):
        return {**super().get_config(), "units": self.units, "activation": self.activation,
                "use_bias": self.use_bias,
                "kernel_initializer": initializer_config(self.kernel_initializer),
                "bias_initializer": initializer_config(self.bias_initializer),
                "kernel_regularizer": regularizer_config(self.kernel_regularizer),
                "bias_regularizer": regularizer_config(self.bias_regularizer)}


class Flatten(Layer):
    """``(N, C, H, W) -> (N, C*H*W)`` in C order (channel-major, as PyTorch's
    ``flatten``: a PyTorch Linear after Flatten loads without permuting)."""

    def compute_output_shape(self, input_shape):
        return (int(np.prod(input_shape)),)

    def call(self, x, training):
        return x.reshape(x.shape[0], -1)

    def call_backward(self, dout):
        return dout.reshape((dout.shape[0],) + self.input_shape)


class Dropout(Layer):
    """Inverted dropout: in training, ``out = x * m / (1 - rate)`` with
    ``m ~ Bernoulli(1 - rate)`` drawn per element; at inference ``out = x``.

    Scaling at training time keeps ``E[out] = x``, so inference needs no rescaling.
    Backward: ``dx = dout * m / (1 - rate)`` (the same scaled mask).

    Parameters
    ----------
    rate : float in [0, 1)
        Probability of *dropping* a unit (Keras' meaning; CS231n's ``p`` keeps).
    seed : int or None
        Seeds this layer's own generator; None draws from the package generator
        (:func:`fastcnn.random.seed` makes it reproducible).
    """

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(rate, (int, float)) or isinstance(rate, bool) or not 0 <= rate < 1:
            raise ValueError(f"Dropout: rate must lie in [0, 1) (the probability of dropping "
                             f"a unit); got {rate!r}.")
        self.rate = float(rate)
        self.seed = seed
        self._random = _random
        self._rng = _random.get_rng(seed) if seed is not None else None
        self._mask = None

    @property
    def rng(self) -> np.random.Generator:
        """This layer's generator (seeded), else the package generator at call time."""
        return self._rng if self._rng is not None else self._random.get_rng()

    def call(self, x, training):
        if not training or self.rate == 0.0:
            self._mask = None
            return x
        if self._mask is None or self._mask.shape != x.shape:
            self._mask = np.empty(x.shape, dtype=x.dtype)     # reused across steps
        mask = self._mask
        self.rng.random(out=mask, dtype=x.dtype)               # u ~ U[0, 1)
        np.greater_equal(mask, self.rate, out=mask)            # keep with prob 1 - rate
        mask *= x.dtype.type(1.0 / (1.0 - self.rate))
        return x * mask

    def call_backward(self, dout):
        return dout if self._mask is None else dout * self._mask

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}
