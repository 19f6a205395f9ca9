"""load_keras: a .keras file saved by real Keras 3 (torch backend), Sequential or
functional, channels-last or channels-first, gives the same predictions in fastcnn, and
fine-tunes like any fastcnn model."""

import os

import numpy as np
import pytest

from fastcnn.interop import load_keras
from fastcnn.interop.keras import keras_weight_path
from fastcnn.nn.layers import Dense
from fastcnn.tools.testing import assert_close

os.environ.setdefault("KERAS_BACKEND", "torch")   # read once, when keras is imported
pytest.importorskip("h5py")
keras = pytest.importorskip("keras")
if keras.backend.backend() != "torch":
    pytest.skip(f"keras runs on {keras.backend.backend()!r}; these tests use its torch "
                f"backend (KERAS_BACKEND=torch)", allow_module_level=True)
layers = keras.layers
# Keras' torch backend calls np.array(tensor, copy=False): NumPy 2 deprecation, not ours
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def randomize_keras(model, seed=0):
    """Random weights and moving statistics (Keras initializes BN to 1/0 and biases to 0)."""
    rng = np.random.default_rng(seed)
    for w in model.weights:
        shape = tuple(w.shape)
        value = (rng.uniform(0.5, 2.0, shape) if "variance" in w.path
                 else rng.normal(0, 0.5, shape))
        w.assign(value.astype("float32"))
    return model


def keras_cnn():
    return randomize_keras(keras.Sequential([
        keras.Input((9, 8, 3)),
        layers.Conv2D(6, 3, strides=2, padding="same", activation="relu"),   # asymmetric
        layers.BatchNormalization(),
        layers.Conv2D(6, (2, 3), padding="same", use_bias=False),
        layers.PReLU(shared_axes=[1, 2]),
        layers.MaxPooling2D(2, strides=1, padding="same"),
        layers.Conv2D(5, 3, activation="elu"),
        layers.AveragePooling2D(2, strides=1, padding="same"),
        layers.Activation("tanh"),
        layers.LeakyReLU(negative_slope=0.1),
        layers.Flatten(),                                    # (H, W, C) order in Keras
        layers.BatchNormalization(),
        layers.Dropout(0.3),
        layers.Dense(16, activation="sigmoid"),
        layers.ReLU(),
        layers.ELU(alpha=0.5),
        layers.Dense(4),
        layers.Softmax(),
    ]))


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    model = keras_cnn()
    path = tmp_path_factory.mktemp("keras") / "cnn.keras"
    model.save(path)
    x = np.random.default_rng(1).normal(0, 1, (6, 9, 8, 3)).astype(np.float32)
    return path, x, np.asarray(model.predict(x, verbose=0))


def test_predictions_equal_keras(saved):
    path, x_nhwc, expected = saved
    model = load_keras(path)
    assert model.input_shape == (3, 9, 8)
    got = model.predict(x_nhwc.transpose(0, 3, 1, 2))
    assert_close(got, expected, kind="torch-forward", what="fastcnn vs keras predict")


def test_parameter_counts_equal_keras(saved):
    path, _, _ = saved
    assert load_keras(path).count_params() == keras.saving.load_model(path).count_params()


def test_transfer_learning_freeze_and_replace_the_head(saved):
    path, x_nhwc, _ = saved
    model = load_keras(path)
    for layer in model.layers:
        layer.trainable = False
    model.pop()                                   # Softmax
    model.pop()                                   # Dense(4): the old head
    model.add(Dense(2, activation="softmax", name="new_head"))
    frozen = [p.data.copy() for p in model.parameters() if not p.trainable]
    head = model.layers[-1].kernel.data.copy()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    x = x_nhwc.transpose(0, 3, 1, 2).copy()
    model.fit(x, np.array([0, 1, 0, 1, 0, 1]), epochs=2, batch_size=3, verbose=0, seed=0)
    for before, p in zip(frozen, [p for p in model.parameters() if not p.trainable]):
        np.testing.assert_array_equal(before, p.data)
    assert not np.array_equal(head, model.layers[-1].kernel.data)
    assert model.predict(x).shape == (6, 2)


def keras_functional(data_format="channels_last"):
    """A functional Keras model with every merge layer: a ResNet-style block (Conv-BN-
    ReLU-Conv-BN + a 1x1 projection, Add, ReLU), an Inception-style Concatenate on the
    channels, a Multiply gate, and two flattened branches of different sizes joined
    (their feature orders too) before a BatchNormalization and the Dense head."""
    last = data_format == "channels_last"
    image = dict(data_format=data_format)
    inputs = keras.Input((9, 8, 3) if last else (3, 9, 8), name="pixels")
    h = layers.Conv2D(6, 3, strides=2, padding="same", **image)(inputs)
    h = layers.ReLU()(layers.BatchNormalization(axis=-1 if last else 1)(h))
    h = layers.Conv2D(6, 3, padding="same", **image)(h)
    h = layers.BatchNormalization(axis=-1 if last else 1)(h)
    x = layers.ReLU()(layers.Add()([h, layers.Conv2D(6, 1, strides=2, **image)(inputs)]))
    pooled = layers.MaxPooling2D(3, strides=1, padding="same", **image)(x)
    x = layers.Concatenate(axis=-1 if last else 1)([
        layers.Conv2D(3, 1, **image)(x),
        layers.Conv2D(4, 3, padding="same", activation="relu", **image)(x),
        layers.Conv2D(2, 1, **image)(pooled)])
    x = layers.Multiply()([x, layers.Conv2D(9, 1, activation="sigmoid", **image)(x)])
    small = layers.AveragePooling2D(2, padding="same", **image)(x)
    flat = layers.Concatenate()([layers.Flatten(**image)(x), layers.Flatten(**image)(small)])
    flat = layers.BatchNormalization()(flat)
    outputs = layers.Dense(3, name="head")(layers.Dense(8, activation="tanh")(flat))
    return randomize_keras(keras.Model(inputs, outputs, name=f"merges_{data_format}"))


