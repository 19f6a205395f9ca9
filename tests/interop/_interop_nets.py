"""Models shared by the interop tests: every exportable layer, with random weights and
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
)
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


def every_layer_cnn():
    """Images (3, 9, 8): odd and even sizes, so "same" padding is asymmetric somewhere."""
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
    ], input_shape=(3, 9, 8), name="every_layer"))


def images(n=5, shape=(3, 9, 8), seed=1):
    return np.random.default_rng(seed).normal(0, 1, (n,) + shape).astype(np.float32)
