"""Image data sets as NCHW float32 arrays: digits (bundled), MNIST, Fashion-MNIST, CIFAR-10.

Every loader returns ``(x_train, y_train), (x_test, y_test)`` with

- ``x``: ``float32`` of shape ``(N, C, H, W)``, pixel values scaled to ``[0, 1]``;
- ``y``: ``int64`` of shape ``(N,)``, class indices ``0 .. 9``.

Only the 8x8 ``digits`` set ships with the library (through scikit-learn). The others
are read from their standard distribution formats on disk:

=================  ===========================================  ==========================
name               files (in ``data_dir``)                      format
=================  ===========================================  ==========================
``mnist``          ``train-images-idx3-ubyte.gz`` and the other  IDX (big-endian header,
``fashion-mnist``  three IDX files (gzipped or not)              then raw uint8 pixels)
``cifar10``        ``cifar-10-batches-py/data_batch_1..5``,      Python pickle of a dict
                   ``cifar-10-batches-py/test_batch``             ``{data, labels}``
=================  ===========================================  ==========================

``data_dir`` defaults to ``$FASTCNN_DATA/<name>`` when the environment variable
``FASTCNN_DATA`` is set, else ``~/.cache/fastcnn/<name>``.

When files are missing the loader tries to download them from the official
locations (short timeout, checksum verified, written to a temporary file and renamed,
so a failed download never leaves a partial file behind). Pass ``download=False`` or
set ``FASTCNN_NO_DOWNLOAD=1`` to forbid any network access; a missing data set then
raises :class:`DatasetNotFoundError`, whose message lists the exact files, the
directory to put them in, and where to get them.

Files that exist but are corrupt (bad magic number, wrong dimensions, truncated
data, image/label count mismatch, labels out of range, an unreadable pickle) raise
``ValueError`` naming the file and the problem.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
import urllib.request
from pathlib import Path

import numpy as np

# read_idx (in __all__) is a public name of this module too: it used to live here
from fastcnn.data.formats import check_labels, read_cifar_batch, read_idx

__all__ = [
    "DatasetNotFoundError",
    "DATASETS",
    "CLASS_NAMES",
    "load",
    "load_digits",
    "load_mnist",
    "load_fashion_mnist",
    "load_cifar10",
    "read_idx",
    "default_data_dir",
]

DOWNLOAD_TIMEOUT = 10.0  # seconds per connection attempt: fail fast when offline

# ---------------------------------------------------------------------------------
# Official sources. MD5 is what the publishers state for these files (torchvision
# uses the same values); it is used here to detect corrupt downloads, not as a
# security guarantee.
# ---------------------------------------------------------------------------------
IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)

MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
MNIST_MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}

FASHION_MNIST_MIRRORS = ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",)
FASHION_MNIST_MD5 = {
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_TEST_BATCH = "test_batch"

CLASS_NAMES = {
    "digits": tuple(str(i) for i in range(10)),
    "mnist": tuple(str(i) for i in range(10)),
    "fashion-mnist": ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                      "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
    "cifar10": ("airplane", "automobile", "bird", "cat", "deer",
                "dog", "frog", "horse", "ship", "truck"),
}


class DatasetNotFoundError(FileNotFoundError):
    """A data set's files are not on disk and could not (or may not) be downloaded.

    The message says which files to put in which directory and where to get them.
    """


# ---------------------------------------------------------------------------------
# Directories and downloads
# ---------------------------------------------------------------------------------
def default_data_dir(name: str) -> Path:
    """``$FASTCNN_DATA/<name>`` if ``FASTCNN_DATA`` is set, else ``~/.cache/fastcnn/<name>``."""
    root = os.environ.get("FASTCNN_DATA")
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "fastcnn"
    return base / name


def _resolve_dir(name: str, data_dir) -> Path:
    return default_data_dir(name) if data_dir is None else Path(data_dir).expanduser()


def _downloads_allowed(download) -> bool:
    """``download=None`` means: allowed unless ``FASTCNN_NO_DOWNLOAD`` is set to a true value."""
    if download is not None:
        return bool(download)
    flag = os.environ.get("FASTCNN_NO_DOWNLOAD", "").strip().lower()
    return flag in ("", "0", "false", "no")


def _download(url: str, dest: Path, md5: str, timeout: float = DOWNLOAD_TIMEOUT) -> None:
    """Fetch ``url`` into ``dest`` atomically, verifying the MD5 checksum.

    The bytes go to a temporary file in ``dest``'s directory, which is renamed onto
    ``dest`` only after the checksum matches (``os.replace`` is atomic on one file
    system), so an interrupted or corrupt download never leaves ``dest`` behind.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    try:
        digest = hashlib.md5(usedforsecurity=False)
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            while True:
                chunk = resp.read(1 << 20)
                if not chunk:
                    break
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != md5:
            raise ValueError(
                f"checksum mismatch for {url}: md5 {digest.hexdigest()}, expected {md5}"
            )
        os.replace(tmp_name, dest)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def _download_any(mirrors, filename: str, dest: Path, md5: str) -> None:
    """Try each mirror in turn; raise the last error if none works."""
    errors = []
    for base in mirrors:
        try:
            _download(base + filename, dest, md5)
            return
        except Exception as exc:  # network errors, HTTP errors, checksum mismatch
            errors.append(f"{base + filename}: {exc}")
    raise OSError("; ".join(errors))


