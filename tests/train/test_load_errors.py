"""Loading damaged or hostile model files (issue 13): every problem is a ValueError that
names the file, what was expected and what was found -- never a KeyError,
AttributeError or TypeError from inside the loader, never a hint to unpickle, never an
allocation the file's real arrays do not justify."""

import json
import pickle
import tracemalloc

import numpy as np
import pytest

from fastcnn.nn.layers import BatchNormalization, Conv2D, Dense, Flatten, ReLU
from fastcnn.train.model import Sequential, load_model
from _model_helpers import make_blobs


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A small trained, compiled model's file (Adam state included) and its contents."""
    with np.errstate(all="ignore"):
        x, y = make_blobs(n=32)
        model = Sequential([Conv2D(2, 3, padding="same"), BatchNormalization(), ReLU(),
                            Flatten(), Dense(3, activation="softmax")], input_shape=(1, 4, 4))
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
        model.fit(x, y, batch_size=16, epochs=1, verbose=0, seed=0)
    path = tmp_path_factory.mktemp("saved") / "model.npz"
    model.save(path)
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    header = json.loads(arrays.pop("__fastcnn__").tobytes())
    return path, header, arrays


def write(path, header, arrays):
    """A file with ``arrays`` and ``header`` (any JSON value) as np.savez writes it."""
    raw = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    np.savez(path, __fastcnn__=raw, **arrays)
    return path


def mutated(saved, tmp_path, change):
    """A copy of the saved file after ``change(header, arrays)`` (may return a header)."""
    _, header, arrays = saved
    header, arrays = json.loads(json.dumps(header)), dict(arrays)
    header = change(header, arrays) or header
    return write(tmp_path / "bad.npz", header, arrays)


def assert_names_file(exc_info, path):
    assert repr(str(path)) in str(exc_info.value), str(exc_info.value)


def _set(key, value):
    def change(header, arrays):
        header[key] = value
    return change


def _layer(index, **config):
    def change(header, arrays):
        header["model"]["layers"][index]["config"].update(config)
    return change


HEADERS = {
    # the audit's exact failures first
    "missing-model": (lambda h, a: h.pop("model") and None, r"'model' must be an architecture "
                      r"config object; got None"),                     # was KeyError: 'model'
    "weight-not-in-file": (lambda h, a: h["weights"].append("nope"),
                           r"lists weight 'nope' in its header but holds no array "
                           r"'param/nope'"),                           # was KeyError 'param/nope'
    "header-is-list": (lambda h, a: [1, 2], r"the header must be a JSON object; got \[1, 2\]"),
    "weights-is-int": (_set("weights", 7), r"'weights' must be a list of str; got 7"),
    "version-is-str": (_set("version", "2"), r"'version' must be a positive int; got '2'"),
    # and the neighbours
    "version-too-new": (_set("version", 99), r"has format version 99; this fastcnn reads up to 1"),
    "format-unknown": (_set("format", "keras"), r"'format' must be one of \['fastcnn-model', "
                       r"'fastcnn-weights'\]; got 'keras'"),
    "states-duplicated": (lambda h, a: h["states"].append(h["states"][0]),
                          r"'states' must be distinct names"),
    "model-is-str": (_set("model", "resnet"), r"'model' must be an architecture config object"),
    "compile-is-list": (_set("compile", [1]), r"'compile' must be null or an object"),
    "metrics-not-list": (lambda h, a: h["compile"].update(metrics="accuracy"),
                         r"compile.metrics must be a list of str; got 'accuracy'"),
    "iterations-negative": (_set("optimizer_iterations", -3),
                            r"'optimizer_iterations' must be a non-negative int; got -3"),
    "no-layers": (lambda h, a: h["model"].pop("layers") and None,
                  r"its architecture config cannot be used \(KeyError: 'layers'\)"),
    "layers-is-int": (lambda h, a: h["model"].update(layers=5),
                      r"its architecture config cannot be used \(TypeError: "),
    "unknown-layer-kwarg": (_layer(0, bogus=1), r"architecture config cannot be used \(TypeError"),
    "negative-filters": (_layer(0, filters=-2), r"architecture config cannot be used \(ValueError"),
    "input-shape-str": (lambda h, a: h["model"].update(input_shape="big"),
                        r"architecture config cannot be used \(ValueError"),
    "unknown-optimizer": (lambda h, a: h["compile"].update(optimizer="nopeopt"),
                          r"its compile settings cannot be used \(ValueError: "),
    "weight-int-array": (lambda h, a: a.update({"param/dense_1/bias": np.arange(3)}),
                         r"array 'param/dense_1/bias' must be floating point; got dtype int64"),
    "optimizer-state-shape": (lambda h, a: a.update({"optimizer/dense_1/kernel/m": np.zeros(
        (5, 5), np.float32)}), r"optimizer state 'optimizer/dense_1/kernel/m' must be a float array "
                               r"of its weight's shape \(32, 3\); got float32 array of shape "
                               r"\(5, 5\)"),
    "optimizer-state-orphan": (lambda h, a: a.update({"optimizer/ghost/m": np.zeros(3)}),
                               r"holds optimizer state 'optimizer/ghost/m' for no weight"),
    "optimizer-slot-missing": (lambda h, a: a.pop("optimizer/dense_1/kernel/v").size and None,
                               r"optimizer state cannot be used \(ValueError: Adam.load_state_dict"
                               r": state of parameter 'dense_1/kernel' must have slots"),
    "renamed-layer": (_layer(4, name="other"), r"its architecture creates the weight "
                      r"'other/kernel' \(shape \(32, 3\)\), which the file does not hold"),
    "kernel-shape": (lambda h, a: a.update({k: np.zeros((31, 3), np.float32) for k in (
        "param/dense_1/kernel", "optimizer/dense_1/kernel/m", "optimizer/dense_1/kernel/v")}),
                     r"creates the weight 'dense_1/kernel' with shape \(32, 3\) but the file "
                     r"holds it with shape \(31, 3\)"),
    "bn-state-shape": (lambda h, a: a.update({"state/batch_normalization_1/moving_mean":
                                              np.zeros(7, np.float32)}),
                       r"creates the state 'batch_normalization_1/moving_mean' with shape \(2,\) "
                       r"but the file holds it with shape \(7,\)"),
}


