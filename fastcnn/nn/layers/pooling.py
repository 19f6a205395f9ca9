"""Max and average pooling over NCHW batches, on the kernels of :mod:`fastcnn.kernels`.

Windowed (``MaxPooling2D``, ``AveragePooling2D``): input ``(N, C, H, W)``, output
``(N, C, OH, OW)`` with ``OH = (H + PT + PB - KH) // SH + 1`` (``"valid"``: no padding;
``"same"``: TensorFlow's ``OH = ceil(H / SH)``, extra padding at the bottom/right).
Global (``GlobalAveragePooling2D``, ``GlobalMaxPooling2D``): output ``(N, C)``, or
``(N, C, 1, 1)`` with ``keepdims=True``.
"""

from __future__ import annotations

import numpy as np

from fastcnn import kernels
from fastcnn.common.validation import to_pair
from fastcnn.nn.layers._util import (
    check_image_shape,
    check_padding,
    window_output_hw,
    window_padding,
)
from fastcnn.nn.layers.base import Layer

__all__ = ["MaxPooling2D", "AveragePooling2D", "GlobalAveragePooling2D", "GlobalMaxPooling2D"]


class _Pooling2D(Layer):
    def __init__(self, pool_size=2, strides=None, padding="valid", **kwargs):
        super().__init__(**kwargs)
        where = type(self).__name__
        self.pool_size = to_pair(where, "pool_size", pool_size)
        self.strides = self.pool_size if strides is None else to_pair(where, "strides", strides)
        self.padding = check_padding(where, padding)
        if self.padding not in ("valid", "same"):
            raise ValueError(f"{where}: padding must be 'valid' or 'same'; got {padding!r}.")

    def compute_output_shape(self, input_shape):
        where = f"{type(self).__name__} '{self.name}'"
        check_image_shape(where, input_shape)
        oh, ow = window_output_hw(where, self.padding, input_shape[1:], self.pool_size,
                                  self.strides)
        return (input_shape[0], oh, ow)

    def _build(self, input_shape):
        self._pads = window_padding(self.padding, input_shape[1:], self.pool_size, self.strides)

    def get_config(self):
        return {**super().get_config(), "pool_size": self.pool_size,
                "strides": self.strides, "padding": self.padding}


class MaxPooling2D(_Pooling2D):
    """``out[n, c, i, j] = max_{p < KH, q < KW} x_pad[n, c, i SH + p, j SW + q]``.

    Padding (``"same"``) never wins a max. Backward routes each ``dout`` element to the
    input that won its window (ties: the first in row-major order); overlapping
    windows add up. Computed by :func:`fastcnn.kernels.maxpool2d_forward`.
    ``strides`` defaults to ``pool_size``.
    """

    def call(self, x, training):
        out, self._cache = kernels.maxpool2d_forward(x, self.pool_size, self.strides, self._pads)
        return out

    def call_backward(self, dout):
        return kernels.maxpool2d_backward(dout, self._cache)


class AveragePooling2D(_Pooling2D):
    """``out[n, c, i, j] = mean of x over the window's real (non-padding) pixels``.

    As in Keras/TensorFlow, ``"same"`` padding is *excluded* from the count, so a
    border window of 2 real pixels divides by 2 (PyTorch's ``count_include_pad=False``).
    Backward spreads ``dout / count`` evenly over each window. ``strides`` defaults to
    ``pool_size``. Computed by :func:`fastcnn.kernels.avgpool2d_forward`.
    """

    def call(self, x, training):
        out, self._cache = kernels.avgpool2d_forward(x, self.pool_size, self.strides,
                                                     self._pads, count_include_pad=False)
        return out

    def call_backward(self, dout):
        return kernels.avgpool2d_backward(dout, self._cache)


class _GlobalPooling2D(Layer):
    def __init__(self, keepdims=False, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(keepdims, (bool, np.bool_)):
            raise TypeError(f"{type(self).__name__}: keepdims must be a bool; got {keepdims!r}.")
        self.keepdims = bool(keepdims)

    def compute_output_shape(self, input_shape):
        check_image_shape(f"{type(self).__name__} '{self.name}'", input_shape)
        return (input_shape[0], 1, 1) if self.keepdims else (input_shape[0],)

    def _pooled(self, out):
        """(N, C, 1, 1) from the kernel -> the layer's output shape (a view)."""
        return out if self.keepdims else out.reshape(out.shape[:2])

    def get_config(self):
        return {**super().get_config(), "keepdims": self.keepdims}


class GlobalAveragePooling2D(_GlobalPooling2D):
    """``out[n, c] = mean over (h, w) of x[n, c, h, w]``: one number per channel.

    The head of all-convolutional nets (Network in Network, ResNet, MobileNet):
    no weights, any input size. Output ``(N, C)``, or ``(N, C, 1, 1)`` with
    ``keepdims=True`` (Keras' names). Backward: every pixel gets ``dout / (H*W)``.
    Computed by :func:`fastcnn.kernels.adaptive_avgpool2d_forward` with output 1x1.
    """

    def call(self, x, training):
        out, self._cache = kernels.adaptive_avgpool2d_forward(x, 1)
        return self._pooled(out)

    def call_backward(self, dout):
        n, c = dout.shape[:2]
        return kernels.adaptive_avgpool2d_backward(dout.reshape(n, c, 1, 1), self._cache)


class GlobalMaxPooling2D(_GlobalPooling2D):
    """``out[n, c] = max over (h, w) of x[n, c, h, w]``: one number per channel.

    Output ``(N, C)``, or ``(N, C, 1, 1)`` with ``keepdims=True``. Backward routes
    ``dout`` to the winning pixel (ties: the first in row-major order). Computed by
    :func:`fastcnn.kernels.maxpool2d_forward` with one window the size of the input.
    """

    def call(self, x, training):
        out, self._cache = kernels.maxpool2d_forward(x, x.shape[2:])
        return self._pooled(out)

    def call_backward(self, dout):
        n, c = dout.shape[:2]
        return kernels.maxpool2d_backward(dout.reshape(n, c, 1, 1), self._cache)