def _not_found(where: str, name: str, directory: Path, files, sources: str, reason: str):
    listing = "\n".join(f"  {directory / f}" for f in files)
    return DatasetNotFoundError(
        f"{where}: data set files not found; {reason}.\n"
        f"Put these files in {directory}:\n{listing}\n"
        f"Get them from {sources}\n"
        f"(or pass data_dir=<folder holding them>, or set FASTCNN_DATA=<root> to read "
        f"<root>/{name})."
    )


# ---------------------------------------------------------------------------------
# IDX (MNIST, Fashion-MNIST); the file formats themselves are read in formats.py
# ---------------------------------------------------------------------------------
def _find_idx(directory: Path, stem: str):
    """``stem.gz`` or ``stem`` in ``directory``, or None."""
    for candidate in (directory / (stem + ".gz"), directory / stem):
        if candidate.is_file():
            return candidate
    return None


def _load_idx_pair(images_path: Path, labels_path: Path, size: int):
    images = read_idx(images_path)
    if images.ndim != 3 or images.shape[1:] != (size, size) or images.dtype != np.uint8:
        raise ValueError(f"{images_path}: expected uint8 images of shape (N, {size}, {size}); "
                         f"got {images.dtype} {images.shape}.")
    labels = check_labels(labels_path, read_idx(labels_path), images.shape[0])
    # uint8 -> [0, 1]: divide by 255 so the brightest pixel maps to exactly 1.0.
    x = images.reshape(-1, 1, size, size).astype(np.float32) / np.float32(255.0)
    return x, labels


def _load_idx_dataset(where, name, data_dir, download, mirrors, md5s, home_page):
    directory = _resolve_dir(name, data_dir)
    missing = [s for s in IDX_FILES if _find_idx(directory, s) is None]
    if missing:
        wanted = [s + ".gz" for s in missing]
        if not _downloads_allowed(download):
            raise _not_found(where, name, directory, wanted, home_page,
                             "downloads are disabled (download=False or FASTCNN_NO_DOWNLOAD=1)")
        try:
            for filename in wanted:
                _download_any(mirrors, filename, directory / filename, md5s[filename])
        except OSError as exc:
            raise _not_found(where, name, directory, wanted, home_page,
                             f"the download failed ({exc})") from exc
    paths = [_find_idx(directory, s) for s in IDX_FILES]
    train = _load_idx_pair(paths[0], paths[1], 28)
    test = _load_idx_pair(paths[2], paths[3], 28)
    return train, test


