"""``load_keras(path)``: a Keras 3 ``.keras`` file as a fastcnn model.

A ``.keras`` file is a zip archive of ``config.json`` (the architecture, each layer's
constructor arguments) and ``model.weights.h5`` (the arrays, at
``layers/<snake_case class name>[_k]/vars/<i>``, ``k`` counting in ``model.layers``
order). Reading it needs ``h5py`` (``pip install "fastcnn[keras]"``) but not Keras. A
``Sequential`` model becomes a fastcnn ``Sequential``; a functional one (config class
``"Functional"``: one input, one output, each layer's ``inbound_nodes`` naming the
layers it reads) a fastcnn ``Model`` over the same graph. The layers fastcnn has are
converted to its layouts:

* images: Keras' default is ``(N, H, W, C)`` ("channels_last"), fastcnn's ``(N, C, H, W)``.
  The model is built for ``(C, H, W)``, so give it ``x.transpose(0, 3, 1, 2)``; a
  Keras model built with ``data_format="channels_first"`` takes the same NCHW data;
* conv kernels: Keras ``(KH, KW, C, F)`` -> fastcnn ``(F, C, KH, KW)``:
  ``kernel.transpose(3, 2, 0, 1)`` (either data format);
* ``Flatten``: channels-last Keras flattens ``(H, W, C)``, fastcnn ``(C, H, W)``, so the
  arrays of the layers that read the flat vector (the next ``Dense``, and a
  ``BatchNormalization`` or ``PReLU`` before it) are re-ordered: fastcnn feature
  ``c*H*W + h*W + w`` is Keras' ``(h*W + w)*C + c``. Through a graph this order travels
  with each tensor (a ``Concatenate`` of two flattened branches joins their orders);
* ``Concatenate``'s ``axis`` counts in Keras' layout and becomes the matching NCHW axis;
* batch norm, dense, PReLU (per channel) arrays as they are.

Supported layers: InputLayer, Conv2D, MaxPooling2D, AveragePooling2D, Dense, Flatten,
Dropout, BatchNormalization, Activation, ReLU, LeakyReLU, PReLU, ELU, Softmax, Add,
Multiply, Concatenate, with the activations fastcnn has (relu, leaky_relu, elu,
sigmoid, tanh, softmax, linear). Anything else (and a layer called at two places of a
graph: shared weights) is a ``NotImplementedError`` naming the layer and the argument.
"""

from __future__ import annotations

import io
import json
import os
import re
import zipfile

import numpy as np

from fastcnn.nn import layers as L
from fastcnn.nn.layers.symbolic import Input
from fastcnn.train.functional import Model
from fastcnn.train.model import Sequential

__all__ = ["load_keras", "keras_weight_path"]

_IMAGE_LAYERS = ("Conv2D", "MaxPooling2D", "AveragePooling2D")


