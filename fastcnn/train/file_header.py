"""The JSON header of a fastcnn file, checked field by field before anything is built.

A header (see :mod:`fastcnn.train.serialization` for the layout) comes from a file
that may be damaged or hostile, so every field is checked for its type and against
the arrays the archive really holds; a problem is a ``ValueError`` naming the file,
the field, what was expected and what was found -- never a ``KeyError``,
``AttributeError`` or ``TypeError`` from deep inside the loader.
"""

from __future__ import annotations

import json

import numpy as np

from fastcnn.common.validation import _is_int
from fastcnn.train.npz_reader import FileFormatError

__all__ = ["HEADER_KEY", "FORMAT_VERSION", "parse_header"]

HEADER_KEY = "__fastcnn__"
FORMAT_VERSION = 1
_FORMATS = ("fastcnn-model", "fastcnn-weights")


class _Described(str):
    """A description of what was found, shown as is (not quoted like a found value)."""

    def __repr__(self) -> str:
        return str(self)


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _expect(ok: bool, where: str, path: str, field: str, expected: str, got) -> None:
    if not ok:
        raise FileFormatError(f"{where}: {path!r} has a malformed header: {field} must be "
                              f"{expected}; got {_short(got)}.")


def _decode(where: str, path: str, arrays: dict) -> dict:
    """The header dict (removed from ``arrays``)."""
    if HEADER_KEY not in arrays:
        raise FileFormatError(
            f"{where}: {path!r} is a .npz file but not a fastcnn model/weights file (no "
            f"{HEADER_KEY!r} entry; entries: {sorted(arrays)[:8]}). Hint: load it with np.load.")
    raw = arrays.pop(HEADER_KEY)
    _expect(raw.dtype == np.uint8 and raw.ndim == 1, where, path, f"the {HEADER_KEY!r} entry",
            "1-D uint8 bytes of JSON", _Described(f"{raw.dtype} array of shape {raw.shape}"))
    try:
        header = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise FileFormatError(f"{where}: {path!r} has a corrupt header (not UTF-8 JSON: "
                              f"{type(exc).__name__}).") from None
    _expect(isinstance(header, dict), where, path, "the header", "a JSON object", header)
    return header


def _names(where, path, header, field, prefix, arrays) -> list:
    """``header[field]``: a list of distinct names, each stored as ``prefix + name``."""
    names = header.get(field, [])
    _expect(isinstance(names, list) and all(isinstance(n, str) for n in names), where, path,
            f"{field!r}", "a list of str", names)
    _expect(len(set(names)) == len(names), where, path, f"{field!r}", "distinct names", names)
    for name in names:
        array = arrays.get(prefix + name)
        if array is None:
            raise FileFormatError(f"{where}: {path!r} lists {field[:-1]} {name!r} in its header "
                                  f"but holds no array {prefix + name!r}: it is corrupt.")
        _expect(array.dtype.kind == "f", where, path, f"array {prefix + name!r}",
                "floating point", _Described(f"dtype {array.dtype}"))
    return names


def _check_compile(where, path, header) -> None:
    compile_config = header.get("compile")
    if compile_config is None:
        return
    _expect(isinstance(compile_config, dict)
            and {"optimizer", "loss", "metrics"} <= set(compile_config), where, path,
            "'compile'", "null or an object with 'optimizer', 'loss' and 'metrics'",
            compile_config)
    for field in ("optimizer", "loss"):
        value = compile_config[field]
        _expect(isinstance(value, (str, dict)), where, path, f"compile.{field}",
                "a name or a config object", value)
    metrics = compile_config["metrics"]
    _expect(isinstance(metrics, list) and all(isinstance(m, str) for m in metrics), where,
            path, "compile.metrics", "a list of str", metrics)
    iterations = header.get("optimizer_iterations", 0)
    _expect(_is_int(iterations) and iterations >= 0, where, path, "'optimizer_iterations'",
            "a non-negative int", iterations)


def _check_optimizer_arrays(where, path, weights, arrays) -> None:
    """Every ``optimizer/<param>/<slot>`` array belongs to a listed weight, with its shape."""
    for key, array in arrays.items():
        if not key.startswith("optimizer/"):
            continue
        pname, _, slot = key[len("optimizer/"):].rpartition("/")
        if pname not in weights or not slot:
            raise FileFormatError(f"{where}: {path!r} holds optimizer state {key!r} for no "
                                  f"weight of the file (expected optimizer/<weight>/<slot> "
                                  f"with <weight> one of {sorted(weights)[:6]}).")
        expected = arrays[f"param/{pname}"].shape
        _expect(array.shape == expected and array.dtype.kind == "f", where, path,
                f"optimizer state {key!r}", f"a float array of its weight's shape {expected}",
                _Described(f"{array.dtype} array of shape {array.shape}"))


def parse_header(where: str, path: str, arrays: dict) -> dict:
    """Remove, decode and check the header of a file read by ``read_npz``.

    Checked: the format and version; ``weights``/``states`` name float arrays the
    file holds; for a model, ``model`` is an object, ``compile`` is well formed and
    each optimizer slot has its weight's shape. The architecture config itself is
    checked while it is rebuilt (fastcnn.train.serialization.rebuilding).
    """
    header = _decode(where, path, arrays)
    version = header.get("version")
    _expect(_is_int(version) and version >= 1, where, path, "'version'",
            "a positive int", version)
    if version > FORMAT_VERSION:
        raise FileFormatError(f"{where}: {path!r} has format version {version}; this fastcnn "
                              f"reads up to {FORMAT_VERSION}. Hint: upgrade fastcnn.")
    _expect(header.get("format") in _FORMATS, where, path, "'format'",
            f"one of {list(_FORMATS)}", header.get("format"))
    weights = _names(where, path, header, "weights", "param/", arrays)
    _names(where, path, header, "states", "state/", arrays)
    if header["format"] == "fastcnn-model":
        _expect(isinstance(header.get("model"), dict), where, path, "'model'",
                "an architecture config object", header.get("model"))
        _check_compile(where, path, header)
        _check_optimizer_arrays(where, path, set(weights), arrays)
    return header
