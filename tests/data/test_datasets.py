"""Loaders on tiny files written here in the exact on-disk formats (IDX, CIFAR pickles)."""

import gzip
import hashlib
import io
import os
import pickle
import struct
import urllib.request

import numpy as np
import pytest

from fastcnn.data import datasets
from fastcnn.data.datasets import DatasetNotFoundError


# ----------------------------------------------------------------------------- helpers
def idx_bytes(array: np.ndarray, code: int = 0x08) -> bytes:
    header = struct.pack(">BBBB", 0, 0, code, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(">u1" if code == 0x08 else array.dtype).tobytes()


def write(path, payload: bytes, gz: bool):
    if gz:
        with gzip.open(str(path) + ".gz", "wb") as f:
            f.write(payload)
    else:
        path.write_bytes(payload)


def write_idx_set(directory, rng, n_train=7, n_test=5, gz=True, overrides=None):
    """Four IDX files with random pixels and labels; return the arrays written."""
    directory.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    for stem, arr in arrays.items():
        payload = (overrides or {}).get(stem, idx_bytes(arr))
        write(directory / stem, payload, gz)
    return arrays


def write_cifar(directory, rng, n=4, key_type=bytes, overrides=None):
    folder = directory / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, n).tolist()
        k = (lambda s: s.encode()) if key_type is bytes else (lambda s: s)
        obj = {k("data"): data, k("labels"): labels, k("batch_label"): k("batch")}
        payload = (overrides or {}).get(name, pickle.dumps(obj, protocol=2))
        (folder / name).write_bytes(payload)
        written[name] = (data, labels)
    return written


# ----------------------------------------------------------------------------- IDX
@pytest.mark.parametrize("gz", [True, False], ids=["gzip", "raw"])
@pytest.mark.parametrize("loader", [datasets.load_mnist, datasets.load_fashion_mnist])
def test_idx_loader_reads_values_shapes_dtypes(tmp_path, gz, loader):
    arrays = write_idx_set(tmp_path, np.random.default_rng(0), gz=gz)
    (x_tr, y_tr), (x_te, y_te) = loader(data_dir=tmp_path)
    assert x_tr.shape == (7, 1, 28, 28) and x_te.shape == (5, 1, 28, 28)
    assert x_tr.dtype == np.float32 and y_tr.dtype == np.int64
    np.testing.assert_array_equal(
        x_tr[:, 0], arrays["train-images-idx3-ubyte"].astype(np.float32) / 255)
    np.testing.assert_array_equal(y_te, arrays["t10k-labels-idx1-ubyte"])
    assert x_tr.min() >= 0.0 and x_tr.max() <= 1.0


def test_idx_default_dir_comes_from_env(tmp_path, monkeypatch):
    monkeypatch.setenv("FASTCNN_DATA", str(tmp_path))
    write_idx_set(tmp_path / "mnist", np.random.default_rng(1))
    (x_tr, _), _ = datasets.load("mnist")
    assert x_tr.shape[0] == 7
    assert datasets.default_data_dir("mnist") == tmp_path / "mnist"


def test_read_idx_roundtrip_int32(tmp_path):
    arr = np.arange(-6, 6, dtype=">i4").reshape(3, 4)
    (tmp_path / "a.idx").write_bytes(idx_bytes(arr, code=0x0C))
    out = datasets.read_idx(tmp_path / "a.idx")
    np.testing.assert_array_equal(out, arr)
    assert out.dtype == np.int32


def _good(rng, shape):
    return idx_bytes(rng.integers(0, 10, shape, dtype=np.uint8))


