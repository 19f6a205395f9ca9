"""``Model``: the functional API — any DAG of layers between one ``Input`` and one output.

>>> from fastcnn import Input, Model
>>> from fastcnn.layers import Conv2D, BatchNormalization, ReLU, add, Flatten, Dense
>>> inputs = Input(shape=(16, 8, 8))
>>> h = ReLU()(BatchNormalization()(Conv2D(32, 3, strides=2, padding="same")(inputs)))
>>> h = BatchNormalization()(Conv2D(32, 3, padding="same")(h))
>>> shortcut = Conv2D(32, 1, strides=2)(inputs)          # the strided 1x1 projection
>>> h = ReLU()(add([h, shortcut]))
>>> outputs = Dense(10, activation="softmax")(Flatten()(h))
>>> model = Model(inputs, outputs)
>>> model.count_params()
16394

Training, evaluation, saving and loading are those of ``Sequential`` (both derive from
:class:`~fastcnn.train.engine.BaseModel` and run the same :class:`~fastcnn.train.graph.Graph`
code); ``summary()`` adds Keras' "Connected to" column. Backward sums the gradients of a
tensor that feeds several layers (``x`` above feeds the main branch and the shortcut).

Not copied from Keras (see docs): several inputs or outputs, calling one layer at two
places of a graph (shared weights), and nesting a model inside another graph.
"""

from __future__ import annotations

import numpy as np

from fastcnn.nn.layers.base import assign_unique_names, deserialize, serialize
from fastcnn.nn.layers.symbolic import InputLayer
from fastcnn.train.engine import BaseModel
from fastcnn.train.graph import Graph
from fastcnn.train.summary import summary_table

__all__ = ["Model"]


class Model(BaseModel):
    """A model over the graph from ``inputs`` to ``outputs`` (symbolic tensors).

    Parameters
    ----------
    inputs : SymbolicTensor from :func:`fastcnn.Input` (or a list holding one)
    outputs : SymbolicTensor computed from ``inputs`` by layer calls (or a list of one)
    name : str, optional

    The data format and dtype are the ``Input``'s.
    """

    #: what ``load_model`` rebuilds from a saved config ("Sequential" in the subclass)
    config_kind = "Model"

    def __init__(self, inputs, outputs, name=None):
        self._init_training_state()
        self.name = name or "functional"
        self._graph = Graph.from_tensors("Model", inputs, outputs)
        # Keras names: auto-named layers get "<type>_<k>"; explicit names must be unique.
        assign_unique_names(self._graph.nodes, set())
        entry = self._graph.nodes[0]
        self.data_format = entry.data_format
        self.dtype = entry.dtype
        self.input_shape = entry.shape

    @property
    def layers(self) -> list:
        """Every layer of the graph in topological order, the InputLayer first (Keras)."""
        return list(self._graph.nodes)

    def _ensure_built(self, x) -> None:
        """A functional model is built when it is created."""

    # ------------------------------------------------------------------ summary
    def summary(self, print_fn=print) -> None:
        """Keras' table: Layer (type) | Output Shape | Param # | Connected to."""
        rows = []
        nodes = self._graph.nodes
        for layer, ins in zip(nodes, self._graph.inbound):
            shape = layer.output_shape
            connected = ", ".join(f"{nodes[j].name}[0][0]" for j in ins) or "-"
            rows.append((f"{layer.name} ({type(layer).__name__})", self._display_shape(shape),
                         sum(layer.count_params()), connected))
        trainable = sum(layer.count_params()[0] for layer in nodes)
        frozen = sum(layer.count_params()[1] for layer in nodes)
        print_fn(summary_table(self.name, rows, trainable, frozen, connected=True))

    # ------------------------------------------------------------------- config
    def get_config(self) -> dict:
        """Keras-like: every layer's config with the names of the layers it reads."""
        nodes = self._graph.nodes
        return {"name": self.name,
                "layers": [{**serialize(layer), "inbound": [nodes[j].name for j in ins]}
                           for layer, ins in zip(nodes, self._graph.inbound)]}

    @classmethod
    def from_config(cls, config: dict) -> "Model":
        """Rebuild the graph by calling fresh layers on fresh symbolic tensors."""
        if not isinstance(config, dict) or not isinstance(config.get("layers"), list) \
                or not config["layers"]:
            raise ValueError(f"Model.from_config: expected {{'name': ..., 'layers': [...]}}; "
                             f"got {config!r:.200}.")
        tensors: dict = {}
        first = last = None
        for entry in config["layers"]:
            if not isinstance(entry, dict) or not isinstance(entry.get("inbound"), list):
                raise ValueError(f"Model.from_config: each layer entry needs 'class_name', "
                                 f"'config' and 'inbound'; got {entry!r:.200}.")
            layer = deserialize({"class_name": entry.get("class_name"),
                                 "config": entry.get("config")})
            if isinstance(layer, InputLayer):
                out = layer.output
                first = out if first is None else first
            else:
                missing = [n for n in entry["inbound"] if n not in tensors]
                if missing:
                    raise ValueError(f"Model.from_config: layer {layer.name!r} reads "
                                     f"{missing}, which come later or do not exist.")
                ins = [tensors[n] for n in entry["inbound"]]
                out = layer(ins if layer.is_merge else ins[0])
            tensors[layer.name] = last = out
        return cls(first, last, name=config.get("name"))

    def __repr__(self):
        inner = ",\n  ".join(repr(layer) for layer in self._graph.nodes)
        return f"Model(name={self.name!r}, [\n  {inner}\n])"


