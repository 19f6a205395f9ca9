"""``load_keras(path)``: a Keras 3 ``.keras`` file as a fastcnn ``Sequential``.

A ``.keras`` file is a zip archive of ``config.json`` (the architecture, each layer's
constructor arguments) and ``model.weights.h5`` (the arrays, at
``layers/<snake_case class name>[_k]/vars/<i>``). Reading it needs ``h5py``
(``pip install "fastcnn[keras]"``) but not Keras. The layers fastcnn has are converted
to its layouts:

* images: Keras holds ``(N, H, W, C)`` ("channels_last"), fastcnn ``(N, C, H, W)``. The
  model is built for ``(C, H, W)``, so give it ``x.transpose(0, 3, 1, 2)``;
* conv kernels: Keras ``(KH, KW, C, F)`` -> fastcnn ``(F, C, KH, KW)``:
  ``kernel.transpose(3, 2, 0, 1)``;
* ``Flatten``: Keras flattens ``(H, W, C)``, fastcnn ``(C, H, W)``, so the arrays of the
  layers that read the flat vector (the next ``Dense``, and a ``BatchNormalization`` or
  ``PReLU`` before it) are re-ordered: fastcnn feature ``c*H*W + h*W + w`` is Keras'
  ``(h*W + w)*C + c``;
* batch norm, dense, PReLU (per channel) arrays as they are.

Supported layers: InputLayer, Conv2D, MaxPooling2D, AveragePooling2D, Dense, Flatten,
Dropout, BatchNormalization, Activation, ReLU, LeakyReLU, PReLU, ELU, Softmax, with the
activations fastcnn has (relu, leaky_relu, elu, sigmoid, tanh, softmax, linear).
Anything else is a ``NotImplementedError`` naming the layer and the argument.
"""

from __future__ import annotations

import io
import json
import os
import re
import zipfile

import numpy as np

from fastcnn.nn import layers as L
from fastcnn.train.model import Sequential

__all__ = ["load_keras", "keras_weight_path"]


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


def _make_layer(layer_cfg, image: bool):
    """The fastcnn layer for one Keras layer config (arrays come later)."""
    kind, cfg = layer_cfg["class_name"], layer_cfg["config"]
    common = {"name": cfg["name"], "trainable": cfg.get("trainable", True)}
    if kind in ("Conv2D", "MaxPooling2D", "AveragePooling2D", "Flatten"):
        _require(layer_cfg, "data_format", ("channels_last",))
    if kind == "Conv2D":
        _require(layer_cfg, "dilation_rate", ((1, 1),))
        _require(layer_cfg, "groups", (1,))
        return L.Conv2D(cfg["filters"], tuple(cfg["kernel_size"]), tuple(cfg["strides"]),
                        cfg["padding"], _activation(layer_cfg), cfg["use_bias"], **common)
    if kind in ("MaxPooling2D", "AveragePooling2D"):
        return getattr(L, kind)(tuple(cfg["pool_size"]), tuple(cfg["strides"]),
                                cfg["padding"], **common)
    if kind == "Dense":
        return L.Dense(cfg["units"], _activation(layer_cfg), cfg["use_bias"], **common)
    if kind == "BatchNormalization":
        _require(layer_cfg, "axis", (-1, 3) if image else (-1, 1))
        return L.BatchNormalization(momentum=cfg["momentum"], epsilon=cfg["epsilon"], **common)
    if kind == "PReLU":
        if image:
            _require(layer_cfg, "shared_axes", ((1, 2),))
        return L.PReLU(**common)
    if kind == "ReLU":
        for key, default in (("max_value", None), ("negative_slope", 0.0), ("threshold", 0.0)):
            _require(layer_cfg, key, (default,))
        return L.ReLU(**common)
    simple = {"Flatten": lambda: L.Flatten(**common),
              "Dropout": lambda: L.Dropout(cfg["rate"], **common),
              "Activation": lambda: L.Activation(_activation(layer_cfg), **common),
              "LeakyReLU": lambda: L.LeakyReLU(cfg["negative_slope"], **common),
              "ELU": lambda: L.ELU(cfg.get("alpha", 1.0), **common),
              "Softmax": lambda: L.Softmax(**common)}
    if kind not in simple:
        raise _unsupported(layer_cfg, "this layer type")
    if kind == "Softmax":
        _require(layer_cfg, "axis", (-1,))
    return simple[kind]()


def _layer_arrays(kind: str, cfg: dict, stored: list, perm) -> list:
    """The Keras arrays of one layer in fastcnn's layout and in ``layer.parameters()`` +
    state order. ``perm``: the flat-feature order after a Flatten (or None)."""
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
    if config.get("class_name") != "Sequential":
        raise NotImplementedError(f"load_keras: only Sequential models are read; "
                                  f"{path!r} holds a {config.get('class_name')!r} model.")
    return config, weights


def _input_shape(config) -> tuple:
    layers = config["config"]["layers"]
    if layers and layers[0]["class_name"] == "InputLayer":
        shape = layers[0]["config"]["batch_shape"]
    else:
        shape = (config.get("build_config") or {}).get("input_shape")
    if not shape or None in shape[1:]:
        raise ValueError(f"load_keras: the model has no fixed input shape ({shape!r}). "
                         f"Hint: build it with keras.Input((H, W, C)) before saving.")
    shape = tuple(shape[1:])
    return (shape[2], shape[0], shape[1]) if len(shape) == 3 else shape   # HWC -> CHW


def load_keras(path) -> Sequential:
    """Read a Keras 3 ``.keras`` file into a built fastcnn ``Sequential`` (float32).

    ``model.predict(x_nhwc.transpose(0, 3, 1, 2))`` then equals Keras'
    ``predict(x_nhwc)`` to float32 rounding, and the model trains like any other:
    compile it, freeze layers (``layer.trainable = False``), ``pop()`` the head and
    ``add()`` a new one (transfer learning).
    """
    # Deferred: h5py is an optional dependency (pip install "fastcnn[keras]").
    import h5py

    config, weights = _read_archive(path)
    layer_cfgs = [c for c in config["config"]["layers"] if c["class_name"] != "InputLayer"]
    model = Sequential(input_shape=_input_shape(config), name=config["config"]["name"])
    used: dict = {}
    perm = None                                   # flat-feature order after a Flatten
    with h5py.File(io.BytesIO(weights), "r") as store:
        for layer_cfg in layer_cfgs:
            shape = model.output_shape
            layer = _make_layer(layer_cfg, image=len(shape) == 3)
            model.add(layer)
            group = store.get(keras_weight_path(layer_cfg["class_name"], used))
            stored = [] if group is None else [np.asarray(group[str(i)])
                                               for i in range(len(group))]
            arrays = _layer_arrays(layer_cfg["class_name"], layer_cfg["config"], stored, perm)
            _assign(layer, arrays)
            if layer_cfg["class_name"] == "Flatten" and len(shape) == 3:
                c, h, w = shape
                perm = np.arange(h * w * c).reshape(h, w, c).transpose(2, 0, 1).ravel()
            elif layer_cfg["class_name"] == "Dense":
                perm = None
    return model


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
