"""Models shared by the interop tests (ONNX, PyTorch): every exportable layer in one
Sequential, and functional graphs with every merge layer, all with random weights and
moving statistics so that no parameter sits at its (often symmetric) initial value."""

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
    Maxout,
    MaxPooling2D,
    PReLU,
    ReLU,
    Residual,
    Softmax,
    add,
    concatenate,
    multiply,
)
from fastcnn.nn.layers.symbolic import Input
from fastcnn.train.functional import Model
from fastcnn.train.model import Sequential


def randomize(model, seed=0):
    """Random weights, positive moving variances, moving means away from 0."""
    rng = np.random.default_rng(seed)
    for p in model.parameters():
        p.data[...] = rng.normal(0, 0.5, p.data.shape)
    for key, value in model.states().items():
        value[...] = (rng.uniform(0.5, 2.0, value.shape) if key.endswith("variance")
                      else rng.normal(0, 0.5, value.shape))
    return model


def every_layer_cnn(dtype="float32"):
    """Images (3, 9, 8): odd and even sizes, so "same" padding is asymmetric somewhere.
    The ONNX export and to_torch are both tested on it: one list of layers."""
    return randomize(Sequential([
        Conv2D(6, 3, strides=2, padding="same", activation="relu"),     # 9x8 -> 5x4, asym.
        BatchNormalization(),
        Conv2D(6, (2, 3), padding="same", use_bias=False),               # even kernel: asym.
        PReLU(),
        MaxPooling2D(2, strides=1, padding="same"),
        Residual([Conv2D(6, 3, padding="same", activation="elu"), BatchNormalization()]),
        Residual([Conv2D(4, 1, strides=2), LeakyReLU(0.1)],
                 shortcut=Conv2D(4, 1, strides=2, use_bias=False)),       # 5x4 -> 3x2
        AveragePooling2D(2, strides=1, padding="same"),
        Activation("tanh"),
        Dropout(0.5),
        Flatten(),
        Dense(12, activation="sigmoid"),
        BatchNormalization(),
        Maxout(5, pieces=3),
        ELU(0.7),
        Dense(4),
        ReLU(),
        Dense(3),
        Softmax(),
    ], input_shape=(3, 9, 8), name="every_layer", dtype=dtype))


def images(n=5, shape=(3, 9, 8), seed=1):
    return np.random.default_rng(seed).normal(0, 1, (n,) + shape).astype(np.float32)


def merge_net(data_format="channels_first", seed=0):
    """A functional graph with every merge layer, on images (3, 9, 8) in ``data_format``:

    * a ResNet-style block: Conv-BN-ReLU-Conv-BN + a strided 1x1 projection, Add, ReLU;
      then an identity block (the block's input read by two layers);
    * an Inception-style Concatenate of a 1x1, a 3x3 and a max-pool + 1x1 branch on the
      channel axis (1 channels-first, -1 channels-last);
    * a Multiply gate ``x * sigmoid(conv(x))`` and a three-input Add;
    * a Concatenate of two Dense heads (vectors), then Dense: logits, not saturated
      probabilities, so that a comparison sees every error.
    """
    channels_first = data_format == "channels_first"
    inputs = Input((3, 9, 8) if channels_first else (9, 8, 3), data_format=data_format)
    h = ReLU()(BatchNormalization()(Conv2D(6, 3, strides=2, padding="same")(inputs)))
    h = BatchNormalization()(Conv2D(6, 3, padding="same")(h))
    x = ReLU()(add([h, Conv2D(6, 1, strides=2)(inputs)]))                  # (6, 5, 4)
    h = BatchNormalization()(Conv2D(6, 3, padding="same", activation="relu")(x))
    x = ReLU()(add([x, h]))
    pooled = MaxPooling2D(3, strides=1, padding="same")(x)
    x = concatenate([Conv2D(3, 1)(x), Conv2D(4, 3, padding="same", activation="relu")(x),
                     Conv2D(2, 1)(pooled)], axis=1 if channels_first else -1)   # 9 channels
    gated = multiply([x, Conv2D(9, 1, activation="sigmoid")(x)])
    x = add([x, gated, AveragePooling2D(3, strides=1, padding="same")(x)])
    flat = Flatten()(x)
    joined = concatenate([Dense(8, activation="tanh")(flat), Dense(4)(flat)])
    outputs = Dense(3)(joined)
    return randomize(Model(inputs, outputs, name=f"merges_{data_format}"), seed)


def image_output_net(data_format="channels_last"):
    """A functional graph whose output is an image: (4, 6, 5) in ``data_format``."""
    inputs = Input((6, 5, 2) if data_format == "channels_last" else (2, 6, 5),
                   data_format=data_format)
    a = Conv2D(4, 3, padding="same")(inputs)
    b = Conv2D(4, 1, activation="tanh")(inputs)
    return randomize(Model(inputs, add([multiply([a, b]), a]), name="image_out"))
