"""The public gradient checker: it passes correct code, catches wrong code, and checks
whole models (losses, fused softmax, regularizers, batch norm, dropout) end to end."""

import numpy as np
import pytest

from fastcnn.nn.layers import (
    BatchNormalization,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    MaxPooling2D,
    ReLU,
    Residual,
    Softmax,
    Tanh,
)
from fastcnn.tools.gradcheck import GradientCheckError, check_layer, check_model, smooth_input
from fastcnn.train.model import Sequential

pytestmark = pytest.mark.usefixtures("seeded_numpy_backend")


def test_check_layer_catches_a_wrong_backward():
    class BrokenTanh(Tanh):
        def call_backward(self, dout):
            return dout * (1 - self._out)            # forgot the square
    with pytest.raises(GradientCheckError, match=r"FAIL input .* at \("):
        check_layer(BrokenTanh(), (3, 4))


def test_check_layer_catches_a_wrong_parameter_gradient():
    class BrokenDense(Dense):
        def call_backward(self, dout):
            dx = super().call_backward(dout)
            self.bias.grad *= 0.5
            return dx
    with pytest.raises(GradientCheckError) as info:
        check_layer(BrokenDense(3), (4, 5))
    report = str(info.value)
    assert "FAIL broken_dense/bias" in report and "ok   broken_dense/kernel" in report


def test_check_layer_accepts_shape_and_returns_errors():
    errors = check_layer(Conv2D(2, 3), (2, 1, 5, 5))
    assert set(errors) == {"input", "conv2d/kernel", "conv2d/bias"}


def test_check_layer_requires_float64():
    layer = Dense(2)
    layer.build((3,))
    with pytest.raises(TypeError, match="layer must be built with dtype float64"):
        check_layer(layer, np.zeros((2, 3)))


def test_smooth_input_is_kink_free():
    x = smooth_input((3, 4, 5))
    assert len(np.unique(x)) == x.size and np.min(np.abs(x)) > 1e-3


def _model(layers, input_shape):
    return Sequential(layers, input_shape=input_shape, dtype="float64")


@pytest.mark.parametrize("last", ["softmax-layer", "dense-softmax"])
def test_check_model_cnn_with_fused_softmax_and_regularizer(last):
    head = ([Dense(3), Softmax()] if last == "softmax-layer"
            else [Dense(3, activation="softmax")])
    model = _model([Conv2D(3, 3, padding="same", kernel_regularizer="l2"),
                    BatchNormalization(), Tanh(), MaxPooling2D(), Flatten(), Dropout(0.3),
                    *head], (2, 4, 4))
    model.compile("sgd", "sparse_categorical_crossentropy")
    assert model.fused_softmax
    x = smooth_input((3, 2, 4, 4), seed=1)
    errors = check_model(model, x, np.array([0, 2, 1]))
    assert max(errors.values()) < 1e-6


def test_check_model_residual_mse():
    model = _model([Residual([Dense(4, activation="tanh"), Dense(4)]), ReLU(), Dense(2)], (4,))
    model.compile("sgd", "mse")
    x = np.random.default_rng(0).standard_normal((5, 4))
    check_model(model, x, np.random.default_rng(1).standard_normal((5, 2)))


def test_check_model_needs_float64():
    model = Sequential([Dense(2)], input_shape=(3,))
    model.compile("sgd", "mse")
    with pytest.raises(TypeError, match="the model must be float64"):
        check_model(model, np.zeros((2, 3)), np.zeros((2, 2)))
