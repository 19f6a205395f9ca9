"""Sequential: summary counts equal Keras', fit/evaluate/predict, softmax fusion,
save/load round trips, file errors, PyTorch state dicts."""

import json
import os
import re

import numpy as np
import pytest

from fastcnn.nn.layers import (
    AveragePooling2D,
    BatchNormalization,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    MaxPooling2D,
    ReLU,
    Residual,
    Softmax,
)
from fastcnn.train.model import Sequential, load_model


def lenet5():
    # Keras (LeCun-style, 'same' first conv on 28x28):
    #   Conv2D(6, 5):   6*1*5*5 + 6     =    156
    #   Conv2D(16, 5):  16*6*5*5 + 16   =  2,416   (14x14 -> 10x10, pooled to 5x5)
    #   Dense(120):     400*120 + 120   = 48,120
    #   Dense(84):      120*84 + 84     = 10,164
    #   Dense(10):      84*10 + 10      =    850   -> total 61,706, all trainable
    return Sequential([
        Conv2D(6, 5, padding="same", activation="tanh"), AveragePooling2D(),
        Conv2D(16, 5, activation="tanh"), AveragePooling2D(), Flatten(),
        Dense(120, activation="tanh"), Dense(84, activation="tanh"),
        Dense(10, activation="softmax")], input_shape=(1, 28, 28))


def vgg_bn():
    # Keras, on 32x32x3:
    #   Conv2D(32): 3*9*32+32 = 896      BN(32): 128 (64 non-trainable)
    #   Conv2D(32): 32*9*32+32 = 9,248   BN(32): 128
    #   Conv2D(64): 32*9*64+64 = 18,496  BN(64): 256
    #   Conv2D(64): 64*9*64+64 = 36,928  BN(64): 256
    #   Dense(128): 4096*128+128 = 524,416  BN(128): 512   Dense(10): 1,290
    #   total 592,554; non-trainable 2*(32+32+64+64+128) = 640; trainable 591,914
    return Sequential([
        Conv2D(32, 3, padding="same", activation="relu"), BatchNormalization(),
        Conv2D(32, 3, padding="same", activation="relu"), BatchNormalization(),
        MaxPooling2D(), Dropout(0.25),
        Conv2D(64, 3, padding="same", activation="relu"), BatchNormalization(),
        Conv2D(64, 3, padding="same", activation="relu"), BatchNormalization(),
        MaxPooling2D(), Dropout(0.25), Flatten(),
        Dense(128, activation="relu"), BatchNormalization(), Dropout(0.5),
        Dense(10, activation="softmax")], input_shape=(3, 32, 32))


def _summary(model):
    lines = []
    model.summary(print_fn=lines.append)
    return lines[0]


@pytest.mark.parametrize("make, total, trainable, frozen", [
    (lenet5, "61,706", "61,706", "0"), (vgg_bn, "592,554", "591,914", "640")],
    ids=["lenet5", "vgg-bn"])
def test_summary_counts_equal_keras(make, total, trainable, frozen):
    model = make()
    text = _summary(model)
    assert f"Total params: {total}" in text
    assert f"Trainable params: {trainable}" in text
    assert f"Non-trainable params: {frozen}" in text
    assert model.count_params() == int(total.replace(",", ""))


def test_summary_rows():
    text = _summary(lenet5())
    assert re.search(r"conv2d_1 \(Conv2D\)\s+\(None, 6, 28, 28\)\s+156", text)
    assert re.search(r"dense_1 \(Dense\)\s+\(None, 120\)\s+48,120", text)
    assert text.splitlines()[2].split() == ["Layer", "(type)", "Output", "Shape", "Param", "#"]


def test_summary_before_build():
    with pytest.raises(RuntimeError, match="the model is not built"):
        Sequential([Dense(2)]).summary()


def test_layer_and_parameter_names_are_unique():
    model = Sequential([Conv2D(2, 3), Conv2D(2, 3), Flatten(), Dense(2)], input_shape=(1, 8, 8))
    assert [layer.name for layer in model.layers] == ["conv2d_1", "conv2d_2", "flatten_1",
                                                      "dense_1"]
    assert [p.name for p in model.parameters()][:2] == ["conv2d_1/kernel", "conv2d_1/bias"]
    with pytest.raises(ValueError, match="layer name 'conv2d_1' is used twice"):
        model.add(Dense(2, name="conv2d_1"))


