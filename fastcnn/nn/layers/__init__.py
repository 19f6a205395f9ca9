"""Layers with Keras names and arguments over NCHW/OIHW arrays.

Every layer follows the contract of :class:`~fastcnn.layers.base.Layer`:
``build(input_shape)``, ``forward(x, training)``, ``backward(dout)`` (accumulating
parameter gradients), ``parameters()``, ``get_config()``/``from_config``.
"""

from fastcnn.nn.layers.activations import (
    ELU,
    Activation,
    LeakyReLU,
    PReLU,
    ReLU,
    Sigmoid,
    Softmax,
    Tanh,
)
from fastcnn.nn.layers.base import Layer, deserialize, serialize
from fastcnn.nn.layers.conv import Conv2D
from fastcnn.nn.layers.core import Dense, Dropout, Flatten
from fastcnn.nn.layers.maxout import Maxout
from fastcnn.nn.layers.merge import Add, Concatenate, Multiply, add, concatenate, multiply
from fastcnn.nn.layers.normalization import BatchNormalization
from fastcnn.nn.layers.pooling import (
    AveragePooling2D,
    GlobalAveragePooling2D,
    GlobalMaxPooling2D,
    MaxPooling2D,
)
from fastcnn.nn.layers.reshaping import Reshape
from fastcnn.nn.layers.residual import Residual
from fastcnn.nn.layers.separable import DepthwiseConv2D, SeparableConv2D
from fastcnn.nn.layers.symbolic import Input, InputLayer, SymbolicTensor

__all__ = [
    "Layer", "serialize", "deserialize",
    "Conv2D", "DepthwiseConv2D", "SeparableConv2D", "MaxPooling2D", "AveragePooling2D",
    "GlobalAveragePooling2D", "GlobalMaxPooling2D", "Dense", "Flatten", "Dropout",
    "BatchNormalization", "Activation", "ReLU", "LeakyReLU", "PReLU", "ELU", "Sigmoid",
    "Tanh", "Softmax", "Maxout", "Residual", "Reshape", "Add", "Multiply", "Concatenate",
    "add", "multiply", "concatenate", "Input", "InputLayer", "SymbolicTensor",
]