@pytest.mark.parametrize("case, stem, match", [
    ("bad-magic", "train-images-idx3-ubyte", "bad magic number"),
    ("truncated", "train-images-idx3-ubyte", "truncated"),
    ("trailing", "t10k-labels-idx1-ubyte", "trailing bytes"),
    ("count-mismatch", "train-labels-idx1-ubyte", "does not match the image count"),
    ("wrong-dims", "t10k-images-idx3-ubyte", r"shape \(N, 28, 28\)"),
    ("label-range", "train-labels-idx1-ubyte", r"labels must lie in \[0, 9\]"),
    ("unknown-type", "train-images-idx3-ubyte", "unknown IDX type code"),
])
def test_idx_corrupt_files_name_file_and_problem(tmp_path, case, stem, match):
    rng = np.random.default_rng(2)
    good_images = idx_bytes(rng.integers(0, 256, (7, 28, 28), dtype=np.uint8))
    payload = {
        "bad-magic": b"\x08\x03\x00\x00" + good_images[4:],
        "truncated": good_images[:-10],
        "trailing": _good(rng, (5,)) + b"\x00",
        "count-mismatch": _good(rng, (6,)),
        "wrong-dims": idx_bytes(rng.integers(0, 256, (5, 27, 28), dtype=np.uint8)),
        "label-range": idx_bytes(np.array([0, 1, 2, 3, 4, 5, 10], dtype=np.uint8)),
        "unknown-type": b"\x00\x00\x07\x03" + good_images[4:],
    }[case]
    write_idx_set(tmp_path, rng, overrides={stem: payload})
    with pytest.raises(ValueError, match=match) as info:
        datasets.load_mnist(data_dir=tmp_path)
    assert stem in str(info.value)


def test_idx_truncated_gzip_stream(tmp_path):
    write_idx_set(tmp_path, np.random.default_rng(3))
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-30])
    with pytest.raises(ValueError, match="not a valid gzip file") as info:
        datasets.load_mnist(data_dir=tmp_path)
    assert "train-images-idx3-ubyte.gz" in str(info.value)


@pytest.mark.parametrize("kwargs", [{"download": False}, {}], ids=["download-False", "env"])
def test_missing_idx_files_message(tmp_path, kwargs):
    write_idx_set(tmp_path, np.random.default_rng(4))
    os.remove(tmp_path / "t10k-labels-idx1-ubyte.gz")
    with pytest.raises(DatasetNotFoundError) as info:
        datasets.load_fashion_mnist(data_dir=tmp_path, **kwargs)
    msg = str(info.value)
    assert isinstance(info.value, FileNotFoundError)
    assert str(tmp_path / "t10k-labels-idx1-ubyte.gz") in msg
    assert "train-images" not in msg  # only the missing file is listed
    assert "downloads are disabled" in msg
    assert datasets.FASHION_MNIST_MIRRORS[0] in msg


def test_failed_download_leaves_no_partial_file(tmp_path, monkeypatch):
    class Truncated(io.BytesIO):
        def read(self, n=-1):
            chunk = super().read(n)
            if not chunk:
                raise ConnectionResetError("connection dropped")
            return chunk

    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: Truncated(b"abc"))
    with pytest.raises(DatasetNotFoundError, match="the download failed"):
        datasets.load_mnist(data_dir=tmp_path, download=True)
    assert [p.name for p in tmp_path.iterdir()] == []


def test_download_verifies_checksum_and_renames(tmp_path, monkeypatch):
    payload = b"hello idx"
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: io.BytesIO(payload))
    good = hashlib.md5(payload).hexdigest()
    datasets._download("http://example.invalid/f", tmp_path / "f", good)
    assert (tmp_path / "f").read_bytes() == payload
    with pytest.raises(ValueError, match="checksum mismatch"):
        datasets._download("http://example.invalid/g", tmp_path / "g", "0" * 32)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]


def test_downloaded_idx_files_are_loaded(tmp_path, monkeypatch):
    """The whole download path, with urlopen serving tiny IDX files."""
    rng = np.random.default_rng(5)
    files = {"train-images-idx3-ubyte.gz": (3, 28, 28), "train-labels-idx1-ubyte.gz": (3,),
             "t10k-images-idx3-ubyte.gz": (2, 28, 28), "t10k-labels-idx1-ubyte.gz": (2,)}
    blobs = {name: gzip.compress(_good(rng, shape)) for name, shape in files.items()}
    monkeypatch.setattr(datasets, "MNIST_MD5",
                        {k: hashlib.md5(v).hexdigest() for k, v in blobs.items()})
    served = []

    def fake_urlopen(url, timeout):
        served.append(url)
        return io.BytesIO(blobs[url.rsplit("/", 1)[1]])

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    (x_tr, y_tr), (x_te, _) = datasets.load_mnist(data_dir=tmp_path, download=True)
    assert x_tr.shape == (3, 1, 28, 28) and x_te.shape == (2, 1, 28, 28)
    assert len(served) == 4 and all(u.startswith(datasets.MNIST_MIRRORS[0]) for u in served)


