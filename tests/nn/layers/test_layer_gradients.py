"""Every layer's backward against central differences (float64, training mode),
through the public fastcnn.gradcheck API. Inputs of layers with kinks (ReLU, max
pooling, maxout, PReLU, LeakyReLU) come from smooth_input: distinct values, none
near 0, so no finite-difference step crosses a kink or changes a winner."""

import numpy as np
import pytest

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
)
from fastcnn.tools.gradcheck import check_layer, smooth_input

IMG = (2, 3, 6, 5)     # (N, C, H, W): odd sizes catch H/W mix-ups
VEC = (4, 7)


def _normal(shape, seed=1):
    return np.random.default_rng(seed).standard_normal(shape)


CASES = [
    ("conv-valid", lambda: Conv2D(4, 3, kernel_initializer="he_normal"), IMG, "normal"),
    ("conv-same-stride2", lambda: Conv2D(2, (3, 2), strides=2, padding="same",
                                         bias_initializer="random_normal"), IMG, "normal"),
    ("conv-pad1-nobias", lambda: Conv2D(3, 3, padding=1, use_bias=False), IMG, "normal"),
    ("conv-relu", lambda: Conv2D(3, 1, activation="relu"), IMG, "smooth"),
    ("conv-l2", lambda: Conv2D(2, 3, kernel_regularizer="l2"), IMG, "normal"),
    ("conv-dilated-same", lambda: Conv2D(2, 3, padding="same", dilation_rate=2), IMG,
     "normal"),
    ("conv-groups3", lambda: Conv2D(6, 3, padding=1, groups=3), IMG, "normal"),
    ("depthwise-mult2-same", lambda: DepthwiseConv2D(3, padding="same", depth_multiplier=2,
                                                     bias_initializer="random_normal"),
     IMG, "normal"),
    ("depthwise-stride2-dilated", lambda: DepthwiseConv2D(2, strides=2, dilation_rate=(1, 2)),
     IMG, "normal"),
    ("separable-tanh", lambda: SeparableConv2D(4, 3, padding="same", activation="tanh"), IMG,
     "normal"),
    ("separable-mult2-l2", lambda: SeparableConv2D(2, (3, 2), strides=2, depth_multiplier=2,
                                                   depthwise_regularizer="l2",
                                                   pointwise_regularizer="l2"), IMG, "normal"),
    ("maxpool", lambda: MaxPooling2D(2), IMG, "smooth"),
    ("maxpool-same-overlap", lambda: MaxPooling2D(3, strides=2, padding="same"), IMG, "smooth"),
    ("avgpool", lambda: AveragePooling2D(2), (2, 3, 6, 4), "normal"),
    ("avgpool-same", lambda: AveragePooling2D(3, strides=2, padding="same"), IMG, "normal"),
    ("avgpool-valid-untiled", lambda: AveragePooling2D(2, strides=1), IMG, "normal"),
    ("dense", lambda: Dense(5), VEC, "normal"),
    ("dense-tanh", lambda: Dense(5, activation="tanh"), VEC, "normal"),
    ("dense-softmax", lambda: Dense(5, activation="softmax"), VEC, "normal"),
    ("flatten", lambda: Flatten(), IMG, "normal"),
    ("dropout", lambda: Dropout(0.4, seed=3), VEC, "normal"),
    ("dropout-image", lambda: Dropout(0.5), IMG, "normal"),
    ("batchnorm-dense", lambda: BatchNormalization(), VEC, "normal"),
    ("batchnorm-conv", lambda: BatchNormalization(momentum=0.9), IMG, "normal"),
    ("relu", lambda: ReLU(), IMG, "smooth"),
    ("leaky-relu", lambda: LeakyReLU(0.1), VEC, "smooth"),
    ("prelu-conv", lambda: PReLU(alpha_initializer="random_uniform"), IMG, "smooth"),
    ("prelu-dense", lambda: PReLU(alpha_initializer="random_uniform"), VEC, "smooth"),
    ("elu", lambda: ELU(0.7), VEC, "smooth"),
    ("sigmoid", lambda: Sigmoid(), VEC, "normal"),
    ("tanh", lambda: Tanh(), VEC, "normal"),
    ("softmax", lambda: Softmax(), VEC, "normal"),
    ("softmax-channels", lambda: Softmax(), IMG, "normal"),
    ("activation-elu", lambda: Activation("elu"), VEC, "smooth"),
    ("activation-softmax", lambda: Activation("softmax"), VEC, "normal"),
    ("maxout", lambda: Maxout(3, pieces=4), VEC, "smooth"),
    ("residual-identity", lambda: Residual([Conv2D(3, 3, padding="same"), Tanh(),
                                            Conv2D(3, 3, padding="same")]), IMG, "normal"),
    ("residual-projection", lambda: Residual(
        [Conv2D(4, 3, strides=2, padding="same"), BatchNormalization(), Tanh()],
        shortcut=Conv2D(4, 1, strides=2, padding="same")), IMG, "normal"),
]


@pytest.mark.parametrize("make, shape, kind", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_layer_gradients(make, shape, kind):
    x = smooth_input(shape, seed=2) if kind == "smooth" else _normal(shape)
    errors = check_layer(make(), x, training=True)
    assert set(errors) >= {"input"}
    assert max(errors.values()) < 1e-6


@pytest.mark.parametrize("make", [lambda: BatchNormalization(), lambda: Dropout(0.3, seed=0)],
                         ids=["batchnorm", "dropout"])
def test_layer_gradients_inference_mode(make):
    layer = make()
    x = _normal(VEC)
    layer.build(VEC[1:], dtype=np.float64)
    layer.forward(x, training=True)        # move the moving statistics away from 0/1
    check_layer(layer, x, training=False)


def test_regularizer_gradient_reaches_kernel_grad():
    """The layer keeps its regularizer on the Parameter; the model adds it (see
    test_model.py); here: it is attached to the kernel only."""
    layer = Conv2D(2, 3, kernel_regularizer="l2")
    layer.build((3, 6, 6))
    assert layer.kernel.regularizer is not None
    assert layer.bias.regularizer is None
