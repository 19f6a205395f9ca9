"""What a model does to data at its edge, once per ``fit``/``evaluate``/``predict`` call.

**Dtype policy** (Keras'): integer, boolean and float arrays (and nested lists of
numbers) are cast to the model's dtype (float32 unless the model was built in
float64), in one copy made here; the caller's array is never modified. Arrays that
already have the model's dtype and layout are used as they are (no copy). Layers and
kernels stay strict: they refuse a wrong dtype instead of casting per call.

**Data format**: a ``"channels_last"`` model takes images ``(N, H, W, C)`` and converts
them here to the NCHW its layers compute in (the same single copy does the cast);
image-shaped outputs are converted back. When the data's shape does not match the
model's input but its transpose does, the error says so and how to fix it.
"""

from __future__ import annotations

import numpy as np

from fastcnn.common.data_format import to_external_shape, to_internal_shape

__all__ = ["prepare_x", "prepare_y", "output_to_user", "layout_hint"]

_CASTABLE_KINDS = "biuf"       # bool, signed/unsigned int, float


def layout_hint(declared: tuple, got: tuple, data_format: str) -> str | None:
    """A sentence when per-sample ``got`` is ``declared`` in the other layout."""
    if len(declared) != 3 or len(got) != 3:
        return None
    if data_format == "channels_first" and tuple(got) == (declared[1], declared[2], declared[0]):
        return (f"x is channels-last data (N, H, W, C) = (N, {', '.join(map(str, got))}) but "
                f"the model is channels-first with input shape (C, H, W) = {declared}. Fix "
                f"(the same model either way): build it with data_format='channels_last' and "
                f"input_shape={tuple(got)} (or call fastcnn.set_image_data_format("
                f"'channels_last') before building), or pass x.transpose(0, 3, 1, 2).")
    if data_format == "channels_last" and tuple(got) == (declared[2], declared[0], declared[1]):
        return (f"x is channels-first data (N, C, H, W) = (N, {', '.join(map(str, got))}) but "
                f"the model is channels-last with input shape (H, W, C) = {declared}. Fix "
                f"(the same model either way): build it with data_format='channels_first' and "
                f"input_shape={tuple(got)}, or pass x.transpose(0, 2, 3, 1).")
    return None


def _as_array(where: str, name: str, x) -> np.ndarray:
    if isinstance(x, (list, tuple)):
        x = np.asarray(x)
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{where}: {name} must be a numpy array; got {type(x).__name__}.")
    if x.dtype.kind not in _CASTABLE_KINDS:
        raise TypeError(f"{where}: {name} must hold numbers (bool, int or float); got dtype "
                        f"{x.dtype}.")
    return x


def prepare_x(where: str, model, x) -> np.ndarray:
    """``x`` as a C-contiguous NCHW array of the model's dtype (one copy at most).

    ``model.input_shape`` (per-sample, in the model's data format) is checked when
    the model is built; an unbuilt model is built from ``x`` afterwards by the caller.
    """
    x = _as_array(where, "x", x)
    if x.ndim < 2:
        raise ValueError(f"{where}: x must be a batch (N, ...) with at least 2 dims; got "
                         f"x.shape={x.shape}.")
    declared = model.input_shape
    if declared is not None and x.shape[1:] != tuple(declared):
        hint = layout_hint(tuple(declared), x.shape[1:], model.data_format)
        raise ValueError(f"{where}: x must have shape (N, {', '.join(map(str, declared))}); "
                         f"got x.shape={x.shape}." + (f" {hint}" if hint else ""))
    if model.data_format == "channels_last" and x.ndim == 4:
        x = x.transpose(0, 3, 1, 2)             # (N, H, W, C) -> (N, C, H, W), a view
    return np.ascontiguousarray(x, dtype=model.dtype)


def prepare_y(where: str, y, n: int) -> np.ndarray:
    """Targets as an array with one entry per sample; ``None`` is a clear error."""
    if y is None:
        raise ValueError(f"{where}: y (the targets) is None; fastcnn models train on "
                         f"(x, y) pairs: pass labels, e.g. fit(x, y) with y of shape (N,) "
                         f"or one-hot (N, classes).")
    y = _as_array(where, "y", y)
    if y.ndim == 0 or len(y) != n:
        raise ValueError(f"{where}: x and y must hold the same number of samples; got "
                         f"len(x)={n}, y.shape={y.shape}.")
    return y


def output_to_user(model, out: np.ndarray) -> np.ndarray:
    """Image-shaped outputs of a channels-last model back to ``(N, H, W, C)``."""
    if model.data_format == "channels_last" and out.ndim == 4:
        return np.ascontiguousarray(out.transpose(0, 2, 3, 1))
    return out


def internal_shape(model, shape) -> tuple:
    return to_internal_shape(shape, model.data_format)


def external_shape(model, shape) -> tuple:
    return to_external_shape(shape, model.data_format)
