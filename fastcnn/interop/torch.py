"""PyTorch interop: fastcnn weights out to ``torch.nn``, and (re-exported) back in.

fastcnn keeps PyTorch's layouts (NCHW images, OIHW conv weights), so the numbers move
as they are, except ``Dense``'s kernel ``(D_in, D_out)``, which is ``Linear.weight``
``(D_out, D_in)`` transposed. Two ways out:

* :func:`to_torch` builds the equivalent ``torch.nn`` module (in eval mode) with the
  weights copied in: ``to_torch(model)(torch.from_numpy(x))`` equals
  ``model.predict(x)``. A ``Sequential`` becomes a ``torch.nn.Sequential``; a functional
  ``Model`` a ``GraphModule`` whose ``forward`` follows the model's graph (a tensor read
  by several layers is computed once; ``Add``/``Multiply``/``Concatenate`` become a sum,
  a product, ``torch.cat``). A ``"channels_last"`` model's module takes (and returns)
  images as ``(N, H, W, C)``, permuting at its edge as ``predict`` does.
* :func:`to_torch_state_dict` gives a ``state_dict`` (an ``OrderedDict`` of tensors):
  for :func:`to_torch`'s module by default, or, with ``like=your_module``, for a
  ``torch.nn`` model you wrote yourself, matched by order: the entries of ``like``
  (``num_batches_tracked`` aside) receive fastcnn's arrays in model order, as
  :func:`load_state_dict_torch` reads them the other way.

The way in, :func:`load_state_dict_torch`, lives in :mod:`fastcnn.train.serialization`
(it needs no torch) and is re-exported here.
"""

from __future__ import annotations

import functools
from collections import OrderedDict

import numpy as np

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
from fastcnn.nn.layers.base import _all_layers
from fastcnn.train.serialization import load_state_dict_torch

__all__ = ["to_torch", "to_torch_state_dict", "load_state_dict_torch", "torch_arrays"]


def torch_arrays(model) -> list[tuple[str, np.ndarray]]:
    """``(what, array)`` in the order PyTorch modules hold them, in PyTorch's layout:
    conv ``weight, bias``; dense and maxout ``weight`` (= kernel.T), ``bias``; batch norm
    ``weight, bias, running_mean, running_var``; PReLU ``weight``. The same order
    :func:`load_state_dict_torch` consumes."""
    if not getattr(model, "built", False):
        raise RuntimeError("to_torch_state_dict: the model is not built. Hint: pass "
                           "input_shape=... to Sequential.")
    arrays = []
    for layer in _all_layers(model.layers):
        if isinstance(layer, (Conv2D, Dense, Maxout)):
            kernel = layer.kernel.data if isinstance(layer, Conv2D) else layer.kernel.data.T
            arrays.append((f"{layer.name}/kernel", kernel))
            if layer.bias is not None:
                arrays.append((f"{layer.name}/bias", layer.bias.data))
        elif isinstance(layer, BatchNormalization):
            arrays += [(f"{layer.name}/gamma", layer.gamma.data),
                       (f"{layer.name}/beta", layer.beta.data),
                       (f"{layer.name}/moving_mean", layer.state["moving_mean"]),
                       (f"{layer.name}/moving_variance", layer.state["moving_variance"])]
        elif isinstance(layer, PReLU):
            arrays.append((f"{layer.name}/alpha", layer.alpha.data))
        elif layer._params:
            raise NotImplementedError(f"to_torch: layer {layer.name!r} "
                                      f"({type(layer).__name__}) has no PyTorch counterpart.")
    return arrays


@functools.cache
def _module_classes() -> dict:
    """The few ``torch.nn.Module`` classes torch.nn has no ready-made twin of, by name,
    defined once on first use (torch is imported lazily, so they cannot live at module
    level)."""
    # Deferred: torch is optional (only this module and the tests use it).
    import torch
    from torch import nn

    classes = _structure_classes(torch, nn) + _layer_classes(torch, nn)
    return {cls.__name__: cls for cls in classes}


