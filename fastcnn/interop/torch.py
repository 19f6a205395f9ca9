"""PyTorch interop: fastcnn weights out to ``torch.nn``, and (re-exported) back in.

fastcnn keeps PyTorch's layouts (NCHW images, OIHW conv weights), so the numbers move
as they are, except ``Dense``'s kernel ``(D_in, D_out)``, which is ``Linear.weight``
``(D_out, D_in)`` transposed. Two ways out:

* :func:`to_torch` builds the equivalent ``torch.nn.Sequential`` (in eval mode) with
  the weights copied in: ``to_torch(model)(torch.from_numpy(x))`` equals
  ``model.predict(x)``.
* :func:`to_torch_state_dict` gives a ``state_dict`` (an ``OrderedDict`` of tensors):
  for :func:`to_torch`'s module by default, or, with ``like=your_module``, for a
  ``torch.nn`` model you wrote yourself, matched by order: the entries of ``like``
  (``num_batches_tracked`` aside) receive fastcnn's arrays in model order, as
  :func:`load_state_dict_torch` reads them the other way.

The way in, :func:`load_state_dict_torch`, lives in :mod:`fastcnn.train.serialization`
(it needs no torch) and is re-exported here.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from fastcnn.nn.layers import (
    ELU,
    Activation,
    AveragePooling2D,
    BatchNormalization,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    LeakyReLU,
    MaxPooling2D,
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
    conv ``weight, bias``; dense ``weight`` (= kernel.T), ``bias``; batch norm
    ``weight, bias, running_mean, running_var``; PReLU ``weight``. The same order
    :func:`load_state_dict_torch` consumes."""
    if not getattr(model, "built", False):
        raise RuntimeError("to_torch_state_dict: the model is not built. Hint: pass "
                           "input_shape=... to Sequential.")
    arrays = []
    for layer in _all_layers(model.layers):
        if isinstance(layer, (Conv2D, Dense)):
            kernel = layer.kernel.data.T if isinstance(layer, Dense) else layer.kernel.data
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


def _window_modules(nn, layer, pad_value: float) -> tuple[list, tuple[int, int]]:
    """``(pad modules, padding)`` for a window layer: PyTorch's own ``padding=`` is the
    same on both sides, so an asymmetric one (TensorFlow's "same") becomes an explicit
    ``ConstantPad2d`` (with ``pad_value``) before a layer with ``padding=0``."""
    (top, bottom), (left, right) = layer._pads
    if top == bottom and left == right:
        return [], (top, left)
    return [nn.ConstantPad2d((left, right, top, bottom), pad_value)], (0, 0)


def _modules_for(nn, layer) -> list:
    """The ``torch.nn`` modules computing ``layer`` (and its fused activation)."""
    if isinstance(layer, Conv2D):
        pad, padding = _window_modules(nn, layer, 0.0)
        f, c, kh, kw = layer.kernel.shape
        modules = pad + [nn.Conv2d(c, f, (kh, kw), stride=layer.strides, padding=padding,
                                   bias=layer.bias is not None)]
    elif isinstance(layer, MaxPooling2D):
        pad, padding = _window_modules(nn, layer, float("-inf"))  # padding never wins
        modules = pad + [nn.MaxPool2d(layer.pool_size, layer.strides, padding=padding)]
    elif isinstance(layer, AveragePooling2D):
        if any(sum(pair) for pair in layer._pads):
            raise NotImplementedError(
                f"to_torch: {layer.name!r}: AveragePooling2D with padding excludes the "
                f"padding from the count (Keras); torch.nn.AvgPool2d cannot express that "
                f"for this padding. Hint: use padding='valid'.")
        modules = [nn.AvgPool2d(layer.pool_size, layer.strides)]
    elif isinstance(layer, BatchNormalization):
        norm = nn.BatchNorm2d if len(layer.input_shape) == 3 else nn.BatchNorm1d
        # Keras' momentum 0.99 weighs the old statistic; PyTorch's 0.01 the new one.
        modules = [norm(layer.gamma.shape[0], eps=layer.epsilon, momentum=1 - layer.momentum)]
    elif isinstance(layer, Dense):
        modules = [nn.Linear(*layer.kernel.shape, bias=layer.bias is not None)]
    elif isinstance(layer, Residual):
        modules = [_residual_module(nn, layer)]
    else:
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
                f"Conv2D, MaxPooling2D, AveragePooling2D, BatchNormalization, Dense, "
                f"Residual.")
        module = simple[type(layer)]()
        modules = [] if module is None else [module]
    if layer._activation is not None:
        modules += _modules_for(nn, layer._activation)
    return modules


def _residual_module(nn, layer):
    """``main(x) + shortcut(x)`` as a module (defined here: torch is imported lazily)."""

    class ResidualBlock(nn.Module):
        def __init__(self, main, shortcut):
            super().__init__()
            self.main, self.shortcut = main, shortcut

        def forward(self, x):
            return self.main(x) + (x if self.shortcut is None else self.shortcut(x))

    main = nn.Sequential(*[m for sub in layer.main for m in _modules_for(nn, sub)])
    shortcut = None
    if layer.shortcut is not None:
        shortcut = nn.Sequential(*_modules_for(nn, layer.shortcut))
    return ResidualBlock(main, shortcut)


def to_torch(model):
    """The equivalent ``torch.nn.Sequential`` (eval mode, model's dtype) with the weights
    of ``model`` (built) copied in."""
    # Deferred: torch is optional (only this module and the tests use it).
    import torch
    from torch import nn

    if not getattr(model, "built", False):
        raise RuntimeError("to_torch: the model is not built. Hint: pass input_shape=... "
                           "to Sequential.")
    dtype = {np.dtype(np.float32): torch.float32,
             np.dtype(np.float64): torch.float64}[np.dtype(model.dtype)]
    module = nn.Sequential(*[m for layer in model.layers for m in _modules_for(nn, layer)])
    module = module.to(dtype).eval()
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
