"""load_keras: a .keras file saved by real Keras 3 (torch backend) gives the same
predictions in fastcnn, and fine-tunes like any fastcnn model."""

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
    (tmp_path / "junk.keras").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="is not a Keras 3 .keras file"):
        load_keras(tmp_path / "junk.keras")
    with pytest.raises(FileNotFoundError, match="load_keras: no such file"):
        load_keras(tmp_path / "missing.keras")