def test_add_pop_and_deferred_build():
    model = Sequential()
    model.add(Dense(4, activation="relu"))
    model.add(Dense(2))
    assert not model.built
    out = model.predict(np.ones((3, 5), np.float32))
    assert out.shape == (3, 2) and model.input_shape == (5,)
    assert isinstance(model.pop(), Dense) and model.output_shape == (4,)


def separable(n=240, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = rng.standard_normal((n, 1, 6, 6)).astype(np.float32) * 0.5
    for k in range(3):                       # class k: a bright band in rows 2k, 2k+1
        x[y == k, 0, 2 * k:2 * k + 2, :] += 2.0
    return x, y


def small_cnn(**kwargs):
    return Sequential([Conv2D(4, 3, padding="same", activation="relu"), MaxPooling2D(),
                       Flatten(), Dense(3, activation="softmax")], input_shape=(1, 6, 6),
                      **kwargs)


def test_fit_reduces_loss_on_separable_data():
    x, y = separable()
    model = small_cnn()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, batch_size=16, epochs=8, validation_data=(x[:60], y[:60]),
                        verbose=0, seed=0)
    h = history.history
    assert set(h) == {"loss", "accuracy", "val_loss", "val_accuracy", "lr"}
    assert len(h["loss"]) == 8 and history.epoch == list(range(8))
    assert h["loss"][-1] < 0.5 * h["loss"][0]
    assert h["accuracy"][-1] > 0.9
    loss, acc = model.evaluate(x, y)
    assert acc > 0.9 and loss < h["loss"][0]
    probs = model.predict(x[:7], batch_size=3)
    assert probs.shape == (7, 3)
    np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-5)   # predict: probabilities


def test_fit_with_one_hot_targets_and_dense_head():
    x, y = separable()
    model = Sequential([Flatten(), Dense(16, activation="relu"), Dropout(0.1), Dense(3),
                        Softmax()], input_shape=(1, 6, 6))
    model.compile("sgd", "categorical_crossentropy", ["accuracy"])
    assert model.fused_softmax
    history = model.fit(x, np.eye(3)[y], epochs=5, verbose=0, seed=1)
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_fused_loss_equals_unfused_and_gradient_is_p_minus_y():
    x, y = separable(n=8)
    model = small_cnn(dtype="float64")
    model.compile("sgd", "sparse_categorical_crossentropy")
    x = x.astype(np.float64)
    logits = model.forward_for_loss(x, training=True)
    probs = model.forward(x, training=True)
    loss = model.compiled_loss.forward(logits, y)
    assert loss == pytest.approx(-np.mean(np.log(probs[np.arange(8), y])), rel=1e-12)
    np.testing.assert_allclose(model.compiled_loss.backward(), (probs - np.eye(3)[y]) / 8,
                               atol=1e-15)


def test_regularization_adds_to_loss():
    x, y = separable(n=32)
    model = Sequential([Flatten(), Dense(3, kernel_regularizer={"class_name": "L2",
                                                               "config": {"l2": 0.1}})],
                       input_shape=(1, 6, 6))
    model.compile("sgd", "mse", metrics=[])
    target = np.eye(3)[y]
    w = model.layers[1].kernel.data
    plain = np.mean((model.predict(x) - target) ** 2)
    assert model.evaluate(x, target) == pytest.approx(plain + 0.1 * np.sum(w.astype(float) ** 2),
                                                      rel=1e-5)


