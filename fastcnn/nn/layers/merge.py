"""Merge layers of the functional API: ``Add``, ``Multiply``, ``Concatenate`` (and their
Keras function forms ``add``, ``multiply``, ``concatenate``).

A merge layer takes a *list* of batches ``[x_1, ..., x_k]`` (k >= 2) and returns one:

=============  ==========================  =========================================
layer          forward                     backward (``g = dL/dout``)
=============  ==========================  =========================================
Add            ``x_1 + ... + x_k``         ``dx_i = g``
Multiply       ``x_1 * ... * x_k``         ``dx_i = g * prod_{j != i} x_j``
Concatenate    stack along ``axis``        ``dx_i`` = the slice of ``g`` that ``x_i`` filled
=============  ==========================  =========================================

``backward`` returns the list ``[dx_1, ..., dx_k]``; the model adds up the gradients of a
tensor that feeds several layers.
"""

from __future__ import annotations

import numpy as np

from fastcnn.common.validation import _is_int
from fastcnn.nn.layers.base import Layer, _normalize_dtype, normalize_shape

__all__ = ["Add", "Multiply", "Concatenate", "add", "multiply", "concatenate"]


class _Merge(Layer):
    """Base of the merge layers: list-valued ``build``/``forward``/``backward``."""

    is_merge = True

    def build(self, input_shape, dtype=np.float32) -> None:
        where = f"{type(self).__name__} '{self.name}'"
        if not isinstance(input_shape, (list, tuple)) or len(input_shape) < 2 or not all(
                isinstance(s, (list, tuple)) for s in input_shape):
            raise ValueError(f"{where}: needs a list of at least 2 input shapes; got "
                             f"{input_shape!r}.")
        shapes = [normalize_shape(where, s) for s in input_shape]
        dtype = _normalize_dtype(where, dtype)
        if self.built:
            if (shapes, dtype) != (self.input_shape, self.dtype):
                raise ValueError(f"{where}: already built for {self.input_shape}; got {shapes}.")
            return
        self.output_shape = self.compute_output_shape(shapes)
        self.input_shape, self.dtype, self.built = shapes, dtype, True

    def compute_output_shape(self, input_shape):
        shapes = [tuple(s) for s in input_shape]
        if len(set(shapes)) > 1:
            raise ValueError(f"{type(self).__name__} '{self.name}': all inputs must have the "
                             f"same shape; got {shapes}.")
        return shapes[0]

    def _check_inputs(self, xs) -> None:
        where = f"{type(self).__name__} '{self.name}'"
        if not self.built:
            raise RuntimeError(f"{where} is used before it was built. Hint: call it on "
                               f"symbolic tensors or on a list of NumPy batches.")
        if not isinstance(xs, (list, tuple)) or len(xs) != len(self.input_shape):
            raise ValueError(f"{where}: expects a list of {len(self.input_shape)} batches; "
                             f"got {type(xs).__name__}.")
        for i, (x, shape) in enumerate(zip(xs, self.input_shape)):
            if not isinstance(x, np.ndarray) or x.dtype != self.dtype:
                got = x.dtype if isinstance(x, np.ndarray) else type(x).__name__
                raise TypeError(f"{where}: input {i} must be a numpy array of dtype "
                                f"{self.dtype}; got {got}.")
            if x.shape[1:] != shape or len(x) != len(xs[0]):
                raise ValueError(f"{where}: input {i} must have shape (N, "
                                 f"{', '.join(map(str, shape))}); got {x.shape}.")

    def forward(self, xs, training: bool = False):
        self._check_inputs(xs)
        out = self.merge(list(xs))
        self._out_shape = out.shape
        return out

    def backward(self, dout, need_dx: bool = True):
        self._check_dout(dout)
        return self.merge_backward(dout)

    def merge(self, xs):
        raise NotImplementedError

    def merge_backward(self, dout):
        raise NotImplementedError


class Add(_Merge):
    """``out = x_1 + x_2 + ... + x_k`` (same shapes); ``dx_i = dout``. A residual
    connection is ``add([x, f(x)])``."""

    def merge(self, xs):
        out = xs[0] + xs[1]
        for x in xs[2:]:
            out += x
        return out

    def merge_backward(self, dout):
        return [dout] * len(self.input_shape)


class Multiply(_Merge):
    """``out = x_1 * x_2 * ... * x_k`` element-wise (same shapes);
    ``dx_i = dout * prod_{j != i} x_j`` (product rule)."""

    def merge(self, xs):
        self._xs = xs
        out = xs[0] * xs[1]
        for x in xs[2:]:
            out *= x
        return out

    def merge_backward(self, dout):
        grads = []
        for i in range(len(self._xs)):
            g = dout.copy()
            for j, x in enumerate(self._xs):
                if j != i:
                    g *= x
            grads.append(g)
        return grads


class Concatenate(_Merge):
    """Join inputs along ``axis`` (Keras' default -1: the channels of channels-last
    images, the features of vectors).

    ``axis`` counts the batch dimension (Keras' convention: ``axis=3`` is the channel
    axis of ``(N, H, W, C)``) and is read in the data format of the model; the layer
    joins the matching NCHW axis. Backward splits ``dout`` back into the inputs' parts.
    """

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        if not _is_int(axis) or axis == 0:
            raise ValueError(f"Concatenate: axis must be a non-zero int (0 is the batch "
                             f"axis); got {axis!r}.")
        self.axis = int(axis)

    def _internal_axis(self, rank: int) -> int:
        """Per-sample NCHW axis (0-based, without the batch) for ``self.axis``."""
        axis = self.axis - 1 if self.axis > 0 else self.axis + rank
        if not 0 <= axis < rank:
            raise ValueError(f"Concatenate '{self.name}': axis {self.axis} is out of range "
                             f"for inputs of {rank} per-sample dims.")
        if self._data_format == "channels_last" and rank == 3:
            axis = (1, 2, 0)[axis]          # (H, W, C) position -> (C, H, W) position
        return axis

    def compute_output_shape(self, input_shape):
        shapes = [tuple(s) for s in input_shape]
        if len({len(s) for s in shapes}) > 1:
            raise ValueError(f"Concatenate '{self.name}': inputs of different ranks {shapes}.")
        axis = self._internal_axis(len(shapes[0]))
        rest = {s[:axis] + s[axis + 1:] for s in shapes}
        if len(rest) > 1:
            raise ValueError(f"Concatenate '{self.name}': inputs must match in every axis "
                             f"but the joined one (NCHW axis {axis + 1}); got {shapes}.")
        joined = sum(s[axis] for s in shapes)
        return shapes[0][:axis] + (joined,) + shapes[0][axis + 1:]

    def merge(self, xs):
        return np.concatenate(xs, axis=self._internal_axis(len(self.input_shape[0])) + 1)

    def merge_backward(self, dout):
        axis = self._internal_axis(len(self.input_shape[0]))
        cuts = np.cumsum([s[axis] for s in self.input_shape])[:-1]
        return [np.ascontiguousarray(part) for part in np.split(dout, cuts, axis=axis + 1)]

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


def add(inputs, **kwargs):
    """Keras' functional form: ``Add(**kwargs)(inputs)``."""
    return Add(**kwargs)(inputs)


def multiply(inputs, **kwargs):
    """Keras' functional form: ``Multiply(**kwargs)(inputs)``."""
    return Multiply(**kwargs)(inputs)


def concatenate(inputs, axis=-1, **kwargs):
    """Keras' functional form: ``Concatenate(axis, **kwargs)(inputs)``."""
    return Concatenate(axis=axis, **kwargs)(inputs)
