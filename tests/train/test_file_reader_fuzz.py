"""Fuzz of every file reader (issue 13): random corruptions of valid files -- flipped,
overwritten, inserted and cut bytes; and, for model files, random JSON in the header
fields and random arrays in place of the stored ones -- must give a result or a
``ValueError`` naming the file: never another exception type, never a crash, never
an allocation far beyond the file's size.

Readers: IDX (raw and gzipped), CIFAR-10 pickle batches, model ``.npz`` files
(``load_model`` and ``load_weights``).
"""

import gzip
import io
import json
import pickle
import struct
import tracemalloc
import warnings

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from fastcnn.data.formats import read_cifar_batch, read_idx  # noqa: E402
from fastcnn.nn.layers import BatchNormalization, Conv2D, Dense, Flatten  # noqa: E402
from fastcnn.train.model import Sequential, load_model  # noqa: E402

#: Allocation allowed to a reader beyond the file's own size (NumPy/zip bookkeeping).
ALLOWANCE = 8 * 2**20

FUZZ = settings(suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow], deadline=None)


# ------------------------------------------------------------------------ valid files
def idx_file(gz: bool) -> bytes:
    images = np.random.default_rng(0).integers(0, 256, (3, 28, 28), dtype=np.uint8)
    raw = struct.pack(">BBBB", 0, 0, 0x08, 3) + struct.pack(">3I", 3, 28, 28) + images.tobytes()
    return gzip.compress(raw, mtime=0) if gz else raw


def cifar_file() -> bytes:
    rng = np.random.default_rng(1)
    batch = {b"data": rng.integers(0, 256, (2, 3072), dtype=np.uint8),
             b"labels": [3, 7], b"batch_label": b"training batch 1 of 5"}
    return pickle.dumps(batch, protocol=2)


def model_file(directory) -> bytes:
    model = Sequential([Conv2D(2, 3), BatchNormalization(), Flatten(), Dense(3)],
                       input_shape=(1, 5, 5))
    model.compile(optimizer="adam", loss="mse")
    model.optimizer.step(model.parameters())           # creates the Adam slots
    path = directory / "valid.npz"
    model.save(path)
    return path.read_bytes()


# ----------------------------------------------------------------------- corruptions
@st.composite
def corrupted(draw, data: bytes) -> bytes:
    """``data`` after 1-3 random edits: flip a byte, overwrite a run, insert, cut."""
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["flip", "overwrite", "insert", "truncate"]))
        at = draw(st.integers(0, max(len(out) - 1, 0)))
        if kind == "flip" and out:
            out[at] ^= draw(st.integers(1, 255))
        elif kind == "overwrite":
            run = draw(st.binary(min_size=1, max_size=16))
            out[at:at + len(run)] = run
        elif kind == "insert":
            out[at:at] = draw(st.binary(min_size=1, max_size=16))
        else:
            del out[at:]
    return bytes(out)


def check_reader(read, path, blob: bytes) -> None:
    """``read(path)`` returns or raises a ValueError naming ``path``; allocates little."""
    path.write_bytes(blob)
    tracemalloc.start()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            read(path)
    except ValueError as exc:
        assert str(path) in str(exc), f"the error does not name the file: {exc}"
        assert "allow_pickle" not in str(exc)
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peak < len(blob) * 16 + ALLOWANCE, f"peak allocation {peak} for {len(blob)} bytes"


# --------------------------------------------------------------------------- tests
@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gz"])
@FUZZ
@given(data=st.data())
def test_idx_reader_fuzz(tmp_path_factory, gz, data):
    directory = tmp_path_factory.mktemp("idx")
    blob = data.draw(corrupted(idx_file(gz)))
    check_reader(read_idx, directory / ("images-idx3-ubyte" + (".gz" if gz else "")), blob)


@FUZZ
@given(data=st.data())
def test_cifar_reader_fuzz(tmp_path_factory, data):
    directory = tmp_path_factory.mktemp("cifar")
    check_reader(read_cifar_batch, directory / "data_batch_1", data.draw(corrupted(cifar_file())))


@pytest.fixture(scope="module")
def valid_model(tmp_path_factory):
    directory = tmp_path_factory.mktemp("model")
    return model_file(directory)


def _load_both(path):
    load_model(path)
    Sequential([Flatten(), Dense(3)], input_shape=(2, 3, 3)).load_weights(path)


@FUZZ
@given(data=st.data())
def test_model_file_bytes_fuzz(tmp_path_factory, valid_model, data):
    directory = tmp_path_factory.mktemp("npz")
    check_reader(_load_both, directory / "model.npz", data.draw(corrupted(valid_model)))


JSON = st.recursive(st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats()
                    | st.text(max_size=12),
                    lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=10), inner, max_size=4),
                    max_leaves=12)


def _fields(value, prefix=()):
    """Every path into a JSON value (dict keys and list indices)."""
    yield prefix
    items = value.items() if isinstance(value, dict) else (
        enumerate(value) if isinstance(value, list) else ())
    for key, child in items:
        yield from _fields(child, prefix + (key,))


@FUZZ
@given(data=st.data())
def test_model_file_header_and_arrays_fuzz(tmp_path_factory, valid_model, data):
    """Structured corruption: one header field (anywhere in the nested config) becomes
    random JSON, or one stored array becomes a random small array."""
    with np.load(io.BytesIO(valid_model)) as npz:
        arrays = {k: npz[k] for k in npz.files}
    header = json.loads(arrays.pop("__fastcnn__").tobytes())
    if data.draw(st.booleans()):
        where = data.draw(st.sampled_from(list(_fields(header))[1:]))
        parent = header
        for key in where[:-1]:
            parent = parent[key]
        parent[where[-1]] = data.draw(JSON)
    else:
        key = data.draw(st.sampled_from(sorted(arrays)))
        dtype = data.draw(st.sampled_from(["float32", "float64", "int64", "uint8", "bool"]))
        shape = data.draw(st.lists(st.integers(0, 5), max_size=3))
        arrays[key] = np.zeros(shape, dtype=dtype)
    buffer = io.BytesIO()
    np.savez(buffer, __fastcnn__=np.frombuffer(json.dumps(header).encode(), np.uint8), **arrays)
    directory = tmp_path_factory.mktemp("npz")
    check_reader(_load_both, directory / "model.npz", buffer.getvalue())
