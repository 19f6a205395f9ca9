"""Max and average pooling over NCHW batches.

Shape (both): input ``(N, C, H, W)``, output ``(N, C, OH, OW)`` with
``OH = (H + PT + PB - KH) // SH + 1`` (``"valid"``: no padding; ``"same"``:
TensorFlow's ``OH = ceil(H / SH)``, extra padding at the bottom/right).
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

__all__ = ["MaxPooling2D", "AveragePooling2D"]


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
    border window of 2 real pixels divides by 2. Backward spreads ``dout / count``
    evenly over each window. ``strides`` defaults to ``pool_size``.

    NumPy only: one strided view per window offset (``KH * KW`` vectorised adds), or a
    single reshape-mean when the windows tile the input exactly.
    """

    def _build(self, input_shape):
        super()._build(input_shape)
        c, h, w = input_shape
        (pt, pb), (pl, pr) = self._pads
        kh, kw = self.pool_size
        _, self._oh, self._ow = self.compute_output_shape(input_shape)
        self._tiles = (self.strides == self.pool_size and pt + pb + pl + pr == 0
                       and h == self._oh * kh and w == self._ow * kw)
        # Real pixels per window, computed once by pooling a ones image.
        ones = np.zeros((1, 1, h + pt + pb, w + pl + pr), dtype=self.dtype)
        ones[..., pt:pt + h, pl:pl + w] = 1
        count = np.zeros((1, 1, self._oh, self._ow), dtype=self.dtype)
        for view in self._views(ones):
            count += view
        self._inv_count = 1 / count

    def _views(self, x_pad):
        """``x_pad[:, :, oh*SH + i, ow*SW + j]`` over all (oh, ow), for each offset (i, j)."""
        sh, sw = self.strides
        for i in range(self.pool_size[0]):
            for j in range(self.pool_size[1]):
                yield x_pad[:, :, i:i + sh * (self._oh - 1) + 1:sh,
                            j:j + sw * (self._ow - 1) + 1:sw]

    def call(self, x, training):
        n, c, h, w = x.shape
        kh, kw = self.pool_size
        if self._tiles:
            return x.reshape(n, c, self._oh, kh, self._ow, kw).mean(axis=(3, 5))
        (pt, pb), (pl, pr) = self._pads
        x_pad = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr))) if pt + pb + pl + pr else x
        out = np.zeros((n, c, self._oh, self._ow), dtype=x.dtype)
        for view in self._views(x_pad):
            out += view
        out *= self._inv_count
        return out

    def call_backward(self, dout):
        n, c = dout.shape[:2]
        h, w = self.input_shape[1:]
        kh, kw = self.pool_size
        share = dout * self._inv_count                      # each pixel's share of dout
        if self._tiles:
            dx = np.broadcast_to(share[:, :, :, None, :, None], (n, c, self._oh, kh, self._ow, kw))
            return dx.reshape(n, c, h, w)
        (pt, pb), (pl, pr) = self._pads
        dx_pad = np.zeros((n, c, h + pt + pb, w + pl + pr), dtype=dout.dtype)
        for view in self._views(dx_pad):
            view += share                                   # writes through to dx_pad
        return np.ascontiguousarray(dx_pad[:, :, pt:pt + h, pl:pl + w])