@pytest.mark.parametrize("name", list(HEADERS))
def test_malformed_header_is_a_valueerror_naming_the_file(saved, tmp_path, name):
    change, message = HEADERS[name]
    path = mutated(saved, tmp_path, change)
    with pytest.raises(ValueError, match=message) as exc_info:
        load_model(path)
    assert_names_file(exc_info, path)


def test_the_unmodified_file_loads(saved):
    path, _, _ = saved
    model = load_model(path)
    assert model.optimizer.iterations == 2


def test_weights_file_errors_name_the_file(saved, tmp_path):
    path = mutated(saved, tmp_path, lambda h, a: h["states"].append("missing/state"))
    model = Sequential([Dense(2)], input_shape=(3,))
    with pytest.raises(ValueError, match=r"lists state 'missing/state'") as exc_info:
        model.load_weights(path)
    assert_names_file(exc_info, path)
    good, _, _ = saved
    with pytest.raises(ValueError, match=r"the file holds 6 weight arrays and 2 state arrays; the model has 2 and 0") as exc_info:
        model.load_weights(good)
    assert_names_file(exc_info, good)


def test_huge_layer_in_config_allocates_nothing(saved, tmp_path):
    """Dense(units=10**12) used to allocate from the file's numbers (MemoryError for
    262 TiB); the shape is now compared with the stored array before allocating."""
    path = mutated(saved, tmp_path, _layer(4, units=10**12))
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=r"creates the weight 'dense_1/kernel' with shape "
                                             r"\(32, 1000000000000\) but the file holds it "
                                             r"with shape \(32, 3\)") as exc_info:
            load_model(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 * 2**20, peak
    assert_names_file(exc_info, path)


@pytest.mark.parametrize("kind", ["pickle", "text", "empty", "npy"])
def test_non_npz_file_never_suggests_allow_pickle(tmp_path, kind):
    path = tmp_path / "model.npz"
    if kind == "pickle":
        path.write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    elif kind == "text":
        path.write_text("hello")
    elif kind == "empty":
        path.write_bytes(b"")
    else:
        np.save(tmp_path / "model.npy", np.array([object()], dtype=object), allow_pickle=True)
        path.write_bytes((tmp_path / "model.npy").read_bytes())
    with pytest.raises(ValueError, match="is not a readable fastcnn file") as exc_info:
        load_model(path)
    assert "allow_pickle" not in str(exc_info.value)
    assert_names_file(exc_info, path)


def test_object_array_inside_npz_is_refused_without_unpickling(saved, tmp_path):
    path = mutated(saved, tmp_path, lambda h, a: None)
    np.savez(path, __fastcnn__=np.zeros(3, np.uint8), evil=np.array([object()], dtype=object),
             allow_pickle=True)
    with pytest.raises(ValueError, match=r"entry 'evil.npy' holds dtype object; expected plain "
                                         r"numbers") as exc_info:
        load_model(path)
    assert "allow_pickle" not in str(exc_info.value)


def test_npy_header_announcing_a_huge_array_allocates_nothing(saved, tmp_path):
    """np.load allocates what a .npy header announces before reading; here the
    announced size is compared with the bytes the entry holds first."""
    src, _, _ = saved
    data = bytearray(src.read_bytes())
    # .npy headers are padded with spaces to a 64-byte boundary: a wider shape fits in
    # the padding, so the zip stays valid and only the announced size changes.
    old = b"'shape': (32, 3), }"
    new = b"'shape': (1000000000000, 3), }"
    at = data.index(old)
    end = at + len(old)
    assert data[end:end + len(new) - len(old)] == b" " * (len(new) - len(old))
    data[at:end + len(new) - len(old)] = new
    bad = tmp_path / "bad.npz"
    bad.write_bytes(bytes(data))
    tracemalloc.start()
    try:
        with pytest.raises(ValueError) as exc_info:
            load_model(bad)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 * 2**20, peak
    assert_names_file(exc_info, bad)