# ----------------------------------------------------------------------------- CIFAR
@pytest.mark.parametrize("key_type", [bytes, str])
def test_cifar_reads_batches(tmp_path, key_type):
    written = write_cifar(tmp_path, np.random.default_rng(6), key_type=key_type)
    (x_tr, y_tr), (x_te, y_te) = datasets.load_cifar10(data_dir=tmp_path)
    assert x_tr.shape == (20, 3, 32, 32) and x_te.shape == (4, 3, 32, 32)
    assert x_tr.dtype == np.float32 and y_tr.dtype == np.int64
    data, labels = written["data_batch_2"]
    np.testing.assert_array_equal(x_tr[4:8], data.reshape(4, 3, 32, 32) / np.float32(255))
    # channel 0 of a row is its first 1024 values (red plane, row-major)
    np.testing.assert_array_equal(x_tr[4, 0, 0, :], data[0, :32] / np.float32(255))
    np.testing.assert_array_equal(y_te, written["test_batch"][1])
    np.testing.assert_array_equal(y_tr[4:8], labels)


def test_cifar_batches_directly_in_data_dir(tmp_path):
    write_cifar(tmp_path, np.random.default_rng(7))
    (x_tr, _), _ = datasets.load("cifar10", data_dir=tmp_path / "cifar-10-batches-py")
    assert x_tr.shape == (20, 3, 32, 32)


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


@pytest.mark.parametrize("case, match", [
    ("garbage", "not a readable CIFAR-10 pickle"),
    ("truncated", "not a readable CIFAR-10 pickle"),
    ("not-dict", "expected a pickled dict"),
    ("missing-key", "missing key 'labels'"),
    ("bad-shape", r"shape \(N, 3072\)"),
    ("count-mismatch", "does not match the image count"),
    ("label-range", r"labels must lie in \[0, 9\]"),
    ("code-execution", "refusing to load global"),
])
def test_cifar_corrupt_batches(tmp_path, case, match):
    rng = np.random.default_rng(8)
    data = rng.integers(0, 256, (4, 3072), dtype=np.uint8)
    good = pickle.dumps({b"data": data, b"labels": [1, 2, 3, 4]}, protocol=2)
    payload = {
        "garbage": b"this is not a pickle",
        "truncated": good[: len(good) // 2],
        "not-dict": pickle.dumps([1, 2, 3]),
        "missing-key": pickle.dumps({b"data": data}),
        "bad-shape": pickle.dumps({b"data": data[:, :3000], b"labels": [1, 2, 3, 4]}),
        "count-mismatch": pickle.dumps({b"data": data, b"labels": [1, 2, 3]}),
        "label-range": pickle.dumps({b"data": data, b"labels": [1, 2, 3, -1]}),
        "code-execution": pickle.dumps({b"data": Evil(), b"labels": [1]}),
    }[case]
    write_cifar(tmp_path, rng, overrides={"data_batch_3": payload})
    with pytest.raises(ValueError, match=match) as info:
        datasets.load_cifar10(data_dir=tmp_path)
    assert "data_batch_3" in str(info.value)


def test_cifar_missing_message(tmp_path):
    with pytest.raises(DatasetNotFoundError) as info:
        datasets.load_cifar10(data_dir=tmp_path, download=False)
    msg = str(info.value)
    assert str(tmp_path) in msg and "cifar-10-batches-py/test_batch" in msg
    assert datasets.CIFAR10_URL in msg


# ----------------------------------------------------------------------------- digits
def test_digits_shapes_range_and_stratified_seeded_split():
    (x_tr, y_tr), (x_te, y_te) = datasets.load_digits(test_size=0.2, seed=0)
    assert x_tr.shape[1:] == (1, 8, 8) and x_tr.dtype == np.float32 and y_tr.dtype == np.int64
    assert x_tr.shape[0] + x_te.shape[0] == 1797
    assert abs(x_te.shape[0] - 0.2 * 1797) <= 1
    assert x_tr.min() == 0.0 and x_tr.max() == 1.0
    # stratified: every class has (almost) the same share in both parts
    p_tr = np.bincount(y_tr, minlength=10) / len(y_tr)
    p_te = np.bincount(y_te, minlength=10) / len(y_te)
    assert np.abs(p_tr - p_te).max() < 0.01
    # seeded: same seed, same split; other seed, other split
    (x_tr2, y_tr2), _ = datasets.load_digits(test_size=0.2, seed=0)
    np.testing.assert_array_equal(x_tr, x_tr2)
    np.testing.assert_array_equal(y_tr, y_tr2)
    (x_tr3, _), _ = datasets.load_digits(test_size=0.2, seed=1)
    assert not np.array_equal(x_tr, x_tr3)


@pytest.mark.parametrize("bad", [0.0, 1.0, -3, "0.2", True])
def test_digits_bad_test_size(bad):
    with pytest.raises(ValueError, match="test_size"):
        datasets.load_digits(test_size=bad)


def test_registry_and_load():
    assert set(datasets.DATASETS) == {"digits", "mnist", "fashion-mnist", "cifar10"}
    (x, _), _ = datasets.load("digits", seed=3)
    assert x.shape[1:] == (1, 8, 8)
    with pytest.raises(ValueError, match="name must be one of"):
        datasets.load("imagenet")
    with pytest.raises(ValueError, match="takes no data_dir"):
        datasets.load("digits", data_dir="/tmp")
    with pytest.raises(DatasetNotFoundError):
        datasets.load("fashion_mnist")  # alias; env root is an empty tmp dir


def test_cifar_download_extracts_only_batch_files(tmp_path, monkeypatch):
    import tarfile

    src = tmp_path / "src"
    write_cifar(src, np.random.default_rng(9), n=2)
    archive = tmp_path / "cifar.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(src / "cifar-10-batches-py", arcname="cifar-10-batches-py")
        # a path-traversal member that must be skipped, not written next to the target
        info = tarfile.TarInfo("cifar-10-batches-py/../../planted.txt")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"bad"))
    blob = archive.read_bytes()
    monkeypatch.setattr(datasets, "CIFAR10_MD5", hashlib.md5(blob).hexdigest())
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: io.BytesIO(blob))
    target = tmp_path / "target"
    (x_tr, _), (x_te, _) = datasets.load_cifar10(data_dir=target, download=True)
    assert x_tr.shape == (10, 3, 32, 32) and x_te.shape == (2, 3, 32, 32)
    assert sorted(p.name for p in target.iterdir()) == ["cifar-10-batches-py",
                                                        "cifar-10-python.tar.gz"]
    assert list(tmp_path.rglob("planted.txt")) == []


