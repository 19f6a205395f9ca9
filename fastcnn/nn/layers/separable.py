"""``DepthwiseConv2D`` and ``SeparableConv2D`` (Keras names and arguments), the building
blocks of MobileNet-style networks, over NCHW batches.

A depthwise convolution filters every input channel on its own (``groups == C`` in
:func:`fastcnn.kernels.conv2d_forward`, a direct kernel in the fast backends); a
separable convolution follows it with a 1x1 ("pointwise") convolution that mixes the
channels. For ``C`` input channels, ``F`` filters and a ``K x K`` kernel a separable
convolution has ``K*K*C + C*F`` weights instead of ``K*K*C*F``.
"""

from __future__ import annotations

from fastcnn import kernels
from fastcnn.common.validation import check_positive_int, to_pair
from fastcnn.nn import initializers
from fastcnn.nn.layers import activations
from fastcnn.nn.layers._util import (
    check_image_shape,
    check_padding,
    dilated_size,
    get_regularizer,
    initializer_config,
    regularizer_config,
    window_output_hw,
    window_padding,
)
from fastcnn.nn.layers.base import Layer

__all__ = ["DepthwiseConv2D", "SeparableConv2D"]


class DepthwiseConv2D(Layer):
    """Depthwise 2-D convolution: ``depth_multiplier`` filters per input channel.

    .. math::
        out[n, c M + m, i, j] = b[c M + m] + \\sum_{p, q}
                                x_{pad}[n, c, i S_H + p D_H, j S_W + q D_W] \\; w[c M + m, 0, p, q]

    (``M = depth_multiplier``), i.e. :func:`fastcnn.kernels.conv2d_forward` with
    ``groups = C``, then the optional ``activation``.

    Parameters
    ----------
    kernel_size : int or (KH, KW)
    strides : int or (SH, SW)
    padding : "valid" | "same" | int | (PH, PW)   (as in :class:`Conv2D`)
    depth_multiplier : int
        Output channels per input channel: the layer has ``C * depth_multiplier`` outputs.
    dilation_rate : int or (DH, DW)
    activation : str or None
    use_bias : bool
    depthwise_initializer, bias_initializer : Keras' defaults ``"glorot_uniform"``, ``"zeros"``
        (fans of the OIHW kernel ``(C*M, 1, KH, KW)``: ``fan_in = KH*KW``, as in PyTorch).
    depthwise_regularizer : regularizer of the kernel, or None

    Attributes
    ----------
    kernel : Parameter ``(C * M, 1, KH, KW)`` (PyTorch's layout for ``groups = C``);
        Keras stores the same numbers as ``(KH, KW, C, M)``.
    bias : Parameter ``(C * M,)`` when ``use_bias``

    Parameters counted: ``KH*KW*C*M + C*M`` (Keras' count).
    """

    def __init__(self, kernel_size, strides=1, padding="valid", depth_multiplier=1,
                 dilation_rate=1, activation=None, use_bias=True,
                 depthwise_initializer="glorot_uniform", bias_initializer="zeros",
                 depthwise_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        where = type(self).__name__
        self.kernel_size = to_pair(where, "kernel_size", kernel_size)
        self.strides = to_pair(where, "strides", strides)
        self.padding = check_padding(where, padding)
        self.depth_multiplier = check_positive_int(where, "depth_multiplier", depth_multiplier)
        self.dilation_rate = to_pair(where, "dilation_rate", dilation_rate)
        self.activation = activation
        self._activation = activations.get(activation, where=where)
        self.use_bias = bool(use_bias)
        self.depthwise_initializer = depthwise_initializer
        self.bias_initializer = bias_initializer
        self.depthwise_regularizer = depthwise_regularizer

    def _window_output(self, input_shape):
        where = f"{type(self).__name__} '{self.name}'"
        check_image_shape(where, input_shape)
        return window_output_hw(where, self.padding, input_shape[1:],
                                dilated_size(self.kernel_size, self.dilation_rate), self.strides)

    def compute_output_shape(self, input_shape):
        return (input_shape[0] * self.depth_multiplier,) + self._window_output(input_shape)

    def _build_depthwise(self, input_shape, short_name):
        """The depthwise kernel ``(C*M, 1, KH, KW)`` and the padding, computed once."""
        c, h, w = input_shape
        kernel = self.add_weight(short_name, (c * self.depth_multiplier, 1) + self.kernel_size,
                                 initializers.get(self.depthwise_initializer), self.dtype,
                                 get_regularizer(self.depthwise_regularizer))
        self._pads = window_padding(self.padding, (h, w),
                                    dilated_size(self.kernel_size, self.dilation_rate),
                                    self.strides)
        return kernel

    def _build(self, input_shape):
        self.kernel = self._build_depthwise(input_shape, "kernel")
        filters = input_shape[0] * self.depth_multiplier
        self.bias = (self.add_weight("bias", (filters,), initializers.get(self.bias_initializer),
                                     self.dtype) if self.use_bias else None)

    def _depthwise_forward(self, x, kernel, bias):
        out, self._depthwise_cache = kernels.conv2d_forward(
            x, kernel.data, bias, self.strides, self._pads, self.dilation_rate, x.shape[1])
        return out

    def _depthwise_backward(self, dout, kernel, need_dx):
        """``kernel.grad += dw``; returns ``(dx, db)`` (dx None when ``need_dx`` is False:
        the first layer of a training step, whose input gradient nobody needs)."""
        dx, dw, db = kernels.conv2d_backward(dout, self._depthwise_cache, need_dx=need_dx)
        kernel.grad += dw
        return dx, db

    def call(self, x, training):
        return self._depthwise_forward(x, self.kernel,
                                       self.bias.data if self.bias is not None else None)

    skips_input_grad = True

    def call_backward(self, dout, need_dx=True):
        dx, db = self._depthwise_backward(dout, self.kernel, need_dx)
        if self.bias is not None:
            self.bias.grad += db
        return dx

    def get_config(self):
        return {**super().get_config(), "kernel_size": self.kernel_size,
                "strides": self.strides, "padding": self.padding,
                "depth_multiplier": self.depth_multiplier, "dilation_rate": self.dilation_rate,
                "activation": self.activation, "use_bias": self.use_bias,
                "depthwise_initializer": initializer_config(self.depthwise_initializer),
                "bias_initializer": initializer_config(self.bias_initializer),
                "depthwise_regularizer": regularizer_config(self.depthwise_regularizer)}


class SeparableConv2D(DepthwiseConv2D):
    """Depthwise-separable 2-D convolution: a depthwise convolution (no bias), then a 1x1
    convolution to ``filters`` channels (with the bias), then the optional ``activation``.

    .. math::
        mid = \\mathrm{depthwise}(x; w_{dw}),  \\quad
        out[n, f] = b[f] + \\sum_{k} w_{pw}[f, k, 0, 0] \\; mid[n, k]

    Parameters
    ----------
    filters : int
    kernel_size, strides, padding, depth_multiplier, dilation_rate, activation, use_bias,
    depthwise_initializer, depthwise_regularizer : as in :class:`DepthwiseConv2D`
    pointwise_initializer, bias_initializer : Keras' defaults ``"glorot_uniform"``, ``"zeros"``
    pointwise_regularizer : regularizer of the 1x1 kernel, or None

    Attributes
    ----------
    depthwise_kernel : Parameter ``(C * M, 1, KH, KW)``
    pointwise_kernel : Parameter ``(filters, C * M, 1, 1)``
    bias : Parameter ``(filters,)`` when ``use_bias``

    Parameters counted: ``KH*KW*C*M + C*M*filters + filters`` (Keras' count).
    """

    def __init__(self, filters, kernel_size, strides=1, padding="valid", depth_multiplier=1,
                 dilation_rate=1, activation=None, use_bias=True,
                 depthwise_initializer="glorot_uniform", pointwise_initializer="glorot_uniform",
                 bias_initializer="zeros", depthwise_regularizer=None,
                 pointwise_regularizer=None, **kwargs):
        super().__init__(kernel_size, strides, padding, depth_multiplier, dilation_rate,
                         activation, use_bias, depthwise_initializer, bias_initializer,
                         depthwise_regularizer, **kwargs)
        self.filters = check_positive_int("SeparableConv2D", "filters", filters)
        self.pointwise_initializer = pointwise_initializer
        self.pointwise_regularizer = pointwise_regularizer

    def compute_output_shape(self, input_shape):
        return (self.filters,) + self._window_output(input_shape)

    def _build(self, input_shape):
        self.depthwise_kernel = self._build_depthwise(input_shape, "depthwise_kernel")
        mid = input_shape[0] * self.depth_multiplier
        self.pointwise_kernel = self.add_weight(
            "pointwise_kernel", (self.filters, mid, 1, 1),
            initializers.get(self.pointwise_initializer), self.dtype,
            get_regularizer(self.pointwise_regularizer))
        self.bias = (self.add_weight("bias", (self.filters,),
                                     initializers.get(self.bias_initializer), self.dtype)
                     if self.use_bias else None)

    def call(self, x, training):
        mid = self._depthwise_forward(x, self.depthwise_kernel, None)
        bias = self.bias.data if self.bias is not None else None
        out, self._pointwise_cache = kernels.conv2d_forward(mid, self.pointwise_kernel.data,
                                                            bias)
        return out

    def call_backward(self, dout, need_dx=True):
        dmid, dw, db = kernels.conv2d_backward(dout, self._pointwise_cache)
        self.pointwise_kernel.grad += dw
        if self.bias is not None:
            self.bias.grad += db
        return self._depthwise_backward(dmid, self.depthwise_kernel, need_dx)[0]

    def get_config(self):
        return {**super().get_config(), "filters": self.filters,
                "pointwise_initializer": initializer_config(self.pointwise_initializer),
                "pointwise_regularizer": regularizer_config(self.pointwise_regularizer)}
