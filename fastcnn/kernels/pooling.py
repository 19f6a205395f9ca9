"""The pooling kernels of the kernel API: max, average and adaptive average pooling.

Validate once, make the input contiguous, dispatch to the current backend (see
:mod:`fastcnn.kernels`, which re-exports everything here). Options and their meaning
follow PyTorch's ``max_pool2d`` / ``avg_pool2d`` / ``adaptive_avg_pool2d``:

- ``size``, ``stride``, ``padding``, ``dilation`` take an int or an ``(h, w)`` pair;
  ``padding`` also takes ``((top, bottom), (left, right))`` (Keras' ``"same"``);
- ``ceil_mode=True`` counts the windows rounding up: a last, partial window covers
  what floor mode drops, if it starts inside the input or the top/left padding;
- each side's padding must be smaller than the window, and every window must hold
  at least one input pixel (so a max never sees only padding).

A backward call runs on the backend that produced its ``cache``.
"""

from __future__ import annotations

import numpy as np

from fastcnn.common.validation import _is_int, as_float_array, to_pair
from fastcnn.kernels import _dispatch
from fastcnn.kernels.cache import KernelCache, check_cache, check_dout
from fastcnn.kernels.geometry import (
    adaptive_windows,
    avgpool_windows,
    parse_padding,
    window_geometry,
)

__all__ = [
    "maxpool2d_forward", "maxpool2d_backward", "maxpool2d_indices",
    "avgpool2d_forward", "avgpool2d_backward",
    "adaptive_avgpool2d_forward", "adaptive_avgpool2d_backward",
]


def _current():
    name = _dispatch.get_backend()
    return name, _dispatch.backend_module(name)