def keras_weight_path(class_name: str, used: dict) -> str:
    """The h5 group of a layer's arrays, as Keras 3 names it: the snake_case class name
    (``MaxPooling2D`` -> ``max_pooling2d``), ``_1``, ``_2``... for repeats (``used``
    counts them). Keras does not use the layer's own name there."""
    name = re.sub(r"\W+", "", class_name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    name = re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()
    if name in used:
        used[name] += 1
        name = f"{name}_{used[name]}"
    else:
        used[name] = 0
    return f"layers/{name}/vars"


def _unsupported(layer_cfg, what: str, supported: str = ""):
    return NotImplementedError(f"load_keras: layer {layer_cfg['config'].get('name')!r} "
                               f"({layer_cfg['class_name']}): {what} is not supported"
                               + (f"; fastcnn supports {supported}." if supported else "."))


def _require(layer_cfg, key, allowed):
    """``config[key]`` (lists as tuples) when it is one of ``allowed``, else the error."""
    value = layer_cfg["config"].get(key, allowed[0])
    value = tuple(value) if isinstance(value, list) else value
    if value not in allowed:
        raise _unsupported(layer_cfg, f"{key}={value!r}",
                           " or ".join(f"{key}={a!r}" for a in allowed))
    return value


def _activation(layer_cfg):
    name = layer_cfg["config"].get("activation", "linear")
    if name not in ("linear", "relu", "leaky_relu", "elu", "sigmoid", "tanh", "softmax"):
        raise _unsupported(layer_cfg, f"activation {name!r}")
    return None if name == "linear" else name


def _data_format(layer_cfgs) -> str:
    """The Keras model's image data format (its window layers must agree; a Flatten's
    own data_format says the order it flattens in, see :func:`_flattens_hwc`)."""
    formats = {c["config"].get("data_format", "channels_last") for c in layer_cfgs
               if c["class_name"] in _IMAGE_LAYERS}
    if len(formats) > 1:
        raise NotImplementedError(f"load_keras: the model mixes image data formats "
                                  f"{sorted(formats)}; fastcnn reads one per model.")
    return formats.pop() if formats else "channels_last"


def _concatenate_axis(layer_cfg, rank: int, data_format: str) -> int:
    """Keras' ``axis`` (counting the batch, in Keras' layout) as fastcnn's axis of the
    same tensor in NCHW (the loaded model is channels-first)."""
    axis = layer_cfg["config"].get("axis", -1)
    position = axis - 1 if axis > 0 else axis + rank           # per-sample, 0-based
    if not 0 <= position < rank:
        raise _unsupported(layer_cfg, f"axis={axis} for inputs of rank {rank + 1}")
    if data_format == "channels_last" and rank == 3:
        position = (1, 2, 0)[position]                         # (H, W, C) -> (C, H, W)
    return position + 1


def _flattens_hwc(layer_cfg, data_format: str) -> bool:
    """Whether a Keras Flatten lists an image's numbers in (H, W, C) order. Its own
    ``data_format="channels_first"`` means "my input is (C, H, W): move C last first",
    so it flattens (H, W, C) in a channels-first model too; a channels-last Flatten
    there flattens (C, H, W) as it comes (fastcnn's order)."""
    flatten_format = layer_cfg["config"].get("data_format", "channels_last")
    if data_format == "channels_last":
        _require(layer_cfg, "data_format", ("channels_last",))
    return flatten_format == data_format


def _make_image_layer(layer_cfg, common: dict, data_format: str):
    kind, cfg = layer_cfg["class_name"], layer_cfg["config"]
    if kind == "Flatten":
        _flattens_hwc(layer_cfg, data_format)                  # checks its data_format
        return L.Flatten(**common)
    _require(layer_cfg, "data_format", (data_format,))
    if kind == "Conv2D":
        _require(layer_cfg, "dilation_rate", ((1, 1),))
        _require(layer_cfg, "groups", (1,))
        return L.Conv2D(cfg["filters"], tuple(cfg["kernel_size"]), tuple(cfg["strides"]),
                        cfg["padding"], _activation(layer_cfg), cfg["use_bias"], **common)
    if kind in ("MaxPooling2D", "AveragePooling2D"):
        return getattr(L, kind)(tuple(cfg["pool_size"]), tuple(cfg["strides"]),
                                cfg["padding"], **common)


def _make_layer(layer_cfg, rank: int, data_format: str):
    """The fastcnn layer for one Keras layer config (arrays come later); ``rank``: the
    per-sample rank of its input (3 for images)."""
    kind, cfg = layer_cfg["class_name"], layer_cfg["config"]
    common = {"name": cfg["name"], "trainable": cfg.get("trainable", True)}
    image, first = rank == 3, data_format == "channels_first"
    if kind in _IMAGE_LAYERS + ("Flatten",):
        return _make_image_layer(layer_cfg, common, data_format)
    if kind == "Dense":
        return L.Dense(cfg["units"], _activation(layer_cfg), cfg["use_bias"], **common)
    if kind == "BatchNormalization":
        _require(layer_cfg, "axis", ((1,) if first else (-1, 3)) if image else (-1, 1))
        return L.BatchNormalization(momentum=cfg["momentum"], epsilon=cfg["epsilon"], **common)
    if kind == "PReLU":
        if image:
            _require(layer_cfg, "shared_axes", ((2, 3) if first else (1, 2),))
        return L.PReLU(**common)
    if kind == "ReLU":
        for key, default in (("max_value", None), ("negative_slope", 0.0), ("threshold", 0.0)):
            _require(layer_cfg, key, (default,))
        return L.ReLU(**common)
    if kind == "Softmax":
        _require(layer_cfg, "axis", (-1,) if not image else ((1,) if first else (-1,)))
    simple = {"Dropout": lambda: L.Dropout(cfg["rate"], **common),
              "Activation": lambda: L.Activation(_activation(layer_cfg), **common),
              "LeakyReLU": lambda: L.LeakyReLU(cfg["negative_slope"], **common),
              "ELU": lambda: L.ELU(cfg.get("alpha", 1.0), **common),
              "Softmax": lambda: L.Softmax(**common),
              "Add": lambda: L.Add(**common), "Multiply": lambda: L.Multiply(**common),
              "Concatenate": lambda: L.Concatenate(
                  _concatenate_axis(layer_cfg, rank, data_format), **common)}
    if kind not in simple:
        raise _unsupported(layer_cfg, "this layer type")
    return simple[kind]()


def _layer_arrays(kind: str, cfg: dict, stored: list, perm) -> list:
    """The Keras arrays of one layer in fastcnn's layout and in ``layer.parameters()`` +
    state order. ``perm``: the flat-feature order of its input (or None)."""
    if kind == "Conv2D":
        return [stored[0].transpose(3, 2, 0, 1)] + stored[1:]      # HWIO -> OIHW
    if kind == "Dense":
        kernel = stored[0] if perm is None else stored[0][perm]     # rows in CHW order
        return [kernel] + stored[1:]
    if kind == "BatchNormalization":
        stored = [a if perm is None else a[perm] for a in stored]
        it = iter(stored)
        gamma = next(it) if cfg.get("scale", True) else np.ones_like(stored[-1])
        beta = next(it) if cfg.get("center", True) else np.zeros_like(stored[-1])
        return [gamma, beta, next(it), next(it)]
    if kind == "PReLU":
        alpha = stored[0].reshape(-1)                               # (1, 1, C) -> (C,)
        return [alpha if perm is None else alpha[perm]]
    return stored


def _feature_order(layer_cfg, shapes: list, perms: list, data_format: str):
    """The flat-feature order of a layer's output from its inputs' (``shapes`` NCHW).

    ``perm[j]`` is the Keras feature that fastcnn's feature ``j`` holds; None means
    "the same order". Only vectors carry one: a ``Flatten`` to (H, W, C) order makes it, a
    ``Dense`` consumes it, an element-wise layer passes it on, a ``Concatenate`` of
    vectors joins its inputs' (offsetting each by the sizes before it)."""
    kind = layer_cfg["class_name"]
    if kind == "Flatten" and len(shapes[0]) == 3 and _flattens_hwc(layer_cfg, data_format):
        c, h, w = shapes[0]
        return np.arange(h * w * c).reshape(h, w, c).transpose(2, 0, 1).ravel()
    if kind in ("Dense", "Flatten") or all(p is None for p in perms):
        return None
    if kind == "Concatenate":
        sizes = [s[0] for s in shapes]
        offsets = np.cumsum([0] + sizes[:-1])
        return np.concatenate([off + (np.arange(n) if p is None else p)
                               for off, n, p in zip(offsets, sizes, perms)])
    if any(p is None or not np.array_equal(p, perms[0]) for p in perms):
        raise _unsupported(layer_cfg, "merging vectors flattened in different orders")
    return perms[0]


class _WeightStore:
    """The h5 arrays of each layer, found by Keras' class-based group names."""

    def __init__(self, store):
        self.store, self.used = store, {}

    def arrays(self, class_name: str) -> list:
        group = self.store.get(keras_weight_path(class_name, self.used))
        return [] if group is None else [np.asarray(group[str(i)]) for i in range(len(group))]


def _read_archive(path):
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"load_keras: no such file: {path!r}.")
    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
            weights = archive.read("model.weights.h5")
    except (zipfile.BadZipFile, KeyError) as exc:
        raise ValueError(f"load_keras: {path!r} is not a Keras 3 .keras file (a zip of "
                         f"config.json and model.weights.h5): {exc}. Hint: in Keras, "
                         f"model.save('model.keras').") from None
    if config.get("class_name") not in ("Sequential", "Functional"):
        raise NotImplementedError(f"load_keras: only Sequential and functional models are "
                                  f"read; {path!r} holds a {config.get('class_name')!r} "
                                  f"model (a subclassed model has no config of its layers).")
    return config, weights


