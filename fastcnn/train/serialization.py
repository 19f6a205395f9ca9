"""Saving and loading models: one ``.npz`` file, no pickle.

File layout (written by ``numpy.savez``, uncompressed; read back as untrusted input by
:mod:`fastcnn.train.npz_reader` and :mod:`fastcnn.train.file_header`, never unpickling)::

    __fastcnn__                 uint8 bytes of a JSON header:
                                {"format": "fastcnn-model" | "fastcnn-weights", "version": 1,
                                 "model_class": "Sequential" | "Model" (functional),
                                 "model": model.get_config(), "compile": {...} | null,
                                 "weights": [parameter names, in model order],
                                 "states": [state keys], "optimizer_iterations": int}
    param/<parameter name>      e.g. param/conv2d_1/kernel
    state/<layer>/<key>         e.g. state/batch_normalization_1/moving_mean
    optimizer/<param>/<slot>    e.g. optimizer/conv2d_1/kernel/m

Files are written to a temporary file in the same directory and moved over the
target with ``os.replace`` (atomic on POSIX and Windows): a crash mid-save leaves
the old file intact, never half a file. The temporary a killed save leaves behind is
removed by the next save of the same target (:mod:`fastcnn.train.temp_files`). The file
gets the permissions any new file gets (``0o666`` minus the umask, e.g. ``rw-r--r--``),
so a classmate or TA can read a shared model. The name must end in ``.npz``: other
formats (``.keras``, ``.h5``, ``.pt``, ``.onnx``) are refused with a pointer to
:mod:`fastcnn.interop`, rather than written as fastcnn's ``.npz`` under a misleading name.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets

import numpy as np

from fastcnn.nn import losses
from fastcnn.nn.layers import BatchNormalization, Conv2D, Dense, Maxout, PReLU
from fastcnn.nn.layers.base import _all_layers, checking_new_arrays
from fastcnn.optim import optimizers
from fastcnn.train import file_header, npz_reader, temp_files
from fastcnn.train.file_header import FORMAT_VERSION

__all__ = ["save_model", "read_model", "rebuilding", "restore_model", "save_weights",
           "load_weights", "load_state_dict_torch", "FORMAT_VERSION"]

_HEADER = file_header.HEADER_KEY


def _header_array(header: dict) -> np.ndarray:
    return np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)


#: file extensions people try, and where fastcnn's interop for that format lives
_OTHER_FORMATS = {
    ".keras": "fastcnn writes no Keras files (fastcnn.interop.load_keras reads them)",
    ".h5": "fastcnn writes no Keras/HDF5 files (fastcnn.interop.load_keras reads .keras)",
    ".hdf5": "fastcnn writes no Keras/HDF5 files (fastcnn.interop.load_keras reads .keras)",
    ".onnx": "use fastcnn.interop.export_onnx(model, path) for ONNX",
    ".pt": "use fastcnn.interop.to_torch_state_dict(model) and torch.save for PyTorch",
    ".pth": "use fastcnn.interop.to_torch_state_dict(model) and torch.save for PyTorch",
}


def check_npz_path(where: str, path) -> str:
    """``path`` as a str when it ends in ``.npz``; otherwise a ValueError saying which
    format the extension suggests and how to get it."""
    path = os.fspath(path)
    extension = os.path.splitext(path)[1].lower()
    if extension != ".npz":
        hint = _OTHER_FORMATS.get(extension, "fastcnn's own format is .npz")
        raise ValueError(f"{where}: path must end in '.npz' (fastcnn saves one NumPy .npz "
                         f"file); got {path!r}. Hint: {hint}.")
    return path


def _create_temp(path: str) -> tuple[int, str]:
    """Open a new temporary for target ``path``, beside it: ``(fd, temp path)``, named
    ``temp_files.temp_prefix(path) + <16 hex digits> + ".tmp"``.

    ``tempfile.mkstemp`` would do, but it creates files with mode 0o600 (owner only)
    whatever the umask; ``os.open(..., 0o666)`` lets the umask decide, as for any new
    file (``rw-r--r--`` with the usual umask 022)."""
    directory = os.path.dirname(os.path.abspath(path))
    while True:
        name = f"{temp_files.temp_prefix(path)}{secrets.token_hex(8)}.tmp"
        tmp = os.path.join(directory, name)
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), tmp
        except FileExistsError:  # a random 64-bit name taken: draw another
            continue


def _write_atomic(path, arrays: dict) -> None:
    path = os.fspath(path)
    temp_files.remove_stale_temps(path)     # left by saves killed mid-write
    fd, tmp = _create_temp(path)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


#: what to do with another program's file that a user tried to load as fastcnn's
_READ_HINTS = {
    ".keras": "It looks like a Keras file: read it with fastcnn.interop.load_keras(path).",
    ".h5": "It looks like a Keras 2 HDF5 file, which fastcnn does not read: save the model "
           "as .keras with Keras 3, then use fastcnn.interop.load_keras(path).",
    ".hdf5": "It looks like a Keras 2 HDF5 file, which fastcnn does not read: save the model "
             "as .keras with Keras 3, then use fastcnn.interop.load_keras(path).",
    ".onnx": "It looks like an ONNX file: fastcnn exports ONNX (fastcnn.interop.export_onnx) "
             "but does not import it.",
    ".pt": "It looks like a PyTorch file: build the same model in fastcnn and call "
           "model.load_state_dict_torch(torch.load(path)).",
    ".pth": "It looks like a PyTorch file: build the same model in fastcnn and call "
            "model.load_state_dict_torch(torch.load(path)).",
}


def _read(where: str, path) -> tuple[dict, dict]:
    """``(header, arrays)`` of a fastcnn file, every field of the header checked (see
    :mod:`fastcnn.train.file_header`); any problem is a ValueError naming the file (with
    a pointer to the right reader when the extension says another program wrote it)."""
    try:
        arrays = npz_reader.read_npz(where, path)
        header = file_header.parse_header(where, os.fspath(path), arrays)
    except ValueError as exc:
        hint = _READ_HINTS.get(os.path.splitext(os.fspath(path))[1].lower())
        if hint is None:
            raise
        raise type(exc)(f"{exc} {hint}") from exc
    return header, arrays


def _weight_arrays(model) -> tuple[dict, list, list]:
    if not model.built:
        raise RuntimeError("save: the model is not built, so it has no weights yet. Hint: "
                           "pass input_shape=... or call model.build(shape) first.")
    params = model.parameters()
    states = model.states()
    arrays = {f"param/{p.name}": p.data for p in params}
    arrays.update({f"state/{k}": v for k, v in states.items()})
    return arrays, [p.name for p in params], list(states)


def save_model(model, path, include_optimizer: bool = True) -> None:
    """Architecture, weights, statistics, compile settings, optimizer state -> ``path``
    (which must end in ``.npz``)."""
    path = check_npz_path("save", path)
    arrays, names, state_keys = _weight_arrays(model)
    header = {"format": "fastcnn-model", "version": FORMAT_VERSION,
              "model_class": model.config_kind,
              "model": model.get_config(), "weights": names, "states": state_keys,
              "compile": None, "optimizer_iterations": 0}
    if model.optimizer is not None:
        header["compile"] = {
            "optimizer": optimizers.serialize(model.optimizer),
            "loss": losses.serialize(model.loss),
            "metrics": [name for name, _ in model.compiled_metrics],
        }
        if include_optimizer:
            opt_state = model.optimizer.state_dict()
            header["optimizer_iterations"] = opt_state["iterations"]
            for pname, slots in opt_state["state"].items():
                for slot, value in slots.items():
                    arrays[f"optimizer/{pname}/{slot}"] = value
    arrays[_HEADER] = _header_array(header)
    _write_atomic(path, arrays)


def save_weights(model, path) -> None:
    """Weights and moving statistics only (no architecture, no optimizer) -> ``path``
    (which must end in ``.npz``)."""
    path = check_npz_path("save_weights", path)
    arrays, names, state_keys = _weight_arrays(model)
    arrays[_HEADER] = _header_array({"format": "fastcnn-weights", "version": FORMAT_VERSION,
                                     "weights": names, "states": state_keys})
    _write_atomic(path, arrays)


def _assign(where: str, model, header: dict, arrays: dict) -> None:
    """Copy saved weights/statistics into ``model``, in model order, checking shapes.
    ``where`` names the caller and the file."""
    params, states = model.parameters(), model.states()
    saved_names, saved_states = header.get("weights", []), header.get("states", [])
    if len(saved_names) != len(params) or len(saved_states) != len(states):
        raise ValueError(f"{where}: the file holds {len(saved_names)} weight arrays and "
                         f"{len(saved_states)} state arrays; the model has {len(params)} and "
                         f"{len(states)}. Hint: build the same architecture first.")
    pairs = [(p.name, p.data, arrays[f"param/{n}"]) for p, n in zip(params, saved_names)]
    pairs += [(k, states[k], arrays[f"state/{s}"]) for k, s in zip(states, saved_states)]
    for name, target, value in pairs:
        if target.shape != value.shape:
            raise ValueError(f"{where}: {name!r} has shape {target.shape} in the model but "
                             f"{value.shape} in the file.")
    for _, target, value in pairs:
        target[...] = value            # in place: optimizers and views keep working


def load_weights(model, path) -> None:
    header, arrays = _read("load_weights", path)
    if not model.built:
        raise RuntimeError("load_weights: the model is not built. Hint: pass input_shape=... "
                           "or call model.build(shape) first.")
    _assign(f"load_weights: {os.fspath(path)!r}", model, header, arrays)


def read_model(path) -> tuple[dict, dict]:
    """``(header, arrays)`` of a file written by :func:`save_model`; ``header["model"]`` is
    the architecture config to build the model from, inside :func:`rebuilding`
    (``fastcnn.load_model`` does that)."""
    header, arrays = _read("load_model", path)
    if header["format"] != "fastcnn-model":
        raise ValueError(f"load_model: {os.fspath(path)!r} holds {header['format']!r}, not "
                         f"a model. Hint: build the model and call model.load_weights(path).")
    return header, arrays


# What a config from a file can provoke in constructors and ``build``: each becomes a
# ValueError naming the file (RecursionError: absurdly nested configs).
_CONFIG_ERRORS = (TypeError, ValueError, KeyError, AttributeError, IndexError,
                  OverflowError, RecursionError)


@contextlib.contextmanager
def rebuilding(path, header: dict, arrays: dict, what: str = "architecture config"):
    """Context for rebuilding a model from ``header["model"]`` (any model class's
    ``from_config``), or for any step driven by the file's ``header``.

    Inside it, every weight and state array a layer creates is first compared with the
    array of that name the file holds -- shape included, *before* it is allocated (a
    config asking for ``Dense(units=10**12)`` fails here, allocating nothing). Any
    error the file's contents provoke becomes a ValueError naming the file.
    """
    where = f"load_model: {os.fspath(path)!r}"
    stored = {"weight": {n: arrays[f"param/{n}"].shape for n in header.get("weights", [])},
              "state": {k: arrays[f"state/{k}"].shape for k in header.get("states", [])}}

    def check(kind, name, shape):
        if name not in stored[kind]:
            raise npz_reader.FileFormatError(
                f"{where}: its architecture creates the {kind} {name!r} (shape {shape}), "
                f"which the file does not hold (its {kind}s: {sorted(stored[kind])[:6]}).")
        if tuple(shape) != stored[kind][name]:
            raise npz_reader.FileFormatError(
                f"{where}: its architecture creates the {kind} {name!r} with shape {shape} "
                f"but the file holds it with shape {stored[kind][name]}.")

    try:
        with checking_new_arrays(check):
            yield
    except npz_reader.FileFormatError:
        raise
    except _CONFIG_ERRORS as exc:
        raise ValueError(f"{where}: its {what} cannot be used ({type(exc).__name__}: "
                         f"{' '.join(str(exc).split())[:300]}).") from None


def restore_model(model, header: dict, arrays: dict, path="<arrays>") -> None:
    """Second half of loading: weights, statistics, compile settings and optimizer state
    from ``read_model``'s output into ``model``, freshly built from ``header["model"]``."""
    where = f"load_model: {os.fspath(path)!r}"
    _assign(where, model, header, arrays)
    compile_config = header.get("compile")
    if compile_config is None:
        return
    with rebuilding(path, header, arrays, what="compile settings"):
        model.compile(optimizer=compile_config["optimizer"], loss=compile_config["loss"],
                      metrics=compile_config["metrics"])
    shapes = {p.name: p.shape for p in model.parameters()}
    state: dict = {}
    for key, value in arrays.items():
        if key.startswith("optimizer/"):
            pname, slot = key[len("optimizer/"):].rsplit("/", 1)
            if shapes.get(pname) != value.shape:       # checked now, not at the next fit
                raise ValueError(f"{where}: optimizer state {key!r} has shape {value.shape} "
                                 f"but the model's weight {pname!r} has "
                                 f"{shapes.get(pname, 'no such weight')}.")
            state.setdefault(pname, {})[slot] = value
    with rebuilding(path, header, arrays, what="optimizer state"):
        model.optimizer.load_state_dict({"iterations": header.get("optimizer_iterations", 0),
                                         "state": state})


