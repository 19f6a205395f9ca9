"""Files written by save/save_weights: normal permissions, and only the .npz format."""

import os
import stat

import numpy as np
import pytest

from fastcnn.nn.layers import Dense
from fastcnn.train.model import Sequential, load_model


def _model():
    model = Sequential([Dense(3)], input_shape=(4,))
    model.compile(optimizer="sgd", loss="mse")
    return model


@pytest.fixture
def umask():
    """Run the test under a known umask, restored afterwards."""
    def set_umask(value):
        set_umask.old.append(os.umask(value))
    set_umask.old = []
    yield set_umask
    for old in reversed(set_umask.old):
        os.umask(old)


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
@pytest.mark.parametrize("mask, expected", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
@pytest.mark.parametrize("method", ["save", "save_weights"])
def test_saved_files_get_the_permissions_the_umask_gives(tmp_path, umask, mask, expected,
                                                        method):
    umask(mask)
    path = tmp_path / "m.npz"
    getattr(_model(), method)(path)
    assert stat.S_IMODE(path.stat().st_mode) == expected
    assert sorted(os.listdir(tmp_path)) == ["m.npz"]          # no temp file left


def test_overwrite_keeps_content_correct(tmp_path):
    model = _model()
    path = tmp_path / "m.npz"
    model.save(path)
    model.layers[0].kernel.data[...] = 7.0
    model.save(path)
    np.testing.assert_array_equal(load_model(path).layers[0].kernel.data, 7.0)


@pytest.mark.parametrize("name, hint", [
    ("m.keras", "load_keras reads them"),
    ("m.h5", "load_keras reads .keras"),
    ("m.onnx", "export_onnx"),
    ("m.pt", "to_torch_state_dict"),
    ("m.npy", "fastcnn's own format is .npz"),
    ("model", "fastcnn's own format is .npz"),
])
@pytest.mark.parametrize("method", ["save", "save_weights"])
def test_other_extensions_are_refused_before_writing(tmp_path, name, hint, method):
    with pytest.raises(ValueError, match=rf"{method}: path must end in '\.npz'.*{name}.*"
                                         rf"Hint: .*{hint}"):
        getattr(_model(), method)(tmp_path / name)
    assert os.listdir(tmp_path) == []


def test_uppercase_npz_is_accepted(tmp_path):
    _model().save(tmp_path / "M.NPZ")
    assert load_model(tmp_path / "M.NPZ").built