def _serve_archive(monkeypatch, blob):
    monkeypatch.setattr(datasets, "CIFAR10_MD5", hashlib.md5(blob).hexdigest())
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: io.BytesIO(blob))


@pytest.mark.parametrize("present", [("data_batch_1", "data_batch_2"), ()])
def test_cifar_archive_missing_batch_files_is_a_clear_error(tmp_path, monkeypatch, present):
    """Issue 13: an archive holding only some batch files gave
    ``TypeError: unsupported operand type(s) for /: 'NoneType' and 'str'``."""
    import tarfile

    src = tmp_path / "src"
    write_cifar(src, np.random.default_rng(10), n=2)
    archive = tmp_path / "partial.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name in present:
            tar.add(src / "cifar-10-batches-py" / name, arcname=f"cifar-10-batches-py/{name}")
        if not present:                  # an archive with the folder but no batch at all
            tar.add(src / "cifar-10-batches-py" / "data_batch_1", arcname="other/file")
    _serve_archive(monkeypatch, archive.read_bytes())
    target = tmp_path / "target"
    n_missing = 6 - len(present)
    with pytest.raises(ValueError, match=rf"load_cifar10: .*cifar-10-python.tar.gz is "
                                         rf"incomplete: after extracting it, {n_missing} of "
                                         rf"the 6 batch files are still missing from .*"
                                         rf"test_batch\. Hint: delete"):
        datasets.load_cifar10(data_dir=target, download=True)


def test_cifar_archive_completes_a_partial_folder(tmp_path, monkeypatch):
    """A folder holding some batches already is completed from the archive (the
    extraction replaces files one by one instead of failing on a non-empty folder)."""
    import tarfile

    src = tmp_path / "src"
    write_cifar(src, np.random.default_rng(11), n=2)
    archive = tmp_path / "full.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(src / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    _serve_archive(monkeypatch, archive.read_bytes())
    target = tmp_path / "target" / "cifar-10-batches-py"
    target.mkdir(parents=True)
    (target / "data_batch_1").write_bytes((src / "cifar-10-batches-py" / "data_batch_1")
                                          .read_bytes())
    (x_tr, _), (x_te, _) = datasets.load_cifar10(data_dir=tmp_path / "target", download=True)
    assert x_tr.shape == (10, 3, 32, 32) and x_te.shape == (2, 3, 32, 32)