def load_mnist(data_dir=None, download=None):
    """MNIST handwritten digits: 60000 train / 10000 test images, ``(N, 1, 28, 28)``.

    Pixels are ``uint8 / 255`` as float32 in ``[0, 1]``; labels int64 in ``0..9``.
    See the module docstring for ``data_dir`` and ``download``.
    """
    return _load_idx_dataset(
        "load_mnist", "mnist", data_dir, download, MNIST_MIRRORS, MNIST_MD5,
        f"{MNIST_MIRRORS[0]} (or {MNIST_MIRRORS[1]}); gzipped or un-gzipped files both work",
    )


def load_fashion_mnist(data_dir=None, download=None):
    """Fashion-MNIST (Zalando): same format and sizes as MNIST, 10 clothing classes.

    See :data:`CLASS_NAMES` ``["fashion-mnist"]`` for the class names.
    """
    return _load_idx_dataset(
        "load_fashion_mnist", "fashion-mnist", data_dir, download, FASHION_MNIST_MIRRORS,
        FASHION_MNIST_MD5,
        f"{FASHION_MNIST_MIRRORS[0]} (or github.com/zalandoresearch/fashion-mnist, "
        "folder data/fashion); gzipped or un-gzipped files both work",
    )


# ---------------------------------------------------------------------------------
# CIFAR-10 (Python pickle batches)
# ---------------------------------------------------------------------------------
def _extract_cifar(archive: Path, directory: Path) -> None:
    """Extract only ``cifar-10-batches-py/*`` regular files, via a temporary folder;
    files already in ``directory/cifar-10-batches-py`` are replaced one by one."""
    tmp = Path(tempfile.mkdtemp(prefix=".cifar-extract.", dir=directory))
    try:
        with tarfile.open(archive, "r:gz") as tar:
            members = [m for m in tar.getmembers()
                       if m.isfile() and m.name.startswith(CIFAR10_FOLDER + "/")
                       and ".." not in Path(m.name).parts]
            tar.extractall(tmp, members=members, filter="data")
        (directory / CIFAR10_FOLDER).mkdir(exist_ok=True)
        for extracted in (tmp / CIFAR10_FOLDER).rglob("*"):
            if extracted.is_file() and extracted.parent == tmp / CIFAR10_FOLDER:
                os.replace(extracted, directory / CIFAR10_FOLDER / extracted.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _missing_batches(archive: Path, directory: Path, names) -> ValueError:
    """The error for an archive that did not provide every batch file."""
    folder = directory / CIFAR10_FOLDER
    missing = [n for n in names if not (folder / n).is_file()]
    return ValueError(
        f"load_cifar10: {archive} is incomplete: after extracting it, "
        f"{len(missing)} of the {len(names)} batch files are still missing from "
        f"{folder}: {', '.join(missing)}. Hint: delete {archive} and load again to "
        f"download a fresh copy (or extract the complete archive there yourself).")


def load_cifar10(data_dir=None, download=None):
    """CIFAR-10: 50000 train / 10000 test colour images, ``(N, 3, 32, 32)``.

    Reads ``data_dir/cifar-10-batches-py/{data_batch_1..5, test_batch}`` (a
    ``data_dir`` that directly holds the batch files works too). Pixels are
    ``uint8 / 255`` as float32 in ``[0, 1]``. The pickles are read with an unpickler
    that only admits numpy arrays and plain containers.
    """
    where = "load_cifar10"
    base = _resolve_dir("cifar10", data_dir)
    names = CIFAR10_TRAIN_BATCHES + (CIFAR10_TEST_BATCH,)

    def batch_dir():
        for d in (base / CIFAR10_FOLDER, base):
            if all((d / n).is_file() for n in names):
                return d
        return None

    directory = batch_dir()
    if directory is None:
        wanted = [f"{CIFAR10_FOLDER}/{n}" for n in names]
        sources = f"{CIFAR10_URL} (md5 {CIFAR10_MD5}; extract it in {base})"
        if not _downloads_allowed(download):
            raise _not_found(where, "cifar10", base, wanted, sources,
                             "downloads are disabled (download=False or FASTCNN_NO_DOWNLOAD=1)")
        archive = base / "cifar-10-python.tar.gz"
        try:
            if not archive.is_file():
                _download(CIFAR10_URL, archive, CIFAR10_MD5)
            _extract_cifar(archive, base)
        except (OSError, ValueError, tarfile.TarError) as exc:
            raise _not_found(where, "cifar10", base, wanted, sources,
                             f"the download failed ({exc})") from exc
        directory = batch_dir()
        if directory is None:       # the archive lacked some batch files
            raise _missing_batches(archive, base, names)
    train = [read_cifar_batch(directory / n) for n in CIFAR10_TRAIN_BATCHES]
    xs, ys = zip(*train)
    x_test, y_test = read_cifar_batch(directory / CIFAR10_TEST_BATCH)
    scale = np.float32(255.0)
    return ((np.concatenate(xs).astype(np.float32) / scale, np.concatenate(ys)),
            (x_test.astype(np.float32) / scale, y_test))


# ---------------------------------------------------------------------------------
# digits (bundled with scikit-learn)
# ---------------------------------------------------------------------------------
def load_digits(test_size=0.2, seed=0):
    """scikit-learn's 1797 8x8 handwritten digits, split into train and test.

    Pixels in the source are integers 0..16 (counts of set pixels in 4x4 blocks of a
    32x32 bitmap), so they are divided by 16 to land in ``[0, 1]``. The split is
    stratified (each class keeps its proportion in both parts) and seeded: the same
    ``seed`` gives the same split.

    Parameters
    ----------
    test_size : float in (0, 1) or int
        Fraction (or number) of samples in the test part.
    seed : int
        Seed of the shuffle.

    Returns
    -------
    (x_train, y_train), (x_test, y_test) : float32 ``(N, 1, 8, 8)`` and int64 ``(N,)``.
    """
    # deferred: importing scikit-learn takes ~1 s; only this loader needs it
    from sklearn.datasets import load_digits as _sk_load_digits
    from sklearn.model_selection import train_test_split

    if isinstance(test_size, bool) or not isinstance(test_size, (int, float, np.number)) or (
            isinstance(test_size, float) and not 0.0 < test_size < 1.0):
        raise ValueError(f"load_digits: test_size must be a float in (0, 1) or a positive "
                         f"int; got {test_size!r}.")
    bunch = _sk_load_digits()
    x = (bunch.images.astype(np.float32) / np.float32(16.0)).reshape(-1, 1, 8, 8)
    y = bunch.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=test_size, random_state=seed, stratify=y)
    return (np.ascontiguousarray(x_train), y_train), (np.ascontiguousarray(x_test), y_test)


# ---------------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------------
DATASETS = {
    "digits": load_digits,
    "mnist": load_mnist,
    "fashion-mnist": load_fashion_mnist,
    "cifar10": load_cifar10,
}


def load(name: str, data_dir=None, **kwargs):
    """Load a data set by name (see :data:`DATASETS`); ``_`` and ``-`` are interchangeable.

    ``data_dir`` and ``kwargs`` go to the loader; ``digits`` is bundled and takes no
    ``data_dir``.
    """
    key = str(name).strip().lower().replace("_", "-")
    key = {"cifar-10": "cifar10", "fashion": "fashion-mnist", "fashionmnist": "fashion-mnist"}.get(
        key, key)
    if key not in DATASETS:
        raise ValueError(f"load: name must be one of {sorted(DATASETS)}; got {name!r}.")
    if key == "digits":
        if data_dir is not None:
            raise ValueError("load: the 'digits' data set ships with scikit-learn and takes "
                             f"no data_dir; got data_dir={data_dir!r}.")
        return DATASETS[key](**kwargs)
    return DATASETS[key](data_dir=data_dir, **kwargs)
