"""AveragePooling2D on the kernel, GlobalAveragePooling2D and GlobalMaxPooling2D:
values, shapes (keepdims), gradients, configs, parameter counts, every backend, and
Keras' own layers (optional: skipped when Keras is absent)."""

import json
import os
import warnings

import numpy as np
import pytest

import fastcnn
from fastcnn.nn.layers import (
    AveragePooling2D,
    Dense,
    GlobalAveragePooling2D,
    GlobalMaxPooling2D,
    deserialize,
    serialize,
)
from fastcnn.tools.gradcheck import check_layer, smooth_input

import _helpers as H
from _helpers import FAST_BACKENDS, skip_unless_available


def _built(layer, shape, dtype=np.float32):
    layer.build(shape[1:], dtype=dtype)
    return layer


@pytest.mark.parametrize("keepdims", [False, True])
def test_global_pooling_values_and_shapes(keepdims, rng):
    x = rng.standard_normal((3, 4, 5, 7)).astype(np.float32)
    avg = _built(GlobalAveragePooling2D(keepdims=keepdims), x.shape)
    top = _built(GlobalMaxPooling2D(keepdims=keepdims), x.shape)
    want_shape = (4, 1, 1) if keepdims else (4,)
    assert avg.output_shape == top.output_shape == want_shape
    H.assert_close(avg.forward(x).reshape(3, 4), x.mean(axis=(2, 3)), kind="sum",
                   what="global average")
    np.testing.assert_array_equal(top.forward(x).reshape(3, 4), x.max(axis=(2, 3)))
    dout = rng.standard_normal((3,) + want_shape).astype(np.float32)
    dx = avg.backward(dout)
    H.assert_close(dx, np.broadcast_to(dout.reshape(3, 4, 1, 1) / 35, x.shape), kind="sum",
                   what="global average dx")
    dx = top.backward(dout)
    assert dx.shape == x.shape
    np.testing.assert_array_equal(dx.sum(axis=(2, 3)), dout.reshape(3, 4))
    winners = dx.reshape(3, 4, -1).argmax(axis=2) if np.all(dout > 0) else None
    if winners is not None:
        np.testing.assert_array_equal(winners, x.reshape(3, 4, -1).argmax(axis=2))


@pytest.mark.parametrize("make, kind", [
    (lambda: GlobalAveragePooling2D(), "normal"),
    (lambda: GlobalAveragePooling2D(keepdims=True), "normal"),
    (lambda: GlobalMaxPooling2D(), "smooth"),
    (lambda: AveragePooling2D(3, strides=2, padding="same"), "normal"),
], ids=["gap", "gap-keepdims", "gmp", "avg-same"])
def test_pooling_layer_gradients(make, kind):
    shape = (2, 3, 6, 5)
    x = smooth_input(shape, seed=2) if kind == "smooth" else \
        np.random.default_rng(1).standard_normal(shape)
    errors = check_layer(make(), x, training=True)
    assert max(errors.values()) < 1e-6


@pytest.mark.parametrize("make", [lambda: GlobalAveragePooling2D(keepdims=True),
                                  lambda: GlobalMaxPooling2D(name="head")])
def test_global_pooling_config_roundtrip(make):
    layer = make()
    text = json.dumps(serialize(layer))
    clone = deserialize(json.loads(text))
    assert type(clone) is type(layer) and json.dumps(serialize(clone)) == text


def test_global_pooling_rejects_bad_arguments():
    with pytest.raises(TypeError, match="GlobalMaxPooling2D: keepdims must be a bool; got 1."):
        GlobalMaxPooling2D(keepdims=1)
    with pytest.raises(ValueError, match="expects a per-sample input shape"):
        GlobalAveragePooling2D().build((10,))


def test_global_average_head_has_no_weights_and_feeds_dense():
    model = fastcnn.Sequential([GlobalAveragePooling2D(), Dense(3)], input_shape=(4, 5, 5))
    assert model.layers[0].parameters() == []
    assert model.count_params() == 4 * 3 + 3
    out = model.predict(np.ones((2, 4, 5, 5), np.float32))
    assert out.shape == (2, 3)


@pytest.mark.parametrize("backend", FAST_BACKENDS)
@pytest.mark.parametrize("make", [lambda: AveragePooling2D(2),
                                  lambda: AveragePooling2D(3, strides=2, padding="same"),
                                  lambda: GlobalAveragePooling2D(),
                                  lambda: GlobalMaxPooling2D(keepdims=True)],
                         ids=["avg2", "avg-same", "gap", "gmp"])
def test_pooling_layers_equal_on_every_backend(backend, make, rng):
    skip_unless_available(backend)
    x = rng.standard_normal((4, 3, 9, 8)).astype(np.float32)
    results = {}
    for name in ("numpy", backend):
        layer = _built(make(), x.shape)
        with fastcnn.use_backend(name):
            out = layer.forward(x, training=True)
            dx = layer.backward(np.ones_like(out) + out)
        results[name] = out, dx
    for a, b in zip(results[backend], results["numpy"]):
        H.assert_close(a, b, dtype=np.float32, kind="sum", what=f"{backend} layer")


@pytest.fixture(scope="module")
def keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")   # the oracle already installed
    return pytest.importorskip("keras", reason="Keras is the optional layer oracle")


# Only "valid" windows: Keras' torch backend (the one installed beside torch) computes
# "same" average pooling unlike TensorFlow's rule, which the layer follows (tested by
# hand in test_layers.py::test_average_pooling_same_excludes_padding).
@pytest.mark.parametrize("name, kwargs", [
    ("AveragePooling2D", {"pool_size": 2, "strides": 1}),
    ("AveragePooling2D", {"pool_size": (2, 3), "padding": "valid"}),
    ("GlobalAveragePooling2D", {}),
    ("GlobalAveragePooling2D", {"keepdims": True}),
    ("GlobalMaxPooling2D", {}),
])
def test_pooling_layers_match_keras(keras, name, kwargs, rng):
    x = rng.standard_normal((2, 3, 7, 8)).astype(np.float32)
    ours = _built(getattr(fastcnn, name)(**kwargs), x.shape)
    theirs = getattr(keras.layers, name)(**kwargs)
    with warnings.catch_warnings():   # Keras' torch backend: a NumPy 2 copy= deprecation
        warnings.simplefilter("ignore", DeprecationWarning)
        want = np.asarray(keras.ops.convert_to_numpy(theirs(np.transpose(x, (0, 2, 3, 1)))))
    if want.ndim == 4:   # channels-last back to NCHW
        want = np.transpose(want, (0, 3, 1, 2))
    H.assert_close(ours.forward(x), want, dtype=np.float32, kind="torch-forward",
                   what=f"{name} vs Keras")