def _check_bool(where: str, name: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{where}: {name} must be a bool; got {value!r}.")
    return bool(value)


def _check_input(where: str, x) -> np.ndarray:
    x = as_float_array(where, "x", x, ndim=4)
    if x.shape[1] == 0 or x.shape[2] == 0 or x.shape[3] == 0:
        raise ValueError(f"{where}: x must have C, H, W >= 1; got x.shape={x.shape}.")
    return x


def _first_real_tap_missing(size, kernel, stride, dilation, pad_before, count) -> bool:
    """True if some window along this axis holds padding only. Only a window that
    starts in the top/left padding can: every other one starts on an input pixel."""
    for k in range(count):
        start = k * stride - pad_before
        if start >= 0:
            return False
        first = -(start // dilation) * dilation + start   # first tap at a row >= 0
        if first >= size or (first - start) // dilation >= kernel:
            return True
    return False


def _pool_geometry(where, x_shape, size, stride, padding, dilation=1, ceil_mode=False):
    """The :class:`WindowGeometry` of a pooling call, or a ValueError naming the argument."""
    kh, kw = to_pair(where, "size", size)
    sh, sw = to_pair(where, "stride", (kh, kw) if stride is None else stride)
    dh, dw = to_pair(where, "dilation", dilation)
    ceil_mode = _check_bool(where, "ceil_mode", ceil_mode)
    top, bottom, left, right = parse_padding(where, padding)
    n, c, h, w = x_shape
    if max(top, bottom) >= kh or max(left, right) >= kw:
        raise ValueError(
            f"{where}: padding must be smaller than the window on every side (else a "
            f"window could hold only padding); got padding={padding!r} with size {kh}x{kw}.")
    extent_h, extent_w = dh * (kh - 1) + 1, dw * (kw - 1) + 1
    if extent_h > h + top + bottom or extent_w > w + left + right:
        raise ValueError(
            f"{where}: window {extent_h}x{extent_w} does not fit the padded input "
            f"{h + top + bottom}x{w + left + right} (size {kh}x{kw}, dilation {dh}x{dw}, "
            f"input {h}x{w}, padding top/bottom/left/right = {top}/{bottom}/{left}/{right}); "
            f"output would be empty.")
    g = window_geometry(n, c, h, w, kh, kw, sh, sw, top, bottom, left, right, dh, dw, ceil_mode)
    if (_first_real_tap_missing(h, kh, sh, dh, top, g.oh)
            or _first_real_tap_missing(w, kw, sw, dw, left, g.ow)):
        raise ValueError(
            f"{where}: every window must hold at least one input pixel; with size {kh}x{kw}, "
            f"dilation {dh}x{dw} and padding {padding!r} a window on input {h}x{w} holds "
            f"padding only. Hint: less padding or less dilation.")
    return g


# ----------------------------------------------------------------------- maxpool


def maxpool2d_forward(x, size=2, stride=None, padding=0, dilation=1, ceil_mode=False):
    """Max pooling over ``size`` windows moved by ``stride`` (default: ``size``).

    ``out[n, c, i, j] = max_{p < KH, q < KW} x_pad[n, c, i*SH + p*DH, j*SW + q*DW]``
    where padding is ``-inf`` (it never wins). Ties go to the *first* maximum in
    row-major window order, as in PyTorch; a NaN in a window wins (NaN propagates).
    Floor mode drops windows that do not fit; ``ceil_mode=True`` keeps a last partial
    one (PyTorch's rule, see the module docstring).

    Returns ``out (N, C, OH, OW)`` and a cache for :func:`maxpool2d_backward` and
    :func:`maxpool2d_indices`, with ``OH = (H + PT + PB - DH*(KH-1) - 1) // SH + 1``.
    """
    where = "maxpool2d_forward"
    x = _check_input(where, x)
    geom = _pool_geometry(where, x.shape, size, stride, padding, dilation, ceil_mode)
    name, module = _current()
    out, data = module.maxpool2d_forward(x, geom)
    return out, KernelCache("maxpool2d", name, out.shape, x.dtype, data)


def maxpool2d_backward(dout, cache):
    """Gradient of :func:`maxpool2d_forward`: each ``dout`` element is *added* to the
    input position that won its window (overlapping windows accumulate)."""
    dout = check_dout("maxpool2d_backward", dout, cache)
    return _dispatch.backend_module(cache.backend).maxpool2d_backward(dout, cache.data)


def maxpool2d_indices(cache) -> np.ndarray:
    """Where each window's maximum came from, as PyTorch's ``return_indices=True``
    gives it: ``indices[n, c, i, j] = h*W + w``, the flat index of the winner within
    its ``(n, c)`` input plane (int64, shape of the output; a fresh array).

    ``x[n, c].flat[indices[n, c]] == out[n, c]``, and
    ``torch.nn.functional.max_unpool2d`` accepts it. Ties are the first maximum in
    row-major window order, as in PyTorch; in a window holding NaNs this picks the
    first NaN where PyTorch picks the last (both outputs are NaN).
    """
    check_cache("maxpool2d_indices", cache, "maxpool2d")
    data = cache.data
    return np.array(_dispatch.backend_module(cache.backend).maxpool_argmax(data),
                    dtype=np.int64, copy=True)


# ----------------------------------------------------------------------- avgpool


def avgpool2d_forward(x, size, stride=None, padding=0, ceil_mode=False,
                      count_include_pad=True, divisor_override=None):
    """Average pooling, PyTorch's ``avg_pool2d``.

    ``out[n, c, i, j] = sum_{p < KH, q < KW} x_pad[n, c, i*SH + p, j*SW + q] / divisor``
    with zero padding and ``divisor`` =

    - ``divisor_override`` if given (a positive int);
    - else, with ``count_include_pad=True``, the window's size within the padded input
      (``KH*KW`` except where a ceil-mode window runs past the bottom/right padding);
    - else the number of real (non-padding) pixels in the window (Keras' ``"same"``).

    Returns ``out (N, C, OH, OW)`` (``OH`` as for max pooling) and a cache for
    :func:`avgpool2d_backward`.
    """
    where = "avgpool2d_forward"
    x = _check_input(where, x)
    count_include_pad = _check_bool(where, "count_include_pad", count_include_pad)
    if divisor_override is not None and (not _is_int(divisor_override) or divisor_override < 1):
        raise ValueError(f"{where}: divisor_override must be None or a positive int; "
                         f"got {divisor_override!r}.")
    geom = _pool_geometry(where, x.shape, size, stride, padding, 1, ceil_mode)
    windows = avgpool_windows(geom, count_include_pad, divisor_override)
    name, module = _current()
    out, data = module.avgpool2d_forward(x, windows)
    return out, KernelCache("avgpool2d", name, out.shape, x.dtype, data)


def avgpool2d_backward(dout, cache):
    """Gradient of :func:`avgpool2d_forward`: every pixel of a window receives
    ``dout / divisor`` of that window (overlapping windows add up; padding drops out)."""
    dout = check_dout("avgpool2d_backward", dout, cache)
    return _dispatch.backend_module(cache.backend).avgpool2d_backward(dout, cache.data)


def adaptive_avgpool2d_forward(x, output_size):
    """Adaptive average pooling, PyTorch's ``adaptive_avg_pool2d``: the output has
    ``output_size = (OH, OW)`` (an int, a pair, or a pair with None = keep that input
    size) whatever the input size; output row ``i`` averages input rows
    ``floor(i*H/OH) <= h < ceil((i+1)*H/OH)`` (columns alike).

    ``output_size=1`` is global average pooling: ``out[n, c] = mean(x[n, c])``.
    Returns ``out (N, C, OH, OW)`` and a cache for :func:`adaptive_avgpool2d_backward`.
    """
    where = "adaptive_avgpool2d_forward"
    x = _check_input(where, x)
    n, c, h, w = x.shape
    if isinstance(output_size, (tuple, list)) and len(output_size) == 2:
        output_size = tuple(size if v is None else v for v, size in zip(output_size, (h, w)))
    oh, ow = to_pair(where, "output_size", output_size)
    windows = adaptive_windows(n, c, h, w, oh, ow)
    name, module = _current()
    out, data = module.avgpool2d_forward(x, windows)
    return out, KernelCache("adaptive_avgpool2d", name, out.shape, x.dtype, data)


def adaptive_avgpool2d_backward(dout, cache):
    """Gradient of :func:`adaptive_avgpool2d_forward`: each window's ``dout / area`` is
    added to every pixel of the window."""
    dout = check_dout("adaptive_avgpool2d_backward", dout, cache)
    return _dispatch.backend_module(cache.backend).avgpool2d_backward(dout, cache.data)
