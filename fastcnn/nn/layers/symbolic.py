"""The functional API's placeholders: :func:`Input`, :class:`SymbolicTensor`, ``InputLayer``.

Calling a layer on a symbolic tensor does no arithmetic: it builds the layer for the
tensor's per-sample shape and returns a new symbolic tensor that remembers which layer
made it from which tensors. ``fastcnn.Model(inputs, outputs)`` then walks those links
back from ``outputs`` to find the graph::

    inputs = Input(shape=(3, 32, 32))               # per-sample shape, no batch dim
    h = Conv2D(16, 3, padding="same")(inputs)       # SymbolicTensor, shape (None, 16, 32, 32)
    y = add([h, Conv2D(16, 1)(inputs)])             # merges take a list
    model = Model(inputs, y)

Shapes are kept in NCHW order (what the layers compute in); ``tensor.shape`` shows them
in the data format of the graph's ``Input`` (``(None, 32, 32, 3)`` for channels-last).
"""

from __future__ import annotations

import warnings

import numpy as np

from fastcnn.common.data_format import (
    check_data_format,
    layout_warning,
    to_external_shape,
    to_internal_shape,
)
from fastcnn.common.exceptions import FastCNNWarning
from fastcnn.nn.layers.base import Layer, _normalize_dtype, normalize_shape

__all__ = ["SymbolicTensor", "InputLayer", "Input", "is_symbolic"]


class SymbolicTensor:
    """A placeholder for a batch flowing through a graph (Keras' ``KerasTensor``).

    Attributes
    ----------
    layer : Layer
        The layer that produces it (an ``InputLayer`` for model inputs).
    inputs : list of SymbolicTensor
        What that layer was called on (empty for an input).
    internal_shape : tuple
        Per-sample shape in NCHW order.
    dtype : numpy dtype
    data_format : "channels_first" or "channels_last"
    """

    def __init__(self, layer, inputs, internal_shape, dtype, data_format):
        self.layer = layer
        self.inputs = list(inputs)
        self.internal_shape = tuple(internal_shape)
        self.dtype = np.dtype(dtype)
        self.data_format = data_format

    @property
    def shape(self) -> tuple:
        """``(None, *per-sample shape)`` in the graph's data format, as Keras shows it."""
        return (None,) + to_external_shape(self.internal_shape, self.data_format)

    @property
    def name(self) -> str:
        return self.layer.name

    def apply_layer(self, layer, inputs) -> "SymbolicTensor":
        """``layer(inputs)`` on symbolic tensors: build ``layer`` for their shapes and
        return its symbolic output (what :meth:`Layer.__call__` delegates to)."""
        where = f"{type(layer).__name__} '{layer.name}'"
        many = isinstance(inputs, (list, tuple))
        tensors = list(inputs) if many else [inputs]
        if not all(isinstance(t, SymbolicTensor) for t in tensors):
            raise TypeError(f"{where}: cannot mix symbolic tensors and other values in one "
                            f"call; got {[type(t).__name__ for t in tensors]}.")
        if layer.is_merge != many:
            raise TypeError(f"{where}: " + ("takes a list of tensors, e.g. add([a, b])"
                                            if layer.is_merge else "takes one tensor, not a "
                                            f"list of {len(tensors)}") + ".")
        formats = {t.data_format for t in tensors}
        if len(formats) > 1 or len({t.dtype for t in tensors}) > 1:
            raise ValueError(f"{where}: its inputs come from Inputs of different data "
                             f"formats or dtypes: {[(t.data_format, str(t.dtype)) for t in tensors]}.")
        if layer._in_graph:
            # Keras shares such a layer's weights between both places; fastcnn layers
            # keep one forward cache each, so a second use needs a second layer.
            raise ValueError(f"{where} is already used in a graph; a layer can be called "
                             f"once. Hint: create another layer (shared weights between "
                             f"two places of a graph are not supported).")
        layer._data_format = self.data_format
        shapes = [t.internal_shape for t in tensors]
        layer.build(shapes if many else shapes[0], self.dtype)
        layer._in_graph = True
        return SymbolicTensor(layer, tensors, layer.output_shape, self.dtype, self.data_format)

    def __array__(self, *args, **kwargs):
        raise TypeError(
            f"SymbolicTensor from layer {self.layer.name!r} holds no values: it only "
            f"describes a graph. Hint: build fastcnn.Model(inputs, outputs) and call "
            f"model.predict(x) or model(x) on real data.")

    def __repr__(self) -> str:
        return (f"<SymbolicTensor shape={self.shape} dtype={self.dtype} "
                f"from {self.layer.name!r} ({type(self.layer).__name__})>")


def is_symbolic(value) -> bool:
    """True for a SymbolicTensor or a non-empty list/tuple of them."""
    if isinstance(value, SymbolicTensor):
        return True
    return (isinstance(value, (list, tuple)) and bool(value)
            and all(isinstance(v, SymbolicTensor) for v in value))


class InputLayer(Layer):
    """The identity layer behind :func:`Input`: a graph's entry point (no weights).

    ``shape`` is the per-sample shape in ``data_format`` (what the user's data has);
    the layer itself is built for the NCHW form.
    """

    def __init__(self, shape, dtype="float32", data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.data_format = check_data_format("Input", data_format)
        self.shape = normalize_shape("Input", shape)
        warning = layout_warning("Input", self.shape, self.data_format)
        if warning:
            warnings.warn(warning, FastCNNWarning, stacklevel=4)
        self.build(to_internal_shape(self.shape, self.data_format),
                   _normalize_dtype("Input", dtype))
        self.output = SymbolicTensor(self, [], self.output_shape, self.dtype, self.data_format)

    def call(self, x, training):
        return x

    def call_backward(self, dout):
        return dout

    def get_config(self):
        return {**super().get_config(), "shape": self.shape, "dtype": str(self.dtype),
                "data_format": self.data_format}


def Input(shape, dtype="float32", name=None, data_format=None) -> SymbolicTensor:
    """A model input: a :class:`SymbolicTensor` of per-sample ``shape`` (no batch dim).

    Parameters
    ----------
    shape : tuple of int
        ``(C, H, W)`` for channels-first images, ``(H, W, C)`` for channels-last,
        ``(D,)`` for vectors.
    dtype : "float32" (default) or "float64" (gradient checks)
    name : str, optional
    data_format : None, "channels_first" or "channels_last"
        None takes :func:`fastcnn.image_data_format` (``"channels_first"`` unless set).
        A Model built on this input takes data in this format.
    """
    return InputLayer(shape, dtype=dtype, data_format=data_format, name=name).output
