"""Channels-last data and the dtype policy at the model's edge."""

import warnings

import numpy as np
import pytest

import fastcnn
from fastcnn import Input, Model, Sequential
from fastcnn.common.exceptions import FastCNNWarning
from fastcnn.layers import Conv2D, Dense, Flatten, MaxPooling2D

from _model_helpers import make_blobs


def mnist_like(data_format=None, input_shape=(28, 28, 1)):
    return Sequential([Conv2D(32, 3, activation="relu"), MaxPooling2D(), Flatten(),
                       Dense(10, activation="softmax")], input_shape=input_shape,
                      data_format=data_format)


def test_channels_last_model_equals_channels_first_model_on_transposed_data():
    x_first, y = make_blobs(32, size=6)
    x_last = np.ascontiguousarray(x_first.transpose(0, 2, 3, 1))
    first = Sequential([Conv2D(3, 3, padding="same"), MaxPooling2D(), Flatten(), Dense(3)],
                       input_shape=(1, 6, 6))
    last = Sequential([Conv2D(3, 3, padding="same"), MaxPooling2D(), Flatten(), Dense(3)],
                      input_shape=(6, 6, 1), data_format="channels_last")
    assert first.count_params() == last.count_params()
    last.set_weights(first.get_weights())
    np.testing.assert_array_equal(first.predict(x_first), last.predict(x_last))
    for model in (first, last):
        model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=[])
    h1 = first.fit(x_first, y, epochs=2, verbose=0, seed=0).history["loss"]
    h2 = last.fit(x_last, y, epochs=2, verbose=0, seed=0).history["loss"]
    assert h1 == h2


def test_channels_last_parameter_count_is_keras_one():
    """The issue's case: 640 parameters in the first conv, never 16,192."""
    model = mnist_like("channels_last")
    assert model.layers[0].count_params() == (320, 0)
    lines = []
    model.summary(print_fn=lines.append)
    assert "(None, 26, 26, 32)" in lines[0]       # shapes shown channels-last, as Keras


def test_global_image_data_format_and_input():
    try:
        fastcnn.set_image_data_format("channels_last")
        assert fastcnn.image_data_format() == "channels_last"
        model = mnist_like()
        assert model.data_format == "channels_last"
        inputs = Input(shape=(28, 28, 1))
        assert inputs.internal_shape == (1, 28, 28) and inputs.shape == (None, 28, 28, 1)
    finally:
        fastcnn.set_image_data_format("channels_first")
    with pytest.raises(ValueError, match="data_format must be 'channels_first'"):
        fastcnn.set_image_data_format("NHWC")


def test_transposed_data_error_says_so_and_never_suggests_padding():
    model = mnist_like("channels_first", input_shape=(1, 28, 28))
    model.compile()
    x = np.zeros((4, 28, 28, 1), np.float32)
    with pytest.raises(ValueError) as info:
        model.fit(x, np.zeros(4, int), verbose=0)
    message = str(info.value)
    assert "channels-last data (N, H, W, C)" in message
    assert "data_format='channels_last'" in message and "transpose(0, 3, 1, 2)" in message
    assert "padding" not in message
    last = mnist_like("channels_last")
    with pytest.raises(ValueError, match=r"channels-first data .*transpose\(0, 2, 3, 1\)"):
        last.predict(np.zeros((2, 1, 28, 28), np.float32))


def test_input_warns_when_its_shape_looks_like_the_other_layout():
    with pytest.warns(FastCNNWarning, match=r"\(1, 8, 8\) looks channels-first"):
        Input(shape=(1, 8, 8), data_format="channels_last")
    with pytest.warns(FastCNNWarning, match=r"\(8, 8, 3\) looks channels-last"):
        Input(shape=(8, 8, 3), data_format="channels_first")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Input(shape=(3, 8, 8))
        Input(shape=(8, 8, 3), data_format="channels_last")


def test_channels_last_shape_on_a_channels_first_model_warns_and_hints():
    with pytest.warns(FastCNNWarning, match="looks channels-last"):
        Sequential([Conv2D(16, 3, padding="same")], input_shape=(28, 28, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FastCNNWarning)
        with pytest.raises(ValueError) as info:
            mnist_like("channels_first")           # (28, 28, 1): 28 channels of 28x1
    message = str(info.value)
    assert "data_format='channels_last'" in message and "padding='same'" not in message


@pytest.mark.parametrize("dtype", [np.uint8, np.int64, np.float64, bool])
def test_integer_and_float64_inputs_are_cast_once_without_mutation(dtype):
    x, y = make_blobs(16, size=6)
    raw = (np.abs(x) * 40).astype(dtype)
    before = raw.copy()
    model = Sequential([Conv2D(2, 3), Flatten(), Dense(3, activation="softmax")],
                       input_shape=(1, 6, 6))
    model.compile(metrics=["accuracy"])
    model.fit(raw, y, epochs=1, verbose=0)
    out = model.predict(raw)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, model.predict(raw.astype(np.float32)))
    assert len(model.evaluate(raw, y)) == 2
    assert raw.dtype == before.dtype and np.array_equal(raw, before)


def test_float64_model_and_strict_layers():
    model = Sequential([Dense(2)], input_shape=(3,), dtype="float64")
    assert model.predict(np.ones((2, 3), np.float32)).dtype == np.float64
    # layers (and kernels) stay strict: no cast below the model's edge
    with pytest.raises(TypeError, match=r"dtype float64 \(the layer's dtype\); got float32"):
        model.layers[0].forward(np.ones((1, 3), np.float32))
    with pytest.raises(TypeError, match="must hold numbers"):
        model.predict(np.array([["a", "b", "c"]]))


def test_model_call_and_channels_last_image_output():
    inputs = Input(shape=(4, 4, 3), data_format="channels_last")
    model = Model(inputs, Conv2D(2, 1)(inputs))
    out = model(np.ones((1, 4, 4, 3)))
    assert out.shape == (1, 4, 4, 2) and out.dtype == np.float32
    np.testing.assert_array_equal(out, model.predict(np.ones((1, 4, 4, 3))))