@pytest.fixture(scope="module", params=["channels_last", "channels_first"])
def saved_functional(request, tmp_path_factory):
    model = keras_functional(request.param)
    path = tmp_path_factory.mktemp("keras") / "functional.keras"
    model.save(path)
    x = np.random.default_rng(2).normal(0, 1, (6, 3, 9, 8)).astype(np.float32)
    x_keras = x.transpose(0, 2, 3, 1).copy() if request.param == "channels_last" else x
    return path, x, np.asarray(model.predict(x_keras, verbose=0))


def test_functional_predictions_equal_keras(saved_functional):
    path, x_nchw, expected = saved_functional
    model = load_keras(path)
    assert type(model).__name__ == "Model" and model.input_shape == (3, 9, 8)
    assert {"Add", "Multiply", "Concatenate"} <= {type(la).__name__ for la in model.layers}
    assert model.count_params() == keras.saving.load_model(path).count_params()
    assert_close(model.predict(x_nchw), expected, kind="torch-forward",
                 what="fastcnn vs keras predict, functional")


def test_functional_model_fine_tunes(saved_functional):
    path, x, _ = saved_functional
    model = load_keras(path)
    for layer in model.layers:
        layer.trainable = layer.name == "head"
    frozen = [p.data.copy() for p in model.parameters() if not p.trainable]
    head = model.get_layer("head").kernel.data.copy()
    model.compile(optimizer="adam", loss="mse")
    model.fit(x, np.zeros((6, 3), np.float32), epochs=2, batch_size=3, verbose=0, seed=0)
    for before, p in zip(frozen, [p for p in model.parameters() if not p.trainable]):
        np.testing.assert_array_equal(before, p.data)
    assert not np.array_equal(head, model.get_layer("head").kernel.data)


def test_channels_first_flatten_orders_like_keras(tmp_path):
    """Keras' Flatten(data_format="channels_first") moves the channels last before it
    flattens; a channels-last Flatten in a channels-first model flattens (C, H, W)."""
    for flatten_format in ("channels_first", "channels_last"):
        model = randomize_keras(keras.Sequential([
            keras.Input((3, 7, 6)),
            layers.Conv2D(4, 3, padding="same", data_format="channels_first"),
            layers.BatchNormalization(axis=1), layers.PReLU(shared_axes=[2, 3]),
            layers.AveragePooling2D(2, strides=1, padding="same", data_format="channels_first"),
            layers.Flatten(data_format=flatten_format), layers.Dense(3)]))
        model.save(tmp_path / "cf.keras")
        x = np.random.default_rng(3).normal(0, 1, (4, 3, 7, 6)).astype(np.float32)
        assert_close(load_keras(tmp_path / "cf.keras").predict(x),
                     np.asarray(model.predict(x, verbose=0)), kind="torch-forward",
                     what=f"channels-first model, Flatten {flatten_format}")


def test_weight_paths_follow_keras_naming():
    used = {}
    names = [keras_weight_path(c, used) for c in
             ("Conv2D", "BatchNormalization", "Conv2D", "PReLU", "MaxPooling2D", "Dense")]
    assert names == ["layers/conv2d/vars", "layers/batch_normalization/vars",
                     "layers/conv2d_1/vars", "layers/p_re_lu/vars",
                     "layers/max_pooling2d/vars", "layers/dense/vars"]


def test_unsupported_layers_and_files_are_named(tmp_path):
    model = keras.Sequential([keras.Input((6, 6, 1)), layers.Conv2D(2, 3, dilation_rate=2)])
    model.save(tmp_path / "dilated.keras")
    with pytest.raises(NotImplementedError, match=r"'conv2d.*' \(Conv2D\): dilation_rate="
                                                  r"\(2, 2\) is not supported; fastcnn "
                                                  r"supports dilation_rate=\(1, 1\)\."):
        load_keras(tmp_path / "dilated.keras")
    model = keras.Sequential([keras.Input((4,)), layers.Dense(2, activation="gelu")])
    model.save(tmp_path / "gelu.keras")
    with pytest.raises(NotImplementedError, match="activation 'gelu' is not supported"):
        load_keras(tmp_path / "gelu.keras")
    inputs = keras.Input((4,))
    shared = layers.Dense(4)
    model = keras.Model(inputs, layers.Add()([shared(inputs), shared(shared(inputs))]))
    model.save(tmp_path / "shared.keras")
    with pytest.raises(NotImplementedError, match=r"\(Dense\): a layer called 3 times "
                                                  r"\(shared weights\) is not supported"):
        load_keras(tmp_path / "shared.keras")
    inputs = keras.Input((4,))
    model = keras.Model(inputs, layers.Subtract()([inputs, layers.Dense(4)(inputs)]))
    model.save(tmp_path / "subtract.keras")
    with pytest.raises(NotImplementedError, match=r"\(Subtract\): this layer type"):
        load_keras(tmp_path / "subtract.keras")
    (tmp_path / "junk.keras").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="is not a Keras 3 .keras file"):
        load_keras(tmp_path / "junk.keras")
    with pytest.raises(FileNotFoundError, match="load_keras: no such file"):
        load_keras(tmp_path / "missing.keras")