def _structure_classes(torch, nn) -> tuple:
    """Modules that wire others together: a residual block, a merge, a graph, the
    permutation at a channels-last model's edge."""

    class ResidualBlock(nn.Module):
        """``main(x) + shortcut(x)`` (``x`` itself when there is no shortcut)."""

        def __init__(self, main, shortcut):
            super().__init__()
            self.main, self.shortcut = main, shortcut

        def forward(self, x):
            return self.main(x) + (x if self.shortcut is None else self.shortcut(x))

    class Merge(nn.Module):
        """A merge layer on a list of tensors: "add" (sum), "multiply" (product, left
        to right as fastcnn computes it) or "concatenate" along ``dim``."""

        def __init__(self, kind: str, dim: int = 1):
            super().__init__()
            self.kind, self.dim = kind, dim

        def forward(self, xs):
            if self.kind == "concatenate":
                return torch.cat(xs, dim=self.dim)
            out = xs[0]
            for x in xs[1:]:
                out = out + x if self.kind == "add" else out * x
            return out

        def extra_repr(self):
            return repr(self.kind) + (f", dim={self.dim}" if self.kind == "concatenate" else "")

    class Permute(nn.Module):
        """``x.permute(*dims)`` (the edge of a channels-last model)."""

        def __init__(self, *dims):
            super().__init__()
            self.dims = dims

        def forward(self, x):
            return x.permute(*self.dims).contiguous()

    class GraphModule(nn.Module):
        """A functional model's graph: ``blocks[i]`` computes node ``i + 1`` from the
        outputs of the nodes ``inbound[i]`` (node 0 is the input; a merge block gets the
        list of them), in topological order; the output is the last node's."""

        def __init__(self, blocks, inbound, is_merge):
            super().__init__()
            self.blocks = nn.ModuleList(blocks)
            self.inbound, self.is_merge = inbound, is_merge

        def forward(self, x):
            values = [x]
            for block, ins, merge in zip(self.blocks, self.inbound, self.is_merge):
                values.append(block([values[j] for j in ins] if merge else values[ins[0]]))
            return values[-1]

    return ResidualBlock, Merge, Permute, GraphModule


def _layer_classes(torch, nn) -> tuple:
    """Modules computing a fastcnn layer torch.nn has no single module for."""

    class MaxOverPieces(nn.Module):
        """Maxout's max: ``(N, units * pieces)`` -> ``(N, units, pieces)`` -> max over
        the pieces (column ``u * pieces + k`` is piece ``k`` of unit ``u``)."""

        def __init__(self, units: int, pieces: int):
            super().__init__()
            self.units, self.pieces = units, pieces

        def forward(self, z):
            return z.reshape(-1, self.units, self.pieces).amax(dim=2)

    class AvgPoolExcludingPadding(nn.Module):
        """Average pooling over the real (non-padding) pixels for any padding, also the
        asymmetric "same" one: ``F.pad`` with zeros, a windowed average that counts the
        padding (``sum / (KH * KW)``), times ``(KH * KW) / count`` per output pixel
        (``count``: the window's real pixels, a fixed map for the layer's input size).
        The simple version it equals: ``nn.AvgPool2d(count_include_pad=False,
        padding=p)``, which needs the same padding on both sides and ``p <= K // 2``."""

        def __init__(self, pool_size, strides, pads, scale):
            super().__init__()
            self.pool_size, self.strides, self.pads = pool_size, strides, pads
            # not persistent: no state_dict entry (entries are matched by order)
            self.register_buffer("scale", torch.from_numpy(scale), persistent=False)

        def forward(self, x):
            (top, bottom), (left, right) = self.pads
            padded = nn.functional.pad(x, (left, right, top, bottom))
            mean = nn.functional.avg_pool2d(padded, self.pool_size, self.strides)
            return mean * self.scale.to(x.dtype)

    return MaxOverPieces, AvgPoolExcludingPadding


def _window_modules(nn, layer, pad_value: float) -> tuple[list, tuple[int, int]]:
    """``(pad modules, padding)`` for a window layer: PyTorch's own ``padding=`` is the
    same on both sides, so an asymmetric one (TensorFlow's "same") becomes an explicit
    ``ConstantPad2d`` (with ``pad_value``) before a layer with ``padding=0``."""
    (top, bottom), (left, right) = layer._pads
    if top == bottom and left == right:
        return [], (top, left)
    return [nn.ConstantPad2d((left, right, top, bottom), pad_value)], (0, 0)