def test_frozen_layer_is_not_updated():
    x, y = separable(n=32)
    model = small_cnn()
    model.layers[0].trainable = False
    before = model.layers[0].kernel.data.copy()
    model.compile("sgd", "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=1, verbose=0)
    np.testing.assert_array_equal(model.layers[0].kernel.data, before)
    assert "Non-trainable params: 40" in _summary(model)


def test_fit_errors():
    x, y = separable(n=8)
    model = small_cnn()
    with pytest.raises(RuntimeError, match=re.escape(
            "Sequential.fit: the model is not compiled. Hint: call model.compile(")):
        model.fit(x, y)
    model.compile()
    with pytest.raises(TypeError, match=re.escape(
            "Sequential.fit: x must hold numbers (bool, int or float); got dtype <U1.")):
        model.fit(np.full(x.shape, "a"), y)
    with pytest.raises(ValueError, match="x and y must hold the same number of samples; "
                                         "got len\\(x\\)=8, y.shape=\\(7,\\)"):
        model.fit(x, y[:7])
    with pytest.raises(ValueError, match="batch_size must be a positive int; got 0"):
        model.fit(x, y, batch_size=0)


def test_model_config_roundtrip():
    model = vgg_bn()
    text = json.dumps(model.get_config())
    clone = Sequential.from_config(json.loads(text))
    assert json.dumps(clone.get_config()) == text
    assert clone.count_params() == model.count_params()


def _trained_model(tmp_path):
    x, y = separable(n=64)
    model = Sequential([Conv2D(3, 3, padding="same"), BatchNormalization(), ReLU(),
                        Residual([Conv2D(3, 3, padding="same"), ReLU()]),
                        MaxPooling2D(), Flatten(), Dense(3, activation="softmax")],
                       input_shape=(1, 6, 6), name="net")
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, batch_size=16, epochs=2, verbose=0, seed=0)
    return model, x, y


def test_save_load_roundtrip_and_training_continues_identically(tmp_path):
    model, x, y = _trained_model(tmp_path)
    path = tmp_path / "model.npz"
    model.save(path)
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]    # temp file gone
    clone = load_model(path)
    assert clone.name == "net" and clone.optimizer.iterations == model.optimizer.iterations
    np.testing.assert_array_equal(clone.predict(x), model.predict(x))
    for a, b in zip(model.states().values(), clone.states().values()):
        np.testing.assert_array_equal(a, b)
    model.fit(x, y, batch_size=16, epochs=1, verbose=0, seed=5)
    clone.fit(x, y, batch_size=16, epochs=1, verbose=0, seed=5)
    np.testing.assert_array_equal(clone.predict(x), model.predict(x))


def test_save_weights_load_weights(tmp_path):
    model, x, _ = _trained_model(tmp_path)
    model.save_weights(tmp_path / "w.npz")
    fresh = Sequential.from_config(model.get_config())
    fresh.load_weights(tmp_path / "w.npz")
    np.testing.assert_array_equal(fresh.predict(x), model.predict(x))
    with pytest.raises(ValueError, match="holds 'fastcnn-weights', not a model"):
        load_model(tmp_path / "w.npz")
    with pytest.raises(ValueError, match="the file holds 8 weight arrays and 2 state arrays; "
                                         "the model has 2 and 0"):
        Sequential([Dense(2)], input_shape=(3,)).load_weights(tmp_path / "w.npz")


def test_truncated_file_gives_clear_error(tmp_path):
    model, _, _ = _trained_model(tmp_path)
    path = tmp_path / "model.npz"
    model.save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="is not a readable fastcnn file .* It may be truncated"):
        load_model(path)


def test_foreign_files_give_clear_errors(tmp_path):
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(ValueError, match="is a .npz file but not a fastcnn model/weights file"):
        load_model(tmp_path / "other.npz")
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(ValueError, match="is not a readable fastcnn file"):
        load_model(tmp_path / "text.npz")
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_model(tmp_path / "missing.npz")


def test_load_state_dict_torch_matches_pytorch():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
        torch.nn.MaxPool2d(2), torch.nn.Flatten(), torch.nn.Linear(36, 3)).double().eval()
    with torch.no_grad():                    # non-trivial running statistics
        net[1].running_mean.uniform_(-1, 1)
        net[1].running_var.uniform_(0.5, 2)
    model = Sequential([Conv2D(4, 3, padding="same"), BatchNormalization(epsilon=1e-5), ReLU(),
                        MaxPooling2D(), Flatten(), Dense(3)], input_shape=(1, 6, 6),
                       dtype="float64")
    model.load_state_dict_torch(net.state_dict())
    x = np.random.default_rng(0).standard_normal((5, 1, 6, 6))
    expected = net(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(model.predict(x), expected, rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="'5.weight' has shape \\(36, 3\\) \\(transposed\\)"):
        Sequential([Conv2D(4, 3, padding="same"), BatchNormalization(), Flatten(), Dense(3)],
                   input_shape=(1, 6, 6)).load_state_dict_torch(net.state_dict())
