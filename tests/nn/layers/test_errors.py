"""Every user error of the layer API says what is wrong and what to do (pinned)."""

import re

import numpy as np
import pytest

from fastcnn.nn.layers import (
    Activation,
    BatchNormalization,
    Conv2D,
    Dense,
    DepthwiseConv2D,
    Dropout,
    Flatten,
    MaxPooling2D,
    Residual,
    SeparableConv2D,
)


def test_forward_before_build():
    with pytest.raises(RuntimeError, match=re.escape(
            "Conv2D 'conv2d' is used before it was built. Hint: call layer.build(input_shape)")):
        Conv2D(2, 3).forward(np.zeros((1, 1, 5, 5), np.float32))


def test_wrong_input_shape():
    layer = Conv2D(2, 3)
    layer.build((3, 8, 8))
    with pytest.raises(ValueError, match=re.escape(
            "Conv2D 'conv2d': x must have shape (N, 3, 8, 8); got x.shape=(2, 4, 8, 8).")):
        layer.forward(np.zeros((2, 4, 8, 8), np.float32))


def test_wrong_dtype():
    layer = Dense(3)
    layer.build((4,))
    with pytest.raises(TypeError, match=re.escape(
            "Dense 'dense': x must be a numpy array of dtype float32 (the layer's dtype); "
            "got float64. Hint: x.astype(np.float32).")):
        layer.forward(np.zeros((2, 4)))


def test_backward_before_forward():
    layer = Dense(3)
    layer.build((4,))
    with pytest.raises(RuntimeError, match=re.escape(
            "Dense 'dense'.backward: no cached forward pass. Hint: call forward(x, "
            "training=True) first.")):
        layer.backward(np.zeros((2, 3), np.float32))


def test_backward_wrong_dout_shape():
    layer = Flatten()
    layer.build((2, 3, 3))
    layer.forward(np.zeros((4, 2, 3, 3), np.float32), training=True)
    with pytest.raises(ValueError, match=re.escape("dout must have the shape of the last "
                                                   "forward output (4, 18); got (4, 17).")):
        layer.backward(np.zeros((4, 17), np.float32))


def test_unknown_activation():
    with pytest.raises(ValueError, match=re.escape(
            "Conv2D: unknown activation 'rleu'; expected None or one of ['linear', 'elu', "
            "'leaky_relu', 'relu', 'sigmoid', 'softmax', 'tanh'].")):
        Conv2D(2, 3, activation="rleu")
    with pytest.raises(ValueError, match="Activation: unknown activation 'swish'"):
        Activation("swish")


def test_unknown_initializer():
    with pytest.raises(ValueError, match="unknown initializer 'glorot'"):
        Dense(3, kernel_initializer="glorot")


@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5, "0.5"])
def test_dropout_rate(rate):
    with pytest.raises(ValueError, match=re.escape(
            f"Dropout: rate must lie in [0, 1) (the probability of dropping a unit); "
            f"got {rate!r}.")):
        Dropout(rate)


def test_bad_hyperparameters():
    with pytest.raises(ValueError,
                       match=re.escape("Conv2D: filters must be a positive int; got 0.")):
        Conv2D(0, 3)
    with pytest.raises(ValueError, match=re.escape(
            "Conv2D: padding must be 'valid', 'same', an int or an (h, w) pair; got 'full'.")):
        Conv2D(2, 3, padding="full")
    with pytest.raises(ValueError, match=re.escape(
            "MaxPooling2D: padding must be 'valid' or 'same'; got 1.")):
        MaxPooling2D(2, padding=1)
    with pytest.raises(ValueError, match=re.escape(
            "BatchNormalization: momentum must lie in [0.0, 1.0]; got 1.5.")):
        BatchNormalization(momentum=1.5)


def test_conv_groups_and_dilation_errors():
    with pytest.raises(ValueError, match=re.escape(
            "Conv2D: filters must be a multiple of groups = 2; got filters=3.")):
        Conv2D(3, 3, groups=2)
    with pytest.raises(ValueError, match=re.escape(
            "Conv2D: groups must be a positive int; got 0.")):
        Conv2D(2, 3, groups=0)
    with pytest.raises(ValueError, match=re.escape(
            "Conv2D: dilation_rate must be positive; got (1, 0).")):
        Conv2D(2, 3, dilation_rate=(1, 0))
    with pytest.raises(ValueError, match=re.escape(
            "Conv2D 'g': the input channels must be a multiple of groups = 2; got input "
            "shape (3, 8, 8).")):
        Conv2D(4, 3, groups=2, name="g").build((3, 8, 8))
    with pytest.raises(ValueError, match=re.escape(
            "DepthwiseConv2D 'd': window 5x5 does not fit input 4x4")):
        DepthwiseConv2D(3, dilation_rate=2, name="d").build((2, 4, 4))
    with pytest.raises(ValueError, match=re.escape(
            "SeparableConv2D: depth_multiplier must be a positive int; got 0.")):
        SeparableConv2D(4, 3, depth_multiplier=0)


def test_dense_needs_flat_input():
    with pytest.raises(ValueError, match=re.escape(
            "Dense 'dense': expects a flat per-sample input (D,); got (3, 4, 4). Hint: put "
            "Flatten() before it.")):
        Dense(2).build((3, 4, 4))


def test_conv_needs_image_input_and_fitting_kernel():
    with pytest.raises(ValueError, match=re.escape(
            "Conv2D 'conv2d': expects a per-sample input shape (C, H, W); got (10,).")):
        Conv2D(2, 3).build((10,))
    with pytest.raises(ValueError, match=re.escape(
            "Conv2D 'conv2d': window 5x5 does not fit input 3x3 with padding 'valid'; output "
            "would be empty. Hint: use padding='same' or a smaller window.")):
        Conv2D(2, 5).build((1, 3, 3))


def test_bad_input_shape_and_dtype_at_build():
    with pytest.raises(ValueError, match=re.escape(
            "input_shape must be a non-empty tuple of positive ints without the batch "
            "dimension, e.g. (3, 32, 32) or (784,); got (None, 3, 8, 8).")):
        Conv2D(2, 3).build((None, 3, 8, 8))
    with pytest.raises(TypeError, match="dtype must be float32 or float64; got 'int32'"):
        Dense(2).build((3,), dtype="int32")


def test_rebuild_with_other_shape():
    layer = Dense(2)
    layer.build((3,))
    layer.build((3,))                      # same shape: a no-op
    with pytest.raises(ValueError, match=re.escape(
            "Dense 'dense': already built for input shape (3,) (float32); got (4,) (float32).")):
        layer.build((4,))


def test_residual_shape_mismatch():
    block = Residual([Conv2D(4, 3, padding="same")])
    with pytest.raises(ValueError, match=re.escape(
            "the main branch maps (2, 6, 6) to (4, 6, 6) but the shortcut gives (2, 6, 6); "
            "they must match to be added. Hint: use a shortcut such as Conv2D(4, 1, "
            "strides=...).")):
        block.build((2, 6, 6))
