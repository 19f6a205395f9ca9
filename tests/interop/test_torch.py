"""PyTorch export: to_torch (the equivalent torch.nn model) and to_torch_state_dict (for
a torch model written by hand) give model.predict's outputs in torch==2.13.0."""

import numpy as np
import pytest

from fastcnn.interop import load_state_dict_torch, to_torch, to_torch_state_dict
from fastcnn.nn.layers import (
    ELU,
    AveragePooling2D,
    BatchNormalization,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    LeakyReLU,
    Maxout,
    MaxPooling2D,
    PReLU,
    Residual,
    Softmax,
)
from fastcnn.tools.testing import assert_close
from fastcnn.train.model import Sequential
from _interop_nets import images, randomize

torch = pytest.importorskip("torch")
nn = torch.nn
pytestmark = pytest.mark.requires_torch


def torch_compatible_cnn(dtype="float32"):
    """Every layer torch.nn can express, asymmetric "same" padding included."""
    return randomize(Sequential([
        Conv2D(6, 3, strides=2, padding="same", activation="relu"),     # asymmetric pads
        BatchNormalization(),
        Conv2D(6, (2, 3), padding="same", use_bias=False),
        PReLU(),
        MaxPooling2D(2, strides=1, padding="same"),                       # -inf padding
        Residual([Conv2D(6, 3, padding=1, activation="elu"), BatchNormalization()]),
        Residual([Conv2D(4, 1, strides=2), LeakyReLU(0.1)],
                 shortcut=Conv2D(4, 1, strides=2, use_bias=False)),
        AveragePooling2D(2, strides=1),
        Dropout(0.5),
        Flatten(),
        Dense(12, activation="tanh"),
        BatchNormalization(),
        ELU(0.7),
        Dense(3, activation="sigmoid"),
        Dense(3),
        Softmax(),
    ], input_shape=(3, 9, 8), dtype=dtype))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_to_torch_gives_the_same_outputs(dtype):
    model = torch_compatible_cnn(dtype)
    x = images().astype(dtype)
    module = to_torch(model)
    assert not module.training
    with torch.no_grad():
        got = module(torch.from_numpy(x)).numpy()
    assert got.dtype == np.dtype(dtype)
    assert_close(got, model.predict(x), kind="torch-forward", what="torch vs predict")


def test_state_dict_loads_into_a_handwritten_torch_model():
    model = randomize(Sequential([
        Conv2D(8, 3, padding="same", activation="relu"), BatchNormalization(),
        MaxPooling2D(2), Conv2D(4, 3), PReLU(), Flatten(), Dense(10, activation="relu"),
        Dense(3)], input_shape=(1, 8, 8)))
    mine = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.BatchNorm2d(8, eps=1e-3),
        nn.MaxPool2d(2), nn.Conv2d(8, 4, 3), nn.PReLU(4), nn.Flatten(),
        nn.Linear(16, 10), nn.ReLU(), nn.Linear(10, 3)).eval()
    state = to_torch_state_dict(model, like=mine)
    assert list(state) == list(mine.state_dict())
    mine.load_state_dict(state)
    x = images(n=6, shape=(1, 8, 8))
    with torch.no_grad():
        got = mine(torch.from_numpy(x)).numpy()
    assert_close(got, model.predict(x), kind="torch-forward", what="hand-written torch")
    # and the way back in restores the same weights
    clone = Sequential.from_config(model.get_config())
    load_state_dict_torch(clone, state)
    for a, b in zip(model.parameters(), clone.parameters()):
        np.testing.assert_array_equal(a.data, b.data)


def test_state_dict_mismatch_errors():
    model = Sequential([Flatten(), Dense(3)], input_shape=(1, 2, 2))
    with pytest.raises(ValueError, match=r"'0.weight' has shape \(3, 5\) in `like` but "
                                         r"fastcnn's 'dense_1/kernel' has \(3, 4\)"):
        to_torch_state_dict(model, like=nn.Sequential(nn.Linear(5, 3)))
    with pytest.raises(ValueError, match="`like` has more entries"):
        to_torch_state_dict(model, like=nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 3)))
    with pytest.raises(ValueError, match="the model has arrays `like` has no entry for"):
        to_torch_state_dict(model, like=nn.Sequential(nn.Linear(4, 3, bias=False)))
    with pytest.raises(NotImplementedError, match="Maxout"):
        to_torch(Sequential([Maxout(2, 2)], input_shape=(3,)))
    with pytest.raises(NotImplementedError, match="AveragePooling2D with padding"):
        to_torch(Sequential([AveragePooling2D(2, padding="same")], input_shape=(1, 3, 3)))