def _torch_array(value) -> np.ndarray:
    if hasattr(value, "detach"):                  # a torch.Tensor
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def load_state_dict_torch(model, state_dict) -> None:
    """Copy a PyTorch ``state_dict`` (tensors or arrays) into a matching built model.

    Entries are consumed in order (``num_batches_tracked`` is skipped) and matched to
    the model's layers in order: ``Conv2d.weight/bias`` -> ``Conv2D`` kernel/bias as
    is (both OIHW); ``Linear.weight`` ``(out, in)`` -> ``Dense`` (or ``Maxout``: a
    Linear to ``units * pieces``, then a max) kernel transposed;
    ``BatchNorm.weight/bias/running_mean/running_var`` -> gamma/beta/moving stats;
    ``PReLU.weight`` -> alpha. Values are converted to the model's dtype (this
    explicit import is the one place a cast happens). Only arrays are copied:
    hyper-parameters such as batch norm's momentum/eps are the model's own.
    """
    entries = [(k, _torch_array(v)) for k, v in state_dict.items()
               if not k.endswith("num_batches_tracked")]
    position = 0

    def take(layer, what, shape, transpose=False):
        nonlocal position
        if position >= len(entries):
            raise ValueError(f"load_state_dict_torch: ran out of entries at layer "
                             f"{layer.name!r} ({what}); the state dict has {len(entries)}.")
        key, value = entries[position]
        position += 1
        value = value.T if transpose else value
        if value.shape != tuple(shape):
            raise ValueError(f"load_state_dict_torch: {key!r} has shape {value.shape}"
                             f"{' (transposed)' if transpose else ''} but layer {layer.name!r} "
                             f"needs {what} of shape {tuple(shape)}.")
        return value.astype(model.dtype)

    if not model.built:
        raise RuntimeError("load_state_dict_torch: the model is not built. Hint: pass "
                           "input_shape=... to Sequential.")
    updates = []
    for layer in _all_layers(model.layers):
        if isinstance(layer, (Conv2D, Dense, Maxout)):
            updates.append((layer.kernel.data, take(layer, "kernel", layer.kernel.shape,
                                                    transpose=not isinstance(layer, Conv2D))))
            if layer.bias is not None:
                updates.append((layer.bias.data, take(layer, "bias", layer.bias.shape)))
        elif isinstance(layer, BatchNormalization):
            for target in (layer.gamma.data, layer.beta.data, layer.state["moving_mean"],
                           layer.state["moving_variance"]):
                updates.append((target, take(layer, "batch norm arrays", target.shape)))
        elif isinstance(layer, PReLU):
            updates.append((layer.alpha.data, take(layer, "alpha", layer.alpha.shape)))
        elif layer._params:
            raise ValueError(f"load_state_dict_torch: layer {layer.name!r} "
                             f"({type(layer).__name__}) has no PyTorch counterpart.")
    if position != len(entries):
        raise ValueError(f"load_state_dict_torch: {len(entries) - position} entries left over "
                         f"(first: {entries[position][0]!r}); the architectures differ.")
    for target, value in updates:
        target[...] = value
