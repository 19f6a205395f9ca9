"""Readers of the data sets' file formats: IDX (MNIST, Fashion-MNIST) and CIFAR-10's
pickled batches. The loaders in :mod:`fastcnn.data.datasets` find, download and
combine the files; these functions read one file each.

Files are input from elsewhere: whatever bytes they hold, a reader returns arrays or
raises ``ValueError`` naming the file and the problem -- never another exception
type, never an allocation larger than the data the file really holds (a header's
sizes are compared with the bytes present first), and never code run from a pickle.
"""

from __future__ import annotations

import gzip
import io
import math
import pickle
import zlib
from pathlib import Path

import numpy as np

__all__ = ["read_idx", "read_cifar_batch", "check_labels", "NUM_CLASSES"]

NUM_CLASSES = 10

# ---------------------------------------------------------------------------------
# IDX
# ---------------------------------------------------------------------------------
# The IDX header: two zero bytes, a type code, the number of dimensions, then one
# big-endian uint32 per dimension, then the data in C order (big-endian).
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _read_bytes(path: Path) -> bytes:
    """The file's contents, gunzipped when the name ends in ``.gz``."""
    if path.suffix != ".gz":
        return path.read_bytes()
    try:
        with gzip.open(path, "rb") as f:
            return f.read()
    # BadGzipFile is an OSError; truncation is EOFError; a damaged stream zlib.error
    except (OSError, EOFError, zlib.error) as exc:
        raise ValueError(f"{path}: not a valid gzip file ({exc}).") from exc


def read_idx(path) -> np.ndarray:
    """Read one IDX file (optionally gzipped) into an array in native byte order.

    Raises ``ValueError`` naming the file for a bad magic number, an unknown type
    code, or a data size that disagrees with the header (truncated or trailing bytes).
    """
    path = Path(path)
    raw = _read_bytes(path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(
            f"{path}: bad magic number {raw[:4].hex() or '(empty file)'}; an IDX file "
            "starts with two zero bytes, a type code and the number of dimensions."
        )
    code, ndim = raw[2], raw[3]
    if code not in _IDX_DTYPES:
        raise ValueError(f"{path}: unknown IDX type code 0x{code:02x} in the magic number.")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated header; {ndim} dims need {header} bytes, "
                         f"the file has {len(raw)}.")
    if ndim > 32:                   # NumPy's limit on dimensions
        raise ValueError(f"{path}: header declares {ndim} dimensions; at most 32 are "
                         f"supported (IDX data sets use 1 to 4).")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[code])
    # math.prod on Python ints: an int64 product of 32-bit dims could overflow and
    # wrap around to a size that happens to match.
    expected = math.prod(dims) * dtype.itemsize
    found = len(raw) - header
    if found != expected:
        what = "truncated" if found < expected else "has trailing bytes"
        raise ValueError(f"{path}: data {what}; header dims {dims} need {expected} bytes, "
                         f"found {found}.")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims).astype(
        dtype.newbyteorder("="))


def check_labels(path, labels: np.ndarray, count: int) -> np.ndarray:
    """``labels`` as int64 class indices: 1-D integers in ``[0, 9]``, ``count`` of them."""
    if labels.dtype.kind not in "iu":
        raise ValueError(f"{path}: labels must be integers; got dtype {labels.dtype}.")
    if labels.ndim != 1:
        raise ValueError(f"{path}: labels must be 1-D; got shape {labels.shape}.")
    if labels.shape[0] != count:
        raise ValueError(f"{path}: label count {labels.shape[0]} does not match the "
                         f"image count {count}.")
    if count and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
        raise ValueError(f"{path}: labels must lie in [0, {NUM_CLASSES - 1}]; got range "
                         f"[{labels.min()}, {labels.max()}].")
    return labels.astype(np.int64)


# ---------------------------------------------------------------------------------
# CIFAR-10 (Python pickle batches)
# ---------------------------------------------------------------------------------
def _reconstruct_empty(subtype, shape, dtype):
    """NumPy's ``_reconstruct``, for the only call a pickled array makes: an empty
    placeholder (``shape == (0,)``) that ``__setstate__`` then fills from the file's
    bytes (checking their length). Any other shape would allocate from the file's
    numbers -- a damaged or hostile pickle could ask for terabytes."""
    if not isinstance(shape, tuple) or math.prod(shape) != 0:
        raise pickle.UnpicklingError(f"refusing numpy _reconstruct with shape {shape!r}")
    return np.ndarray.__new__(subtype, shape, dtype)


class _NumpyOnlyUnpickler(pickle._Unpickler):
    """Unpickle plain containers and numpy arrays, nothing else.

    ``pickle.load`` can run arbitrary code named in the file; the CIFAR batches only
    need dicts, lists, bytes, str, ints and numpy arrays, so any other global is refused.
    The pure-Python unpickler (``pickle._Unpickler``) is used on purpose: the C one
    sizes its memo table from indices in the file (a damaged ``LONG_BINPUT`` index
    allocates gigabytes); this one keeps a dict. It reads from memory (``BytesIO``),
    where a damaged length can only return the bytes present.
    """

    _ALLOWED = {"_reconstruct", "ndarray", "dtype", "scalar"}

    def find_class(self, module, name):
        if (module, name) == ("_codecs", "encode"):  # how protocol-2 pickles store bytes
            return super().find_class(module, name)
        if module in ("numpy", "numpy.core.multiarray", "numpy._core.multiarray") \
                and name in self._ALLOWED:
            if name == "_reconstruct":
                return _reconstruct_empty
            if module == "numpy.core.multiarray":  # pickled by numpy 1.x; renamed in 2.x
                module = "numpy._core.multiarray" if hasattr(np, "_core") else module
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")


def _as_array(path, batch: dict, key: str) -> np.ndarray:
    try:
        return np.asarray(batch[key])
    except (ValueError, TypeError, OverflowError) as exc:   # ragged or odd contents
        raise ValueError(f"{path}: {key!r} is not an array ({type(exc).__name__}: "
                         f"{exc}).") from None


def read_cifar_batch(path):
    """One CIFAR-10 batch: ``(images uint8 (N, 3, 32, 32), labels int64 (N,))``."""
    path = Path(path)
    try:
        batch = _NumpyOnlyUnpickler(io.BytesIO(path.read_bytes()), encoding="bytes").load()
    except Exception as exc:  # UnpicklingError, EOFError, ValueError, MemoryError, ...
        raise ValueError(f"{path}: not a readable CIFAR-10 pickle batch "
                         f"({type(exc).__name__}: {exc}).") from exc
    if not isinstance(batch, dict):
        raise ValueError(f"{path}: expected a pickled dict; got {type(batch).__name__}.")
    # Keys are bytes in the official (Python 2) files; accept str too. latin-1 decodes
    # any bytes, so a damaged key is reported as missing below, not as a decode error.
    batch = {k.decode("latin-1") if isinstance(k, bytes) else k: v for k, v in batch.items()}
    for key in ("data", "labels"):
        if key not in batch:
            raise ValueError(f"{path}: missing key {key!r}; found {sorted(map(str, batch))}.")
    data = _as_array(path, batch, "data")
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or data.dtype != np.uint8:
        raise ValueError(f"{path}: 'data' must be uint8 of shape (N, 3072); "
                         f"got {data.dtype} {data.shape}.")
    labels = check_labels(path, _as_array(path, batch, "labels"), data.shape[0])
    # Each row is 1024 red, then 1024 green, then 1024 blue values, row-major: NCHW as is.
    return data.reshape(-1, 3, 32, 32), labels