def _input_shape(batch_shape, data_format: str) -> tuple:
    """Keras' ``batch_shape`` (None first) as fastcnn's per-sample NCHW shape."""
    if not batch_shape or None in batch_shape[1:]:
        raise ValueError(f"load_keras: the model has no fixed input shape ({batch_shape!r})."
                         f" Hint: build it with keras.Input((H, W, C)) before saving.")
    shape = tuple(batch_shape[1:])
    if len(shape) == 3 and data_format == "channels_last":
        return (shape[2], shape[0], shape[1])                      # HWC -> CHW
    return shape


def _load_layer(layer_cfg, rank, data_format, weights, perm, attach):
    """Make the fastcnn layer, attach it (``attach(layer)`` builds it and returns its
    output), then fill its arrays; returns that output."""
    layer = _make_layer(layer_cfg, rank, data_format)
    out = attach(layer)
    stored = weights.arrays(layer_cfg["class_name"])
    _assign(layer, _layer_arrays(layer_cfg["class_name"], layer_cfg["config"], stored, perm))
    return out


def _load_sequential(config, weights, data_format) -> Sequential:
    layer_cfgs = config["config"]["layers"]
    if layer_cfgs and layer_cfgs[0]["class_name"] == "InputLayer":
        batch_shape = layer_cfgs[0]["config"]["batch_shape"]
    else:
        batch_shape = (config.get("build_config") or {}).get("input_shape")
    model = Sequential(input_shape=_input_shape(batch_shape, data_format),
                       name=config["config"]["name"], data_format="channels_first")
    perm = None
    for layer_cfg in layer_cfgs:
        if layer_cfg["class_name"] == "InputLayer":
            continue
        shape = model.output_shape
        _load_layer(layer_cfg, len(shape), data_format, weights, perm, model.add)
        perm = _feature_order(layer_cfg, [shape], [perm], data_format)
    _check_output_order(perm)
    return model


