"""``export_onnx(model, path)``: a built fastcnn model as an ONNX file for inference.

ONNX is NCHW with OIHW convolution weights, as fastcnn, so most layers map to one ONNX
operator with the same numbers (opset 17):

==========================  ============================================================
fastcnn layer               ONNX
==========================  ============================================================
Conv2D                      Conv (``pads = [top, left, bottom, right]``: the asymmetric
                            "same" padding of TensorFlow's rule is exact)
MaxPooling2D                MaxPool (padding never wins a max there either)
AveragePooling2D            AveragePool with ``count_include_pad=0`` (Keras' "same")
BatchNormalization          BatchNormalization with the moving statistics (inference)
Dense                       Gemm ``x @ W + b`` (W is ``(D_in, D_out)``, no transpose)
Flatten                     Flatten(axis=1), C order as fastcnn's
Dropout                     nothing (the identity at inference)
ReLU, LeakyReLU, PReLU,     Relu, LeakyRelu, PRelu (slope ``(C, 1, 1)`` for images),
ELU, Sigmoid, Tanh,         Elu, Sigmoid, Tanh, Softmax(axis=1)
Softmax, Activation
Maxout                      Gemm, Reshape to ``(N, units, pieces)``, ReduceMax
Residual                    the main branch, the shortcut (or none), Add
Add, Multiply               Sum (any number of inputs), a chain of Mul
Concatenate                 Concat on the NCHW axis the layer joins
==========================  ============================================================

Any model exports, ``Sequential`` or functional ``Model(inputs, outputs)``: the nodes
follow the model's graph (``model.graph``: layers in topological order and the tensors
each reads), so a tensor read by several layers is one ONNX value read by several nodes.
The graph has one input ``"input"`` and one output ``"output"`` (``N`` symbolic), in the
model's data format: a ``"channels_last"`` model gets a Transpose to NCHW after the input
(and back before an image output), as its ``predict`` does at its edge. Both are float32:
a float64 model's weights are rounded to float32 (ONNX Runtime has no float64
convolution on CPU). Layers are exported with the weights they hold now; a fused
activation (``Conv2D(..., activation="relu")``) becomes its own node.
Needs the ``onnx`` package (``pip install "fastcnn[onnx]"``).
"""

from __future__ import annotations

import os

import numpy as np

from fastcnn.common.data_format import to_external_shape
from fastcnn.nn.layers import (
    ELU,
    Activation,
    Add,
    AveragePooling2D,
    BatchNormalization,
    Concatenate,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    LeakyReLU,
    Maxout,
    MaxPooling2D,
    Multiply,
    PReLU,
    ReLU,
    Residual,
    Sigmoid,
    Softmax,
    Tanh,
)

__all__ = ["export_onnx", "OPSET"]

#: The ONNX operator set the graph is written for (onnxruntime >= 1.13 runs it).
OPSET = 17


class _Graph:
    """The ONNX nodes and weight tensors of a graph under construction."""

    def __init__(self, helper, numpy_helper, dtype):
        self.helper, self.numpy_helper, self.dtype = helper, numpy_helper, dtype
        self.nodes, self.initializers = [], []
        self._count = 0

    def _fresh(self, hint: str) -> str:
        self._count += 1
        return f"{hint}_{self._count}"

    def const(self, name: str, array) -> str:
        """A weight tensor named ``name`` (made unique), in the graph's dtype."""
        name = self._fresh(name)
        value = np.ascontiguousarray(array, dtype=self.dtype)
        self.initializers.append(self.numpy_helper.from_array(value, name=name))
        return name

    def const_int64(self, name: str, values) -> str:
        name = self._fresh(name)
        self.initializers.append(
            self.numpy_helper.from_array(np.asarray(values, dtype=np.int64), name=name))
        return name

    def op(self, op_type: str, inputs: list, name: str, **attributes) -> str:
        """Add one node; returns the name of its (single) output."""
        output = self._fresh(name)
        self.nodes.append(self.helper.make_node(op_type, inputs, [output], name=output,
                                                **attributes))
        return output


