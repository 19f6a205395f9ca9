"""``Sequential``: a stack of layers with Keras' surface (summary, compile, fit, save).

>>> from fastcnn.layers import Conv2D, MaxPooling2D, Flatten, Dense
>>> model = Sequential([Conv2D(6, 5, padding="same", activation="relu"), MaxPooling2D(),
...                     Flatten(), Dense(10, activation="softmax")], input_shape=(1, 28, 28))
>>> model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
>>> model.count_params()
11926

A Sequential model is the special case of the functional :class:`~fastcnn.train.functional.Model`
whose graph is a chain: once its input shape is known it builds that chain
(:meth:`Graph.chain <fastcnn.train.graph.Graph.chain>`) and from then on runs, trains,
saves and loads exactly as a functional model does. Channels-last data:
``Sequential([...], input_shape=(28, 28, 1), data_format="channels_last")`` (or
``fastcnn.set_image_data_format("channels_last")`` first).
"""

from __future__ import annotations

import os
import warnings

from fastcnn.common.data_format import check_data_format, layout_warning, looks_channels_last
from fastcnn.common.exceptions import FastCNNWarning
from fastcnn.nn.layers.base import (
    Layer,
    _all_layers,
    _normalize_dtype,
    assign_unique_names,
    normalize_shape,
)
from fastcnn.nn.layers.base import deserialize as _deserialize
from fastcnn.nn.layers.base import serialize as _serialize
from fastcnn.nn.layers.symbolic import InputLayer, SymbolicTensor
from fastcnn.train import edge, serialization
from fastcnn.train.functional import Model
from fastcnn.train.graph import Graph
from fastcnn.train.summary import summary_table

__all__ = ["Sequential", "load_model"]