def _inbound_names(layer_cfg) -> list:
    """The names of the layers a functional layer reads (its one call's arguments)."""
    nodes = layer_cfg.get("inbound_nodes") or []
    if len(nodes) != 1:
        raise _unsupported(layer_cfg, f"a layer called {len(nodes)} times (shared weights)")
    first = nodes[0]["args"][0]
    tensors = first if isinstance(first, list) else [first]
    return [t["config"]["keras_history"][0] for t in tensors]


def _endpoint(config: dict, key: str) -> str:
    """The single input/output layer name of ``config[key]`` (``[name, 0, 0]`` or a list
    of one such)."""
    value = config["config"][key]
    if value and isinstance(value[0], list):
        if len(value) != 1:
            raise NotImplementedError(f"load_keras: a model with {len(value)} {key}; "
                                      f"fastcnn models have one input and one output.")
        value = value[0]
    return value[0]


def _load_functional(config, weights, data_format) -> Model:
    tensors, perms = {}, {}                                  # layer name -> output, order
    for layer_cfg in config["config"]["layers"]:
        name = layer_cfg["config"]["name"]
        if layer_cfg["class_name"] == "InputLayer":
            tensors[name] = Input(_input_shape(layer_cfg["config"]["batch_shape"],
                                               data_format), name=name,
                                  data_format="channels_first")
            perms[name] = None
            continue
        ins = _inbound_names(layer_cfg)
        args = [tensors[n] for n in ins]
        shapes = [t.internal_shape for t in args]
        merge = layer_cfg["class_name"] in ("Add", "Multiply", "Concatenate")
        # (the lambda runs inside this iteration, so it sees this iteration's args)
        tensors[name] = _load_layer(
            layer_cfg, len(shapes[0]), data_format, weights, perms[ins[0]],
            lambda layer: layer(args if merge else args[0]))            # noqa: B023
        perms[name] = _feature_order(layer_cfg, shapes, [perms[n] for n in ins], data_format)
    output = _endpoint(config, "output_layers")
    _check_output_order(perms[output])
    return Model(tensors[_endpoint(config, "input_layers")], tensors[output],
                 name=config["config"]["name"])


def _check_output_order(perm) -> None:
    if perm is not None:
        raise NotImplementedError("load_keras: the model's output is the vector of a "
                                  "Flatten to (H, W, C) order with no Dense after it; "
                                  "fastcnn's would list the same numbers in (C, H, W) "
                                  "order.")


def load_keras(path):
    """Read a Keras 3 ``.keras`` file into a built fastcnn model (float32): a
    ``Sequential`` for a Keras ``Sequential``, a functional ``Model`` for a functional one.

    ``model.predict(x_nhwc.transpose(0, 3, 1, 2))`` then equals Keras'
    ``predict(x_nhwc)`` to float32 rounding (a channels-first Keras model takes the same
    NCHW data), and the model trains like any other: compile it, freeze layers
    (``layer.trainable = False``), ``pop()`` a Sequential's head and ``add()`` a new one
    (transfer learning).
    """
    # Deferred: h5py is an optional dependency (pip install "fastcnn[keras]").
    import h5py

    config, weights = _read_archive(path)
    data_format = _data_format(config["config"]["layers"])
    load = _load_sequential if config["class_name"] == "Sequential" else _load_functional
    with h5py.File(io.BytesIO(weights), "r") as store:
        return load(config, _WeightStore(store), data_format)


def _assign(layer, arrays: list) -> None:
    targets = [p.data for p in layer.parameters()] + list(layer.state.values())
    if len(targets) != len(arrays):
        raise ValueError(f"load_keras: layer {layer.name!r} has {len(targets)} arrays in "
                         f"fastcnn but {len(arrays)} in the file.")
    for target, value in zip(targets, arrays):
        if target.shape != value.shape:
            raise ValueError(f"load_keras: layer {layer.name!r}: an array of shape "
                             f"{value.shape} (converted) does not fit {target.shape}.")
        target[...] = value
