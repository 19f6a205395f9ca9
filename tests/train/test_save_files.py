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


def test_modelcheckpoint_refuses_another_extension_before_training(tmp_path):
    from fastcnn.train.callbacks import ModelCheckpoint
    with pytest.raises(ValueError, match=r"ModelCheckpoint: filepath.*'\.npz'.*load_keras"):
        ModelCheckpoint(str(tmp_path / "best-{epoch:02d}.keras"))
    # the Keras-style pattern with a .npz suffix is accepted as before
    ModelCheckpoint(str(tmp_path / "ckpt-{epoch:02d}-{val_loss:.3f}.npz"))


@pytest.mark.parametrize("name, content, hint", [
    # a real .keras file is a zip of config.json + model.weights.h5
    ("m.keras", "zip", r"Keras file: read it with fastcnn\.interop\.load_keras"),
    ("m.h5", b"\x89HDF\r\n\x1a\n" + bytes(64), r"Keras 2 HDF5 file"),
    ("m.onnx", b"\x08\x07" + bytes(32), r"ONNX file.*does not import"),
    ("m.pt", b"PK\x03\x04" + bytes(32), r"PyTorch file.*load_state_dict_torch"),
])
def test_loading_another_programs_file_names_the_right_reader(tmp_path, name, content, hint):
    import zipfile
    path = tmp_path / name
    if content == "zip":
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("config.json", "{}")
            archive.writestr("model.weights.h5", b"")
    else:
        path.write_bytes(content)
    with pytest.raises(ValueError, match=hint):
        load_model(path)
    with pytest.raises(ValueError, match=hint):
        _model().load_weights(path)


def test_a_broken_npz_gets_no_other_programs_hint(tmp_path):
    path = tmp_path / "m.npz"
    path.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a readable fastcnn file") as info:
        load_model(path)
    assert "It looks like" not in str(info.value)