def _window_attributes(layer, size) -> dict:
    """``kernel_shape``/``strides``/``pads`` of a window layer (Conv2D, pooling)."""
    (top, bottom), (left, right) = layer._pads
    return {"kernel_shape": list(size), "strides": list(layer.strides),
            "pads": [top, left, bottom, right]}


def _conv(g, layer, x):
    inputs = [x, g.const(f"{layer.name}/kernel", layer.kernel.data)]
    if layer.bias is not None:
        inputs.append(g.const(f"{layer.name}/bias", layer.bias.data))
    return g.op("Conv", inputs, layer.name, **_window_attributes(layer, layer.kernel_size))


def _max_pool(g, layer, x):
    return g.op("MaxPool", [x], layer.name, **_window_attributes(layer, layer.pool_size))


def _average_pool(g, layer, x):
    return g.op("AveragePool", [x], layer.name, count_include_pad=0,
                **_window_attributes(layer, layer.pool_size))


def _batch_norm(g, layer, x):
    inputs = [x] + [g.const(f"{layer.name}/{key}", value) for key, value in (
        ("gamma", layer.gamma.data), ("beta", layer.beta.data),
        ("moving_mean", layer.state["moving_mean"]),
        ("moving_variance", layer.state["moving_variance"]))]
    return g.op("BatchNormalization", inputs, layer.name, epsilon=float(layer.epsilon))


def _dense(g, layer, x):
    # Gemm: Y = alpha * A @ B + beta * C, here x @ W + b with W (D_in, D_out) as is.
    inputs = [x, g.const(f"{layer.name}/kernel", layer.kernel.data)]
    if layer.bias is not None:
        inputs.append(g.const(f"{layer.name}/bias", layer.bias.data))
    return g.op("Gemm", inputs, layer.name)


def _maxout(g, layer, x):
    # z = x @ W + b, (N, units * pieces) with column u * pieces + k; out = max over k.
    z = g.op("Gemm", [x, g.const(f"{layer.name}/kernel", layer.kernel.data),
                      g.const(f"{layer.name}/bias", layer.bias.data)], f"{layer.name}/affine")
    shape = g.const_int64(f"{layer.name}/shape", [-1, layer.units, layer.pieces])
    pieces = g.op("Reshape", [z, shape], f"{layer.name}/pieces")
    return g.op("ReduceMax", [pieces], layer.name, axes=[2], keepdims=0)


def _prelu(g, layer, x):
    # ONNX broadcasts the slope against (N, C, H, W) from the right: (C, 1, 1).
    slope = layer.alpha.data.reshape(layer.alpha.shape + (1,) * (len(layer.input_shape) - 1))
    return g.op("PRelu", [x, g.const(f"{layer.name}/alpha", slope)], layer.name)


def _residual(g, layer, x):
    h = x
    for sub in layer.main:
        h = _emit(g, sub, h)
    shortcut = x if layer.shortcut is None else _emit(g, layer.shortcut, x)
    return g.op("Add", [h, shortcut], layer.name)


def _multiply(g, layer, xs):
    # ONNX's Mul takes two inputs: x_1 * x_2 * ... as fastcnn computes it, left to right.
    out = xs[0]
    for x in xs[1:]:
        out = g.op("Mul", [out, x], layer.name)
    return out


def _concatenate(g, layer, xs):
    # The layer's axis is read in the model's data format; the NCHW axis it joins:
    axis = layer._internal_axis(len(layer.input_shape[0])) + 1
    return g.op("Concat", xs, layer.name, axis=axis)


#: layer class -> function(graph, layer, input name) -> output name (before activation);
#: a merge layer's function gets the list of its input names
_EXPORTERS = {
    Conv2D: _conv,
    MaxPooling2D: _max_pool,
    AveragePooling2D: _average_pool,
    BatchNormalization: _batch_norm,
    Dense: _dense,
    Maxout: _maxout,
    Flatten: lambda g, layer, x: g.op("Flatten", [x], layer.name, axis=1),
    Dropout: lambda g, layer, x: x,
    Activation: lambda g, layer, x: x,       # its named activation follows
    ReLU: lambda g, layer, x: g.op("Relu", [x], layer.name),
    LeakyReLU: lambda g, layer, x: g.op("LeakyRelu", [x], layer.name,
                                        alpha=float(layer.alpha)),
    PReLU: _prelu,
    ELU: lambda g, layer, x: g.op("Elu", [x], layer.name, alpha=float(layer.alpha)),
    Sigmoid: lambda g, layer, x: g.op("Sigmoid", [x], layer.name),
    Tanh: lambda g, layer, x: g.op("Tanh", [x], layer.name),
    Softmax: lambda g, layer, x: g.op("Softmax", [x], layer.name, axis=1),
    Residual: _residual,
    Add: lambda g, layer, xs: g.op("Sum", xs, layer.name),
    Multiply: _multiply,
    Concatenate: _concatenate,
}


