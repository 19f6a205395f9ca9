"""Reading fastcnn's ``.npz`` files as untrusted input: no pickle, bounded allocation,
and every problem a ``ValueError`` that names the file, what was expected and what
was found.

``np.load(path, allow_pickle=False)`` does not quite do that:

- for an entry of a zip archive it allocates the array its ``.npy`` header announces
  *before* reading any data, so a header corrupted to shape ``(10**12,)`` asks for
  terabytes; here the announced size is checked against the bytes the archive
  really holds first;
- its errors for a file that is not an ``.npz`` suggest loading it with
  ``allow_pickle=True`` -- exactly what must never be done with a file from
  elsewhere (unpickling runs code). fastcnn never suggests it.

The archive layout itself (which entries, the JSON header) is checked in
:mod:`fastcnn.train.file_header`.
"""

from __future__ import annotations

import math
import os
import struct
import zipfile
import zlib

import numpy as np

__all__ = ["FileFormatError", "read_npz", "MAX_DEFLATE_RATIO"]

#: Deflate cannot expand data by more than about 1032:1, so a compressed entry that
#: claims more is lying about its size (a "zip bomb" or corruption).
MAX_DEFLATE_RATIO = 1032

# What the zip and .npy parsers raise on damaged bytes (caught, and reported as a
# FileFormatError naming the file). RecursionError/OverflowError: absurd nesting or sizes.
_PARSE_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, KeyError,
                 IndexError, TypeError, NotImplementedError, RuntimeError, struct.error,
                 OverflowError, SyntaxError, RecursionError)


class FileFormatError(ValueError):
    """A file that is not a well-formed fastcnn file; the message names the file."""


def _fail(where: str, path: str, problem: str):
    raise FileFormatError(f"{where}: {path!r} {problem}")


def read_npz(where: str, path) -> dict[str, np.ndarray]:
    """Every array of the ``.npz`` archive ``path``, keyed by entry name without
    ``.npy`` (as ``np.load`` names them), as writable native-byte-order arrays.

    Raises FileNotFoundError for a missing file and FileFormatError (a ValueError)
    for anything else wrong with its contents.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{where}: no such file: {path!r}.")
    file_size = os.path.getsize(path)
    try:
        with zipfile.ZipFile(path) as archive:
            arrays = {}
            for info in archive.infolist():
                key = info.filename[:-len(".npy")] if info.filename.endswith(".npy") else None
                if key is None or key in arrays:
                    _fail(where, path, f"has an unexpected entry {info.filename!r} (a fastcnn "
                                       f"file holds only uniquely named .npy arrays).")
                arrays[key] = _read_entry(where, path, archive, info, file_size)
            return arrays
    except FileFormatError:
        raise
    except _PARSE_ERRORS as exc:
        reason = " ".join(str(exc).split())[:200]
        if "pickle" in reason:     # never pass on NumPy's "allow_pickle=True" hint
            reason = "it holds pickled Python objects, which fastcnn never loads"
        _fail(where, path, f"is not a readable fastcnn file ({type(exc).__name__}: "
                           f"{reason}). It may be truncated (an interrupted copy) or written "
                           f"by another program. Hint: save it again with model.save(path).")


def _check_entry_sizes(where, path, info: zipfile.ZipInfo, file_size: int) -> None:
    """The sizes the zip directory claims for an entry must fit the real file."""
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        _fail(where, path, f"entry {info.filename!r} uses zip compression method "
                           f"{info.compress_type}; expected stored (0) or deflated (8).")
    if info.compress_size > file_size:
        _fail(where, path, f"entry {info.filename!r} claims {info.compress_size} bytes but the "
                           f"whole file has {file_size}: it is truncated or corrupt.")
    stored = info.compress_type == zipfile.ZIP_STORED
    limit = info.compress_size if stored else MAX_DEFLATE_RATIO * info.compress_size + 1024
    if info.file_size > limit:
        _fail(where, path, f"entry {info.filename!r} claims to expand from "
                           f"{info.compress_size} to {info.file_size} bytes, which is "
                           f"impossible: the file is corrupt.")


def _read_entry(where, path, archive, info, file_size) -> np.ndarray:
    _check_entry_sizes(where, path, info, file_size)
    with archive.open(info) as fp:
        version = np.lib.format.read_magic(fp)
        if version == (1, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(fp)
        elif version == (2, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(fp)
        else:
            _fail(where, path, f"entry {info.filename!r} has .npy format version {version}; "
                               f"expected (1, 0) or (2, 0).")
        if dtype.hasobject or dtype.kind not in "biuf":
            _fail(where, path, f"entry {info.filename!r} holds dtype {dtype}; expected plain "
                               f"numbers (fastcnn never stores Python objects or pickles).")
        nbytes = math.prod(shape) * dtype.itemsize
        if nbytes > info.file_size:      # before allocating anything
            _fail(where, path, f"entry {info.filename!r} announces an array of shape {shape} "
                               f"and dtype {dtype} ({nbytes} bytes) but holds at most "
                               f"{info.file_size} bytes: it is corrupt.")
        buffer = bytearray(nbytes)
        view, filled = memoryview(buffer), 0
        while filled < nbytes:
            got = fp.readinto(view[filled:])
            if not got:
                _fail(where, path, f"entry {info.filename!r} ends after {filled} of the "
                                   f"{nbytes} bytes of its array: it is truncated.")
            filled += got
    array = np.frombuffer(buffer, dtype=dtype).reshape(shape, order="F" if fortran_order else "C")
    return array.astype(dtype.newbyteorder("="), copy=False)
