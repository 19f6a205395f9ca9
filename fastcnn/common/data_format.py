"""Image data formats: ``"channels_first"`` (NCHW, fastcnn's native layout, PyTorch's)
and ``"channels_last"`` (NHWC, Keras' default).

Every layer computes in NCHW. A model declared ``data_format="channels_last"`` takes and
returns images as ``(N, H, W, C)`` and converts them once at its edge (one transposed
copy per ``fit``/``evaluate``/``predict`` call), never per layer. The default for new
models is global, as ``keras.config.set_image_data_format``:

>>> import fastcnn
>>> fastcnn.set_image_data_format("channels_last")     # doctest: +SKIP

fastcnn's own default stays ``"channels_first"`` (its kernels, weights and PyTorch
interchange are NCHW); Keras' is ``"channels_last"``.
"""

from __future__ import annotations

__all__ = ["FORMATS", "image_data_format", "set_image_data_format", "check_data_format",
           "to_internal_shape", "to_external_shape", "looks_channels_last",
           "looks_channels_first", "layout_warning"]

FORMATS = ("channels_first", "channels_last")
_current = "channels_first"


def check_data_format(where: str, value) -> str:
    """``None`` -> the global default; otherwise one of :data:`FORMATS`, or a ValueError."""
    if value is None:
        return _current
    if value not in FORMATS:
        raise ValueError(f"{where}: data_format must be 'channels_first' (N, C, H, W) or "
                         f"'channels_last' (N, H, W, C); got {value!r}.")
    return value


def image_data_format() -> str:
    """The default data format of models created from now on."""
    return _current


def set_image_data_format(data_format: str) -> None:
    """Set the default data format of models (and ``Input``) created from now on."""
    global _current
    _current = check_data_format("set_image_data_format", data_format)


def to_internal_shape(shape: tuple, data_format: str) -> tuple:
    """Per-sample shape in ``data_format`` -> NCHW order: ``(H, W, C) -> (C, H, W)``
    for channels-last images; other ranks are unchanged."""
    shape = tuple(shape)
    if data_format == "channels_last" and len(shape) == 3:
        return (shape[2], shape[0], shape[1])
    return shape


def to_external_shape(shape: tuple, data_format: str) -> tuple:
    """Inverse of :func:`to_internal_shape`: ``(C, H, W) -> (H, W, C)`` for channels-last."""
    shape = tuple(shape)
    if data_format == "channels_last" and len(shape) == 3:
        return (shape[1], shape[2], shape[0])
    return shape


def looks_channels_last(shape) -> bool:
    """``(H, W, C)`` with C in {1, 3, 4} and image-sized H, W (a channels-first image
    with 28 channels of width 1 is possible, but it is never what was meant)."""
    return len(shape) == 3 and shape[2] in (1, 3, 4) and shape[0] > 4 and shape[1] > 4


def looks_channels_first(shape) -> bool:
    """``(C, H, W)`` with C in {1, 3, 4} and image-sized H, W."""
    return len(shape) == 3 and shape[0] in (1, 3, 4) and shape[1] > 4 and shape[2] > 4


def layout_warning(where: str, shape, data_format: str) -> str | None:
    """A warning text when a declared per-sample ``shape`` looks like the other layout
    (``(28, 28, 1)`` for a channels-first model), else None."""
    if data_format == "channels_first" and looks_channels_last(shape):
        return (f"{where}: input shape {tuple(shape)} looks channels-last (H, W, C) but the "
                f"model is channels-first, so it reads {shape[0]} channels of "
                f"{shape[1]}x{shape[2]} images. Hint: pass data_format='channels_last' or "
                f"call fastcnn.set_image_data_format('channels_last') before building it.")
    if data_format == "channels_last" and looks_channels_first(shape):
        return (f"{where}: input shape {tuple(shape)} looks channels-first (C, H, W) but the "
                f"model is channels-last, so it reads {shape[2]} channels of "
                f"{shape[0]}x{shape[1]} images. Hint: pass data_format='channels_first' (or "
                f"fastcnn.set_image_data_format('channels_first')).")
    return None
