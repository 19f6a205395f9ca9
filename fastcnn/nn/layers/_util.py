"""Small helpers shared by the layer modules (config of initializers/regularizers,
Keras padding strings)."""

from __future__ import annotations

from fastcnn.common.validation import to_pair
from fastcnn.kernels.geometry import output_size, same_padding
from fastcnn.nn import initializers, regularizers


def object_config(identifier):
    """A JSON-able form of an initializer/regularizer identifier: strings, None and
    dicts stay; objects become ``{"class_name": ..., "config": obj.get_config()}``,
    which their ``get()`` accepts back."""
    if identifier is None or isinstance(identifier, (str, dict)):
        return identifier
    return {"class_name": type(identifier).__name__, "config": identifier.get_config()}


initializer_config = object_config
regularizer_config = object_config


def get_regularizer(identifier):
    if identifier is None:
        return None
    return regularizers.get(identifier)


def store_weight_options(layer, kernel_initializer, bias_initializer, kernel_regularizer,
                         bias_regularizer=None):
    """Keep a weighted layer's initializer/regularizer arguments as given (for
    ``get_config``) and resolved (``_kernel_init``, ``_bias_init``, ``_kernel_reg``,
    ``_bias_reg``)."""
    layer.kernel_initializer = kernel_initializer
    layer.bias_initializer = bias_initializer
    layer.kernel_regularizer = kernel_regularizer
    layer.bias_regularizer = bias_regularizer
    layer._kernel_init = initializers.get(kernel_initializer)
    layer._bias_init = initializers.get(bias_initializer)
    layer._kernel_reg = get_regularizer(kernel_regularizer)
    layer._bias_reg = get_regularizer(bias_regularizer)


def check_padding(where: str, padding):
    """"valid" | "same" | int | (h, w) -> the normalized value kept in the config."""
    if isinstance(padding, str):
        if padding.lower() not in ("valid", "same"):
            raise ValueError(f"{where}: padding must be 'valid', 'same', an int or an (h, w) "
                             f"pair; got {padding!r}.")
        return padding.lower()
    return to_pair(where, "padding", padding, minimum=0)


def window_padding(padding, size_hw, kernel_hw, stride_hw):
    """Per-side padding ``((top, bottom), (left, right))`` for a window op.

    ``"same"`` follows TensorFlow: ``OH = ceil(H / SH)``, and an odd total padding puts
    the extra row/column at the bottom/right (see :func:`fastcnn.kernels.geometry.same_padding`).
    """
    if padding == "valid":
        return (0, 0), (0, 0)
    if padding == "same":
        return tuple(same_padding(s, k, st) for s, k, st in zip(size_hw, kernel_hw, stride_hw))
    return (padding[0], padding[0]), (padding[1], padding[1])


def dilated_size(kernel_hw, dilation_hw) -> tuple[int, int]:
    """The pixels a dilated kernel covers, ``(KH - 1)*DH + 1`` per axis: what its output
    size and its "same" padding are computed from."""
    return tuple((k - 1) * d + 1 for k, d in zip(kernel_hw, dilation_hw))


def window_output_hw(where, padding, size_hw, kernel_hw, stride_hw):
    """``(OH, OW)`` with ``OH = (H + PT + PB - KH) // SH + 1``; a ValueError if empty."""
    pads = window_padding(padding, size_hw, kernel_hw, stride_hw)
    out = []
    for s, k, st, (before, after) in zip(size_hw, kernel_hw, stride_hw, pads):
        if s + before + after < k:
            raise ValueError(
                f"{where}: window {kernel_hw[0]}x{kernel_hw[1]} does not fit input "
                f"{size_hw[0]}x{size_hw[1]} with padding {padding!r}; output would be empty. "
                f"Hint: use padding='same' or a smaller window.")
        out.append(output_size(s, k, st, before, after))
    return tuple(out)


def check_image_shape(where: str, input_shape) -> None:
    if len(input_shape) != 3:
        raise ValueError(f"{where}: expects a per-sample input shape (C, H, W); got "
                         f"{tuple(input_shape)}. Hint: images are NCHW, e.g. "
                         f"input_shape=(1, 28, 28).")
