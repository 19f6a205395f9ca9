"""Layers with Keras names and arguments over NCHW/OIHW arrays.

Every layer follows the contract of :class:`~fastcnn.layers.base.Layer`:
``build(input_shape)``, ``forward(x, training)``, ``backward(dout)`` (accumulating
parameter gradients), ``parameters()``, ``get_config()``/``from_config``.
"""

from .activations import ELU, Activation, LeakyReLU, PReLU, ReLU, Sigmoid, Softmax, Tanh
from .base import Layer, deserialize, serialize
from .conv import Conv2D
from .core import Dense, Dropout, Flatten
from .maxout import Maxout
from .normalization import BatchNormalization
from .pooling import AveragePooling2D, MaxPooling2D
from .residual import Residual

__all__ = [
    "Layer", "serialize", "deserialize",
    "Conv2D", "MaxPooling2D", "AveragePooling2D", "Dense", "Flatten", "Dropout",
    "BatchNormalization", "Activation", "ReLU", "LeakyReLU", "PReLU", "ELU", "Sigmoid",
    "Tanh", "Softmax", "Maxout", "Residual",
]