def _real_pixel_counts(size: int, kernel: int, stride: int, before: int, out: int):
    """How many of the ``kernel`` rows of each of the ``out`` windows fall inside
    ``[0, size)`` (window ``i`` covers padded rows ``i * stride - before`` onwards)."""
    start = np.arange(out) * stride - before
    return np.minimum(start + kernel, size) - np.maximum(start, 0)


def _average_pool_modules(nn, layer) -> list:
    """Keras' average (padding excluded from the count) as torch modules."""
    (top, bottom), (left, right) = layer._pads
    (kh, kw), (sh, sw) = layer.pool_size, layer.strides
    if top == bottom and left == right and top <= kh // 2 and left <= kw // 2:
        return [nn.AvgPool2d(layer.pool_size, layer.strides, padding=(top, left),
                             count_include_pad=False)]
    _, h, w = layer.input_shape
    _, oh, ow = layer.output_shape
    counts = np.outer(_real_pixel_counts(h, kh, sh, top, oh),
                      _real_pixel_counts(w, kw, sw, left, ow))
    scale = (kh * kw / counts).astype(layer.dtype)          # (OH, OW), broadcast over N, C
    cls = _module_classes()["AvgPoolExcludingPadding"]
    return [cls(layer.pool_size, layer.strides, layer._pads, scale)]


def _modules_for(nn, layer) -> list:
    """The ``torch.nn`` modules computing ``layer`` (and its fused activation)."""
    classes = _module_classes()
    if isinstance(layer, Conv2D):
        pad, padding = _window_modules(nn, layer, 0.0)
        f, c, kh, kw = layer.kernel.shape
        modules = pad + [nn.Conv2d(c, f, (kh, kw), stride=layer.strides, padding=padding,
                                   bias=layer.bias is not None)]
    elif isinstance(layer, MaxPooling2D):
        pad, padding = _window_modules(nn, layer, float("-inf"))  # padding never wins
        modules = pad + [nn.MaxPool2d(layer.pool_size, layer.strides, padding=padding)]
    elif isinstance(layer, AveragePooling2D):
        modules = _average_pool_modules(nn, layer)
    elif isinstance(layer, BatchNormalization):
        norm = nn.BatchNorm2d if len(layer.input_shape) == 3 else nn.BatchNorm1d
        # Keras' momentum 0.99 weighs the old statistic; PyTorch's 0.01 the new one.
        modules = [norm(layer.gamma.shape[0], eps=layer.epsilon, momentum=1 - layer.momentum)]
    elif isinstance(layer, Dense):
        modules = [nn.Linear(*layer.kernel.shape, bias=layer.bias is not None)]
    elif isinstance(layer, Maxout):
        modules = [nn.Linear(*layer.kernel.shape),
                   classes["MaxOverPieces"](layer.units, layer.pieces)]
    elif isinstance(layer, Residual):
        modules = [_residual_module(nn, layer)]
    elif isinstance(layer, (Add, Multiply, Concatenate)):
        modules = [_merge_module(layer)]
    else:
        modules = _simple_modules(nn, layer)
    if layer._activation is not None:
        modules += _modules_for(nn, layer._activation)
    return modules


def _simple_modules(nn, layer) -> list:
    """Layers without weights of their own layout: one torch.nn module (or none)."""
    simple = {Flatten: lambda: nn.Flatten(), Dropout: lambda: nn.Dropout(layer.rate),
              Activation: lambda: None, ReLU: lambda: nn.ReLU(),
              LeakyReLU: lambda: nn.LeakyReLU(layer.alpha),
              PReLU: lambda: nn.PReLU(layer.alpha.shape[0]),
              ELU: lambda: nn.ELU(layer.alpha), Sigmoid: lambda: nn.Sigmoid(),
              Tanh: lambda: nn.Tanh(), Softmax: lambda: nn.Softmax(dim=1)}
    if type(layer) not in simple:
        raise NotImplementedError(
            f"to_torch: layer {layer.name!r} ({type(layer).__name__}) has no torch.nn "
            f"counterpart here; supported: {sorted(c.__name__ for c in simple)} and "
            f"Conv2D, MaxPooling2D, AveragePooling2D, BatchNormalization, Dense, Maxout, "
            f"Residual, Add, Multiply, Concatenate.")
    module = simple[type(layer)]()
    return [] if module is None else [module]


