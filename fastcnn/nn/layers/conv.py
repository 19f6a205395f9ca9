"""``Conv2D``: 2-D convolution over NCHW batches with OIHW weights (dilated and grouped
convolutions included; depthwise and separable ones are in ``separable.py``)."""

from __future__ import annotations


from fastcnn import kernels
from fastcnn.common.validation import check_positive_int, to_pair
from fastcnn.nn.layers import activations
from fastcnn.nn.layers._util import (
    check_image_shape,
    check_padding,
    dilated_size,
    initializer_config,
    regularizer_config,
    store_weight_options,
    window_output_hw,
    window_padding,
)
from fastcnn.nn.layers.base import Layer

__all__ = ["Conv2D"]


class Conv2D(Layer):
    """2-D convolution (cross-correlation, as in Keras and PyTorch).

    .. math::
        out[n, f, i, j] = b[f] + \\sum_{c=0}^{C/G-1} \\sum_{p=0}^{KH-1} \\sum_{q=0}^{KW-1}
                          x_{pad}[n, g C/G + c, i S_H + p D_H, j S_W + q D_W] \\; w[f, c, p, q]

    with ``g = f // (F/G)`` the group of filter ``f`` (``G = groups``; with ``G = 1`` every
    filter sees every channel), computed by :func:`fastcnn.kernels.conv2d_forward`
    (im2col + GEMMs on the active backend), then the optional ``activation``.

    Parameters
    ----------
    filters : int
        Number of output channels ``F``.
    kernel_size : int or (KH, KW)
    strides : int or (SH, SW)
    padding : "valid" | "same" | int | (PH, PW)
        ``"valid"``: none. ``"same"``: TensorFlow's rule, ``OH = ceil(H / SH)``; when the
        total padding ``max((OH - 1) SH + KH - H, 0)`` is odd the extra row/column goes
        at the bottom/right. An int or pair: zeros on both sides (PyTorch style).
    activation : str or None
        A Keras activation name applied after the convolution (``"relu"``, ...).
    use_bias : bool
    kernel_initializer, bias_initializer : str, dict or Initializer
        Keras' defaults ``"glorot_uniform"`` and ``"zeros"``.
    kernel_regularizer : str, dict, regularizer or None
        Its penalty ``R(w)`` is added to the loss and ``dR/dw`` to the kernel gradient.
    dilation_rate : int or (DH, DW)
        Spacing of the kernel's taps (1 = dense): a 3x3 kernel with dilation 2 covers 5x5
        pixels with 9 weights. ``"same"`` padding uses the covered size
        ``(KH - 1)*DH + 1``. Unlike Keras (not PyTorch), strides > 1 may be combined with it.
    groups : int
        Split the channels into ``groups`` independent convolutions: ``C`` and ``filters``
        must both be multiples of it; each filter sees ``C / groups`` channels.
    bias_regularizer : str, dict, regularizer or None
        The same for the bias (Keras' argument; rarely useful).

    Shape
    -----
    Input ``(N, C, H, W)``, output ``(N, F, OH, OW)`` with
    ``OH = (H + PT + PB - ((KH - 1)*DH + 1)) // SH + 1`` (likewise ``OW``).

    Attributes
    ----------
    kernel : Parameter ``(F, C / groups, KH, KW)`` (OIHW, loads from PyTorch as is)
    bias : Parameter ``(F,)`` when ``use_bias``

    Examples
    --------
    >>> Conv2D(32, 3, padding="same", activation="relu")   # doctest: +SKIP
    """

    def __init__(self, filters, kernel_size, strides=1, padding="valid", activation=None,
                 use_bias=True, kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, dilation_rate=1, groups=1,
                 **kwargs):
        super().__init__(**kwargs)
        self.filters = check_positive_int("Conv2D", "filters", filters)
        self.kernel_size = to_pair("Conv2D", "kernel_size", kernel_size)
        self.strides = to_pair("Conv2D", "strides", strides)
        self.padding = check_padding("Conv2D", padding)
        self.dilation_rate = to_pair("Conv2D", "dilation_rate", dilation_rate)
        self.groups = check_positive_int("Conv2D", "groups", groups)
        if self.filters % self.groups:
            raise ValueError(f"Conv2D: filters must be a multiple of groups = {self.groups}; "
                             f"got filters={self.filters}.")
        self.activation = activation
        self._activation = activations.get(activation, where="Conv2D")
        self.use_bias = bool(use_bias)
        store_weight_options(self, kernel_initializer, bias_initializer, kernel_regularizer,
                             bias_regularizer)

    def compute_output_shape(self, input_shape):
        where = f"Conv2D '{self.name}'"
        check_image_shape(where, input_shape)
        if input_shape[0] % self.groups:
            raise ValueError(f"{where}: the input channels must be a multiple of groups = "
                             f"{self.groups}; got input shape {tuple(input_shape)}.")
        oh, ow = window_output_hw(where, self.padding, input_shape[1:],
                                  dilated_size(self.kernel_size, self.dilation_rate),
                                  self.strides)
        return (self.filters, oh, ow)

    def _build(self, input_shape):
        c, h, w = input_shape
        self.kernel = self.add_weight("kernel",
                                      (self.filters, c // self.groups) + self.kernel_size,
                                      self._kernel_init, self.dtype, self._kernel_reg)
        self.bias = (self.add_weight("bias", (self.filters,), self._bias_init, self.dtype,
                                     self._bias_reg)
                     if self.use_bias else None)
        # Computed once: the kernel API takes ((top, bottom), (left, right)).
        self._pads = window_padding(self.padding, (h, w),
                                    dilated_size(self.kernel_size, self.dilation_rate),
                                    self.strides)

    def call(self, x, training):
        bias = self.bias.data if self.bias is not None else None
        out, self._cache = kernels.conv2d_forward(x, self.kernel.data, bias, self.strides,
                                                  self._pads, self.dilation_rate, self.groups)
        return out

    skips_input_grad = True

    def call_backward(self, dout, need_dx=True):
        # need_dx=False (first layer of a training step): the kernel skips the dX GEMMs
        # and col2im and returns dx=None.
        dx, dw, db = kernels.conv2d_backward(dout, self._cache, need_dx=need_dx)
        self.kernel.grad += dw
        if self.bias is not None:
            self.bias.grad += db
        return dx

    def get_config(self):
        return {**super().get_config(), "filters": self.filters,
                "kernel_size": self.kernel_size, "strides": self.strides,
                "padding": self.padding, "activation": self.activation,
                "use_bias": self.use_bias,
                "kernel_initializer": initializer_config(self.kernel_initializer),
                "bias_initializer": initializer_config(self.bias_initializer),
                "kernel_regularizer": regularizer_config(self.kernel_regularizer),
                "bias_regularizer": regularizer_config(self.bias_regularizer),
                "dilation_rate": self.dilation_rate, "groups": self.groups}