class Sequential(Model):
    """A linear stack of layers.

    Parameters
    ----------
    layers : list of Layer, optional
        May start with ``fastcnn.Input(shape=...)`` (Keras 3 style), which sets the
        input shape, dtype and data format.
    input_shape : tuple, optional
        Per-sample input shape in the model's data format: ``(C, H, W)`` (channels
        first), ``(H, W, C)`` (channels last) or ``(D,)``. Also taken from the first
        layer's ``input_shape=`` (Keras). Given, every added layer is built at once (so
        ``summary()`` works); otherwise the first ``fit``/``predict`` builds the model
        from ``x.shape[1:]``.
    name : str, optional
    dtype : "float32" (default) or "float64" (gradient checks)
    data_format : None, "channels_first" or "channels_last"
        None: :func:`fastcnn.image_data_format` at creation.
    """

    config_kind = "Sequential"

    def __init__(self, layers=None, input_shape=None, name=None, dtype="float32",
                 data_format=None):
        self._init_training_state()
        self.name = name or "sequential"
        self.dtype = _normalize_dtype("Sequential", dtype)
        self.data_format = check_data_format("Sequential", data_format)
        layers = list(layers or [])
        if layers and isinstance(layers[0], SymbolicTensor):
            entry = layers.pop(0).layer
            input_shape, self.data_format, self.dtype = entry.shape, entry.data_format, entry.dtype
        elif input_shape is None and layers and isinstance(layers[0], Layer):
            input_shape = layers[0]._declared_input_shape
        self.input_shape = (normalize_shape("Sequential", input_shape)
                            if input_shape is not None else None)
        self._layers: list[Layer] = []
        self._graph = None
        for layer in layers:
            self.add(layer)
        if self.input_shape is not None and self._graph is None:
            self.build(self.input_shape)

    # ------------------------------------------------------------ structure
    @property
    def layers(self) -> list[Layer]:
        """The layers in order (without the input placeholder, as in Keras)."""
        return list(self._layers)

    def add(self, layer: Layer) -> None:
        """Append a layer (named ``"<type>_<k>"`` unless named; built if shapes are known)."""
        if not isinstance(layer, Layer) or layer.is_merge or isinstance(layer, InputLayer):
            raise TypeError(f"Sequential.add: layer must be a single-input fastcnn Layer; got "
                            f"{type(layer).__name__}. Hint: merges (Add, Concatenate) need "
                            f"the functional API, fastcnn.Model(inputs, outputs).")
        assign_unique_names([layer], {sub.name for sub in _all_layers(self._layers)})
        if self.input_shape is None and not self._layers and layer._declared_input_shape:
            self.input_shape = layer._declared_input_shape
        layer._data_format = self.data_format
        self._layers.append(layer)
        if self.input_shape is not None:
            self.build(self.input_shape)

    def pop(self) -> Layer:
        """Remove and return the last layer."""
        if not self._layers:
            raise IndexError("Sequential.pop: the model has no layers.")
        layer = self._layers.pop()
        if self._graph is not None:
            self._graph = Graph.chain(self._graph.nodes[0], self._layers)
        return layer

    def build(self, input_shape) -> None:
        """Build every layer for per-sample ``input_shape`` (in the model's data
        format; shapes flow layer to layer) and the chain graph over them."""
        shape = normalize_shape("Sequential", input_shape)
        internal = edge.internal_shape(self, shape)
        warning = layout_warning("Sequential", shape, self.data_format)
        if warning and self._graph is None:        # once, not again at every add()
            warnings.warn(warning, FastCNNWarning, stacklevel=3)
        current = internal
        for layer in self._layers:
            try:
                layer.build(current, self.dtype)
            except ValueError as exc:
                if self.data_format == "channels_first" and looks_channels_last(shape):
                    # The layer's own hint (e.g. padding='same') would train a different
                    # model; the real cause is the data layout.
                    raise ValueError(f"{str(exc).split(' Hint:')[0]} The model's input shape "
                                     f"{shape} looks channels-last (H, W, C). Hint: "
                                     f"Sequential(..., data_format='channels_last').") from None
                raise
            current = layer.output_shape
        self.input_shape = shape
        with warnings.catch_warnings():           # the layout warning was given above
            warnings.simplefilter("ignore", FastCNNWarning)
            entry = InputLayer(shape, dtype=self.dtype, data_format=self.data_format,
                               name="input_layer")
        self._graph = Graph.chain(entry, self._layers)

    def _ensure_built(self, x) -> None:
        """Build from a prepared (NCHW) batch ``x`` when no input shape was given."""
        if self._graph is None:
            if x.ndim < 2:
                raise ValueError("Sequential: cannot infer the input shape; pass "
                                 "input_shape=... or a batch x of shape (N, ...).")
            self.build(edge.external_shape(self, x.shape[1:]))

    def summary(self, print_fn=print) -> None:
        """Print a Keras-style table: Layer (type) | Output Shape | Param #, and totals."""
        if not self.built:
            raise RuntimeError("Sequential.summary: the model is not built. Hint: pass "
                               "input_shape=... to Sequential or call model.build(shape).")
        rows = [(f"{layer.name} ({type(layer).__name__})",
                 self._display_shape(layer.output_shape), sum(layer.count_params()))
                for layer in self._layers]
        trainable = sum(layer.count_params()[0] for layer in self._layers)
        frozen = sum(layer.count_params()[1] for layer in self._layers)
        print_fn(summary_table(self.name, rows, trainable, frozen, connected=False))

    # ------------------------------------------------------------- config
    def get_config(self) -> dict:
        return {"name": self.name, "input_shape": self.input_shape, "dtype": str(self.dtype),
                "data_format": self.data_format,
                "layers": [_serialize(layer) for layer in self._layers]}

    @classmethod
    def from_config(cls, config: dict) -> "Sequential":
        config = dict(config)
        layers = [_deserialize(d) for d in config.pop("layers")]
        return cls(layers, **config)

    def __repr__(self):
        inner = ",\n  ".join(repr(layer) for layer in self._layers)
        return f"Sequential(name={self.name!r}, input_shape={self.input_shape}, [\n  {inner}\n])"


_MODEL_CLASSES = {"Sequential": Sequential, "Model": Model}


def load_model(path) -> Model:
    """Rebuild a model saved by ``model.save`` (a ``Sequential`` or a functional
    ``Model``: architecture, weights, statistics, compile settings, optimizer state)."""
    header, arrays = serialization.read_model(path)
    kind = header.get("model_class", "Sequential")        # files before 0.2: Sequential
    cls = _MODEL_CLASSES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ValueError(f"load_model: {os.fspath(path)!r} holds an unknown model class "
                         f"{header.get('model_class')!r}; expected one of "
                         f"{sorted(_MODEL_CLASSES)}.")
    with serialization.rebuilding(path, header, arrays):   # shapes checked before allocation
        model = cls.from_config(header["model"])
    serialization.restore_model(model, header, arrays, path)
    return model
