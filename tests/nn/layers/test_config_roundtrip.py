"""get_config -> JSON -> from_config -> get_config is the identity, for every layer."""

import json

import numpy as np
import pytest

from fastcnn.nn import initializers
from fastcnn.nn.layers import (
    ELU,
    Activation,
    AveragePooling2D,
    BatchNormalization,
    Conv2D,
    Dense,
    DepthwiseConv2D,
    Dropout,
    Flatten,
    LeakyReLU,
    Maxout,
    MaxPooling2D,
    PReLU,
    ReLU,
    Residual,
    SeparableConv2D,
    Sigmoid,
    Softmax,
    Tanh,
    deserialize,
    serialize,
)

LAYERS = [
    lambda: Conv2D(8, (3, 5), strides=(2, 1), padding="same", activation="relu",
                   use_bias=False, kernel_initializer="he_normal",
                   bias_initializer=initializers.Constant(0.1), kernel_regularizer="l2"),
    lambda: Conv2D(4, 3, padding=(1, 2), name="stem"),
    lambda: Conv2D(4, 3, dilation_rate=(2, 1), groups=2, padding="same"),
    lambda: DepthwiseConv2D(3, strides=2, padding="same", depth_multiplier=2,
                            activation="relu", use_bias=False, depthwise_regularizer="l2"),
    lambda: SeparableConv2D(8, 3, dilation_rate=2, depth_multiplier=2,
                            pointwise_initializer="he_normal", pointwise_regularizer="l1"),
    lambda: MaxPooling2D(3, strides=2, padding="same"),
    lambda: AveragePooling2D((2, 3)),
    lambda: Dense(10, activation="softmax", kernel_initializer=initializers.RandomNormal(
        stddev=0.01)),
    lambda: Flatten(trainable=False),
    lambda: Dropout(0.25, seed=7),
    lambda: BatchNormalization(momentum=0.9, epsilon=1e-5),
    lambda: ReLU(), lambda: LeakyReLU(0.1), lambda: PReLU(), lambda: ELU(0.5),
    lambda: Sigmoid(), lambda: Tanh(), lambda: Softmax(), lambda: Activation("tanh"),
    lambda: Maxout(4, pieces=3),
    lambda: Residual([Conv2D(2, 3, padding="same"), ReLU()],
                     shortcut=Conv2D(2, 1, name="proj")),
]


@pytest.mark.parametrize("make", LAYERS)
def test_config_roundtrip(make):
    layer = make()
    text = json.dumps(serialize(layer))
    clone = deserialize(json.loads(text))
    assert type(clone) is type(layer)
    assert json.dumps(serialize(clone)) == text
    assert repr(clone) == repr(layer)


def test_config_roundtrip_builds_same_shapes():
    layer = Conv2D(3, 3, strides=2, padding="same")
    layer.build((2, 7, 7))
    clone = Conv2D.from_config(layer.get_config())
    clone.build((2, 7, 7))
    assert clone.output_shape == layer.output_shape == (3, 4, 4)
    assert [p.shape for p in clone.parameters()] == [p.shape for p in layer.parameters()]


def test_repr_is_readable():
    layer = Conv2D(16, 3, padding="same", activation="relu", name="c1")
    assert repr(layer) == ("Conv2D(filters=16, kernel_size=(3, 3), padding='same', "
                           "activation='relu') 'c1'")
    layer.build((3, 8, 8))
    assert repr(layer).endswith("'c1', built for (3, 8, 8)")
    assert np.dtype(layer.dtype) == np.float32
