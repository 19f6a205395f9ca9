"""Forward semantics, shapes (vs TensorFlow's "same" rule), train/eval behaviour,
gradient accumulation and freezing."""

import numpy as np
import pytest

import fastcnn
from fastcnn import kernels
from fastcnn.nn.layers import (
    AveragePooling2D,
    BatchNormalization,
    Conv2D,
    Dense,
    Dropout,
    MaxPooling2D,
    PReLU,
    Softmax,
)

# TensorFlow "same": OH = ceil(H / S); total pad = max((OH - 1) S + K - H, 0), the odd
# pixel at the bottom/right. Rows: (H, K, S) -> (OH, pad_top, pad_bottom), worked by hand.
TF_SAME = [(6, 3, 2, 3, 0, 1), (7, 3, 2, 4, 1, 1), (5, 2, 2, 3, 0, 1), (8, 1, 2, 4, 0, 0),
           (9, 4, 3, 3, 0, 1), (10, 4, 3, 4, 1, 2), (4, 5, 1, 4, 2, 2), (1, 3, 2, 1, 1, 1)]


@pytest.mark.parametrize("h, k, s, oh, top, bottom", TF_SAME)
def test_conv_same_padding_matches_tensorflow(h, k, s, oh, top, bottom):
    layer = Conv2D(2, k, strides=s, padding="same")
    layer.build((1, h, h + 1))
    assert layer.output_shape[1] == oh
    assert layer.output_shape[2] == -(-(h + 1) // s)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 1, h, h + 1)).astype(np.float32)
    (pt, pb), (pl, pr) = layer._pads
    assert (pt, pb) == (top, bottom)
    x_pad = np.pad(x, ((0, 0), (0, 0), (top, bottom), (pl, pr)))   # explicit pad + valid conv
    expected, _ = kernels.conv2d_forward(x_pad, layer.kernel.data, layer.bias.data, s, 0)
    np.testing.assert_allclose(layer.forward(x), expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("h, k, s, oh, top, bottom", [c for c in TF_SAME if c[1] > c[4]
                                                      and c[1] > c[5]])
def test_pooling_same_shapes_match_tensorflow(h, k, s, oh, top, bottom):
    for layer in (MaxPooling2D(k, strides=s, padding="same"),
                  AveragePooling2D(k, strides=s, padding="same")):
        layer.build((1, h, h))
        assert layer.output_shape == (1, oh, oh)


def test_average_pooling_same_excludes_padding():
    layer = AveragePooling2D(2, padding="same")
    layer.build((1, 3, 3))
    x = np.arange(9, dtype=np.float32).reshape(1, 1, 3, 3)
    out = layer.forward(x)
    # windows: [0,1,3,4] [2,5] [6,7] [8] (TensorFlow divides by the real pixel count)
    np.testing.assert_allclose(out[0, 0], [[2.0, 3.5], [6.5, 8.0]])


def test_maxpool_forward_and_routing():
    layer = MaxPooling2D()
    layer.build((1, 2, 4))
    x = np.array([[[[1, 5, 2, 0], [3, 4, 9, 8]]]], dtype=np.float32)
    np.testing.assert_array_equal(layer.forward(x, training=True), [[[[5, 9]]]])
    dx = layer.backward(np.array([[[[1.0, 2.0]]]], dtype=np.float32))
    np.testing.assert_array_equal(dx, [[[[0, 1, 0, 0], [0, 0, 2, 0]]]])


def test_dense_is_x_at_w_plus_b():
    layer = Dense(3, bias_initializer="ones")
    layer.build((4,))
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    np.testing.assert_allclose(layer.forward(x), x @ layer.kernel.data + 1, rtol=1e-6)
    assert layer.kernel.shape == (4, 3)


def test_gradients_accumulate_until_zero_grad():
    layer = Dense(2)
    layer.build((3,))
    x = np.ones((4, 3), np.float32)
    dout = np.ones((4, 2), np.float32)
    layer.forward(x, training=True)
    layer.backward(dout)
    once = layer.kernel.grad.copy()
    layer.backward(dout)
    np.testing.assert_allclose(layer.kernel.grad, 2 * once)
    layer.zero_grad()
    assert not layer.kernel.grad.any()


def test_dropout_train_and_inference():
    layer = Dropout(0.5, seed=0)
    layer.build((10000,))
    x = np.ones((2, 10000), np.float32)
    np.testing.assert_array_equal(layer.forward(x, training=False), x)
    out = layer.forward(x, training=True)
    assert set(np.unique(out)) == {0.0, 2.0}                 # inverted: kept units * 1/(1-p)
    assert abs(out.mean() - 1.0) < 0.05                      # E[out] = x
    dx = layer.backward(np.ones_like(x))
    np.testing.assert_array_equal(dx, out)                   # same mask


def test_dropout_seed_reproducible():
    a, b = Dropout(0.3, seed=5), Dropout(0.3, seed=5)
    for layer in (a, b):
        layer.build((50,))
    x = np.ones((3, 50), np.float32)
    np.testing.assert_array_equal(a.forward(x, True), b.forward(x, True))


def test_batchnorm_train_vs_inference_and_running_stats():
    layer = BatchNormalization(momentum=0.9)
    layer.build((3, 4, 4))
    x = (np.random.default_rng(0).standard_normal((8, 3, 4, 4)) * 3 + 2).astype(np.float32)
    out = layer.forward(x, training=True)
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    mean = x.mean(axis=(0, 2, 3))
    np.testing.assert_allclose(layer.state["moving_mean"], 0.1 * mean, rtol=1e-5)
    before = layer.state["moving_mean"].copy()
    layer.forward(x, training=False)
    np.testing.assert_array_equal(layer.state["moving_mean"], before)


def test_frozen_batchnorm_runs_in_inference_mode():
    layer = BatchNormalization()
    layer.build((4,))
    layer.trainable = False
    x = np.random.default_rng(0).standard_normal((6, 4)).astype(np.float32)
    before = layer.state["moving_variance"].copy()
    out = layer.forward(x, training=True)
    np.testing.assert_array_equal(layer.state["moving_variance"], before)
    np.testing.assert_allclose(out, x / np.sqrt(1 + 1e-3), rtol=1e-6)
    assert all(not p.trainable for p in layer.parameters())
    assert layer.count_params() == (0, 16)


def test_softmax_rows_sum_to_one_and_large_logits_are_stable():
    layer = Softmax()
    layer.build((3,))
    out = layer.forward(np.array([[1000.0, 0.0, -1000.0], [1, 2, 3]], np.float32))
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out.sum(axis=1), 1, rtol=1e-6)


def test_prelu_has_one_slope_per_channel():
    layer = PReLU()
    layer.build((5, 3, 3))
    assert layer.alpha.shape == (5,)


def test_layers_run_on_every_available_backend():
    x = np.random.default_rng(0).standard_normal((2, 3, 6, 6)).astype(np.float32)
    outs = []
    for name in fastcnn.available_backends():
        fastcnn.random.seed(1)
        conv, pool, bn = Conv2D(4, 3, padding="same"), MaxPooling2D(), BatchNormalization()
        conv.build((3, 6, 6)), pool.build((4, 6, 6)), bn.build((4, 3, 3))
        with fastcnn.use_backend(name):
            out = bn.forward(pool.forward(conv.forward(x, True), True), True)
            dx = conv.backward(pool.backward(bn.backward(out)))
        outs.append((out, dx))
    for out, dx in outs[1:]:
        np.testing.assert_allclose(out, outs[0][0], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(dx, outs[0][1], rtol=1e-4, atol=1e-5)
