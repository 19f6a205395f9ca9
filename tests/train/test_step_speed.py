"""The training-step speed work keeps behaviour: fused in-place ReLU, kept buffers
that are never handed out, and the input gradient skipped only when asked."""

from __future__ import annotations

import numpy as np
import pytest

import fastcnn
from fastcnn.nn.layers import Activation, Conv2D, Dense, Flatten, ReLU
from fastcnn.train.loop import loss_and_gradients, train_step
from fastcnn.train.model import Sequential


def _model(first="conv"):
    fastcnn.random.seed(0)
    if first == "conv":
        layers = [Conv2D(3, 3, padding="same", activation="relu"), Flatten(),
                  Dense(5, activation="relu"), Dense(4, activation="softmax")]
        shape = (2, 5, 5)
    else:
        layers = [Dense(6, activation="relu"), Dense(4, activation="softmax")]
        shape = (7,)
    model = Sequential(layers, input_shape=shape, dtype="float64")
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=())
    return model, shape


@pytest.mark.parametrize("first", ["conv", "dense"])
def test_input_gradient_is_skipped_only_when_nobody_asks(first):
    model, shape = _model(first)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3,) + shape)
    y = np.array([0, 1, 3])
    state = {}
    loss, _ = loss_and_gradients(model, x, y, state=state)
    grads = [p.grad.copy() for p in model.parameters()]
    assert state["dx"].shape == x.shape
    loss2, _ = loss_and_gradients(model, x, y)            # no state: dx skipped
    assert loss2 == loss
    for p, g in zip(model.parameters(), grads):
        np.testing.assert_array_equal(p.grad, g)         # the same parameter gradients
    first_layer = model.layers[0]
    assert first_layer.backward(np.ones_like(first_layer.forward(x, True)), need_dx=False) is None
    out = model.forward(x, training=True)
    assert model.backward(np.ones_like(out)).shape == x.shape
    assert model.backward(np.ones_like(out), need_dx=False) is None
    assert model.backward(np.ones_like(out)).shape == x.shape


def test_fused_relu_equals_a_separate_relu_layer():
    fastcnn.random.seed(3)
    fused = Conv2D(4, 3, padding="same", activation="relu")
    fused.build((2, 6, 6), np.float64)
    plain = Conv2D(4, 3, padding="same")
    plain.build((2, 6, 6), np.float64)
    plain.kernel.data[...] = fused.kernel.data
    relu = ReLU()
    relu.build((4, 6, 6), np.float64)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 2, 6, 6))
    x_copy = x.copy()
    out = fused.forward(x, training=True)
    want = relu.forward(plain.forward(x, training=True), training=True)
    np.testing.assert_array_equal(out, want)
    np.testing.assert_array_equal(x, x_copy)              # the input is never touched
    dout = rng.standard_normal(out.shape)
    dout_copy = dout.copy()
    dx = fused.backward(dout)
    np.testing.assert_array_equal(dx, plain.backward(relu.backward(dout)))
    np.testing.assert_array_equal(dout, dout_copy)        # nor the caller's dout
    np.testing.assert_array_equal(fused.kernel.grad, plain.kernel.grad)
    dx2 = fused.backward(dout)                            # a second backward: new array
    assert dx2 is not dx
    np.testing.assert_array_equal(dx, dx2)


def test_activation_layer_does_not_overwrite_its_input():
    layer = Activation("relu")
    layer.build((5,), np.float32)
    x = np.array([[-1, 2, -3, 4, 0]], dtype=np.float32)
    x_copy = x.copy()
    out = layer.forward(x, training=True)
    np.testing.assert_array_equal(x, x_copy)
    np.testing.assert_array_equal(out, np.maximum(x_copy, 0))
    d1 = layer.backward(np.ones_like(out))
    d2 = layer.backward(np.ones_like(out))
    assert d1 is not d2                                   # handed out: never a kept buffer
    np.testing.assert_array_equal(d1, [[0, 1, 0, 1, 0]])


def test_train_step_matches_the_plain_computation():
    """One Adam step through the fast paths equals one through an unfused twin."""
    model, shape = _model("conv")
    fastcnn.random.seed(0)
    twin = Sequential([Conv2D(3, 3, padding="same"), ReLU(), Flatten(), Dense(5), ReLU(),
                       Dense(4, activation="softmax")], input_shape=shape, dtype="float64")
    twin.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=())
    for p, q in zip(model.parameters(), twin.parameters()):
        q.data[...] = p.data
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((4,) + shape), np.array([0, 1, 2, 3])
    for _ in range(2):
        a, _ = train_step(model, x, y)
        b, _ = train_step(twin, x, y)
        assert a == pytest.approx(b, rel=1e-12)
    for p, q in zip(model.parameters(), twin.parameters()):
        np.testing.assert_allclose(p.data, q.data, rtol=1e-12, atol=1e-14)