def _merge_module(layer):
    merge = _module_classes()["Merge"]
    if isinstance(layer, Concatenate):
        # the layer's axis is read in the model's data format; the NCHW axis it joins:
        return merge("concatenate", layer._internal_axis(len(layer.input_shape[0])) + 1)
    return merge("add" if isinstance(layer, Add) else "multiply")


def _residual_module(nn, layer):
    """``main(x) + shortcut(x)`` as one module."""
    main = nn.Sequential(*[m for sub in layer.main for m in _modules_for(nn, sub)])
    shortcut = None
    if layer.shortcut is not None:
        shortcut = nn.Sequential(*_modules_for(nn, layer.shortcut))
    return _module_classes()["ResidualBlock"](main, shortcut)


def _graph_module(nn, graph):
    """A ``GraphModule`` over a functional model's graph (one block per node)."""
    nodes = graph.nodes[1:]
    blocks = [nn.Sequential(*_modules_for(nn, layer)) for layer in nodes]
    return _module_classes()["GraphModule"](blocks, [list(ins) for ins in graph.inbound[1:]],
                                            [layer.is_merge for layer in nodes])


def _with_edge(nn, model, module):
    """A channels-last model's module takes (N, H, W, C) and returns images so too."""
    if model.data_format != "channels_last":
        return module
    permute = _module_classes()["Permute"]
    modules = [permute(0, 3, 1, 2)] if len(model.graph.nodes[0].output_shape) == 3 else []
    modules.append(module)
    if len(model.output_shape) == 3:
        modules.append(permute(0, 2, 3, 1))
    return module if len(modules) == 1 else nn.Sequential(*modules)


def to_torch(model):
    """The equivalent ``torch.nn`` module (eval mode, model's dtype) with the weights of
    ``model`` (built) copied in: a ``torch.nn.Sequential`` for a ``Sequential``, a
    ``GraphModule`` following the graph for a functional ``Model``."""
    # Deferred: torch is optional (only this module and the tests use it).
    import torch
    from torch import nn

    if not getattr(model, "built", False):
        raise RuntimeError("to_torch: the model is not built. Hint: pass input_shape=... "
                           "to Sequential.")
    dtype = {np.dtype(np.float32): torch.float32,
             np.dtype(np.float64): torch.float64}[np.dtype(model.dtype)]
    graph = model.graph
    if all(ins == (i - 1,) for i, ins in enumerate(graph.inbound) if i):      # a chain
        module = nn.Sequential(*[m for layer in graph.nodes[1:]
                                 for m in _modules_for(nn, layer)])
    else:
        module = _graph_module(nn, graph)
    module = _with_edge(nn, model, module).to(dtype).eval()
    module.load_state_dict(to_torch_state_dict(model, like=module))
    return module


def to_torch_state_dict(model, like=None) -> OrderedDict:
    """A PyTorch ``state_dict`` holding ``model``'s weights.

    ``like``: None (the keys of :func:`to_torch`'s module), or a ``torch.nn.Module`` or a
    ``state_dict`` whose entries, in order, are the tensors to fill
    (``your_module.load_state_dict(to_torch_state_dict(model, like=your_module))``).
    ``num_batches_tracked`` entries keep ``like``'s value. Shapes are checked.
    """
    # Deferred: torch is optional (only this module and the tests use it).
    import torch

    if like is None:
        like = to_torch(model)
    reference = like.state_dict() if hasattr(like, "state_dict") else like
    arrays = iter(torch_arrays(model))
    result = OrderedDict()
    for key, target in reference.items():
        if key.endswith("num_batches_tracked"):
            result[key] = target.clone()
            continue
        what, value = next(arrays, (None, None))
        if what is None:
            raise ValueError(f"to_torch_state_dict: `like` has more entries than the model "
                             f"has arrays; {key!r} is left over.")
        if tuple(target.shape) != value.shape:
            raise ValueError(f"to_torch_state_dict: {key!r} has shape {tuple(target.shape)} "
                             f"in `like` but fastcnn's {what!r} has {value.shape} (in "
                             f"PyTorch's layout); the architectures differ.")
        result[key] = torch.from_numpy(np.array(value)).to(target.dtype)
    extra = next(arrays, None)
    if extra is not None:
        raise ValueError(f"to_torch_state_dict: the model has arrays `like` has no entry "
                         f"for (first: {extra[0]!r}); the architectures differ.")
    return result
