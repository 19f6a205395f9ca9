"""PyTorch export: to_torch (the equivalent torch.nn model) and to_torch_state_dict (for
a torch model written by hand) give model.predict's outputs in torch==2.13.0."""

import numpy as np
import pytest

from fastcnn.interop import load_state_dict_torch, to_torch, to_torch_state_dict
from fastcnn.nn.layers import (
    AveragePooling2D,
    BatchNormalization,
    Conv2D,
    Dense,
    Flatten,
    GlobalAveragePooling2D,
    Maxout,
    MaxPooling2D,
    PReLU,
)
from fastcnn.tools.testing import assert_close
from fastcnn.train.functional import Model
from fastcnn.train.model import Sequential
from _interop_nets import every_layer_cnn, image_output_net, images, merge_net, randomize

torch = pytest.importorskip("torch")
nn = torch.nn
pytestmark = pytest.mark.requires_torch


def run_torch(module, x):
    with torch.no_grad():
        return module(torch.from_numpy(x)).numpy()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_to_torch_gives_the_same_outputs(dtype):
    model = every_layer_cnn(dtype)
    x = images().astype(dtype)
    module = to_torch(model)
    assert not module.training and isinstance(module, nn.Sequential)
    got = run_torch(module, x)
    assert got.dtype == np.dtype(dtype)
    assert_close(got, model.predict(x), kind="torch-forward", what="torch vs predict")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("data_format", ["channels_first", "channels_last"])
def test_functional_model_with_every_merge_layer(data_format, dtype):
    model = merge_net(data_format)
    if dtype == "float64":            # the same graph in float64, with the same weights
        config = model.get_config()
        config["layers"][0]["config"]["dtype"] = "float64"
        clone = Model.from_config(config)
        clone.set_weights(model.get_weights())
        model = clone
    x = images(n=6).astype(dtype)
    if data_format == "channels_last":
        x = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    module = to_torch(model)
    assert type(module).__name__ == ("GraphModule" if data_format == "channels_first"
                                     else "Sequential")
    assert_close(run_torch(module, x), model.predict(x), kind="torch-forward",
                 what="torch GraphModule vs predict")
    # the state_dict alone rebuilds it: a fresh module of the same structure
    fresh = to_torch(merge_net(data_format, seed=7)).to(module_dtype(dtype))
    fresh.load_state_dict(to_torch_state_dict(model))
    assert_close(run_torch(fresh, x), model.predict(x), kind="torch-forward",
                 what="state_dict into a fresh GraphModule")


def module_dtype(dtype):
    return {"float32": torch.float32, "float64": torch.float64}[dtype]


def test_image_output_comes_back_channels_last():
    model = image_output_net("channels_last")
    x = images(n=3, shape=(6, 5, 2))
    got = run_torch(to_torch(model), x)
    assert got.shape == (3, 6, 5, 4)
    assert_close(got, model.predict(x), kind="torch-forward", what="channels-last image out")


@pytest.mark.parametrize("pool, strides, width, native", [
    (3, 2, 7, True),              # 7x7: "same" pads 1 on every side -> nn.AvgPool2d
    (3, 2, 6, False),             # 7x6: W padded (0, 1) -> explicit pad + divisor map
    (2, 1, 7, False),             # even window: (0, 1) on both axes
])
def test_same_average_pooling_excludes_the_padding_from_the_count(pool, strides, width,
                                                                   native):
    model = Sequential([AveragePooling2D(pool, strides=strides, padding="same")],
                       input_shape=(2, 7, width), dtype="float64")
    x = images(n=2, shape=(2, 7, width)).astype(np.float64)
    module = to_torch(model)
    assert isinstance(module[0], nn.AvgPool2d) == native
    assert_close(run_torch(module, x), model.predict(x), kind="torch-forward",
                 what=f"'same' average pooling {pool}x{pool}/{strides}, width {width}")


def test_maxout_is_a_linear_then_a_max_over_the_pieces():
    model = randomize(Sequential([Flatten(), Maxout(4, pieces=3), Dense(2)],
                                 input_shape=(1, 3, 3)))
    module = to_torch(model)
    assert isinstance(module[1], nn.Linear) and module[1].out_features == 12
    x = images(n=4, shape=(1, 3, 3))
    assert_close(run_torch(module, x), model.predict(x), kind="torch-forward", what="maxout")


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


@pytest.mark.parametrize("make", [every_layer_cnn, merge_net])
def test_state_dict_round_trips_through_load_state_dict_torch(make):
    model = make()
    clone = type(model).from_config(model.get_config())
    load_state_dict_torch(clone, to_torch_state_dict(model))
    for a, b in zip(model.get_weights(), clone.get_weights()):
        np.testing.assert_array_equal(a, b)
    x = images(n=3)
    np.testing.assert_array_equal(clone.predict(x), model.predict(x))


def test_state_dict_mismatch_errors():
    model = Sequential([Flatten(), Dense(3)], input_shape=(1, 2, 2))
    with pytest.raises(ValueError, match=r"'0.weight' has shape \(3, 5\) in `like` but "
                                         r"fastcnn's 'dense_1/kernel' has \(3, 4\)"):
        to_torch_state_dict(model, like=nn.Sequential(nn.Linear(5, 3)))
    with pytest.raises(ValueError, match="`like` has more entries"):
        to_torch_state_dict(model, like=nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 3)))
    with pytest.raises(ValueError, match="the model has arrays `like` has no entry for"):
        to_torch_state_dict(model, like=nn.Sequential(nn.Linear(4, 3, bias=False)))
    with pytest.raises(NotImplementedError, match=r"'global_average_pooling2d_1' "
                                                  r"\(GlobalAveragePooling2D\) has no torch"):
        to_torch(Sequential([GlobalAveragePooling2D()], input_shape=(1, 3, 3)))