def _emit(g: _Graph, layer, x) -> str:
    """The nodes of ``layer`` (then of its fused activation) applied to tensor ``x`` (the
    list of input names for a merge layer)."""
    exporter = _EXPORTERS.get(type(layer))
    if exporter is None:
        raise NotImplementedError(
            f"export_onnx: layer {layer.name!r} ({type(layer).__name__}) has no ONNX "
            f"export; exportable layers: {sorted(cls.__name__ for cls in _EXPORTERS)}.")
    out = exporter(g, layer, x)
    if layer._activation is not None:
        out = _emit(g, layer._activation, out)
    return out


def _emit_graph(g: _Graph, graph, x: str) -> str:
    """The nodes of every layer of ``graph`` in its topological order, node 0 (the
    InputLayer) being tensor ``x``; returns the name of the last node's output."""
    names = [x] + [None] * (len(graph.nodes) - 1)
    for i in range(1, len(graph.nodes)):
        layer, ins = graph.nodes[i], graph.inbound[i]
        arg = [names[j] for j in ins] if layer.is_merge else names[ins[0]]
        names[i] = _emit(g, layer, arg)
    return names[-1]


def to_onnx(model):
    """The ``onnx.ModelProto`` of a built model (checked by ``onnx.checker``)."""
    # Deferred: onnx is an optional dependency (pip install "fastcnn[onnx]").
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    if not getattr(model, "built", False):
        raise RuntimeError("export_onnx: the model is not built, so it has no weights yet. "
                           "Hint: pass input_shape=... to Sequential or call model.build().")
    g = _Graph(helper, numpy_helper, np.float32)
    graph = model.graph
    in_shape, out_shape = graph.nodes[0].output_shape, graph.nodes[-1].output_shape
    # A channels-last model takes and returns images as (N, H, W, C): transpose at the
    # edge, as model.predict does (train/edge.py); the layers compute in NCHW.
    channels_last = model.data_format == "channels_last"
    x = "input"
    if channels_last and len(in_shape) == 3:
        x = g.op("Transpose", [x], "to_nchw", perm=[0, 3, 1, 2])
    x = _emit_graph(g, graph, x)
    if channels_last and len(out_shape) == 3:
        x = g.op("Transpose", [x], "to_nhwc", perm=[0, 2, 3, 1])
    g.nodes.append(helper.make_node("Identity", [x], ["output"], name="output"))
    declared = [helper.make_tensor_value_info(
        name, TensorProto.FLOAT, ["N", *to_external_shape(shape, model.data_format)])
        for name, shape in (("input", in_shape), ("output", out_shape))]
    onnx_graph = helper.make_graph(g.nodes, model.name, declared[:1], declared[1:],
                                   initializer=g.initializers)
    proto = helper.make_model(onnx_graph, producer_name="fastcnn",
                              opset_imports=[helper.make_opsetid("", OPSET)])
    onnx.checker.check_model(proto, full_check=True)
    return proto


def export_onnx(model, path) -> str:
    """Write ``model`` (built) to ``path`` as an ONNX file; returns ``path`` as a str.

    Run it with any ONNX runtime, e.g.
    ``onnxruntime.InferenceSession(path).run(None, {"input": x})[0]``, which equals
    ``model.predict(x)`` to float32 rounding.
    """
    path = os.fspath(path)
    if os.path.splitext(path)[1].lower() != ".onnx":
        raise ValueError(f"export_onnx: path must end in '.onnx'; got {path!r}.")
    # Deferred: onnx is an optional dependency (pip install "fastcnn[onnx]").
    import onnx

    onnx.save(to_onnx(model), path)
    return path
