"""Output-size formulas and window geometry: the only place they live.

A sliding window (a convolution kernel or a pooling window) of size ``KH x KW``
moves over an input plane of size ``H x W`` with stride ``(SH, SW)``. The input
is conceptually padded with ``pad_top`` rows above, ``pad_bottom`` below,
``pad_left`` columns on the left and ``pad_right`` on the right. Then::

    OH = (H + pad_top + pad_bottom - KH) // SH + 1
    OW = (W + pad_left + pad_right - KW) // SW + 1

Output position ``(oh, ow)`` covers input rows ``oh*SH - pad_top ... + KH - 1``
and columns ``ow*SW - pad_left ... + KW - 1`` (floor mode: a window that would
run past the padded input is dropped, as in PyTorch and Keras "valid").

Symmetric padding (the kernel API's ``padding=p`` or ``(ph, pw)``) is the case
``pad_top == pad_bottom`` and ``pad_left == pad_right``. Keras' ``"same"`` with
stride > 1 may need one more row/column at the bottom/right; the geometry keeps
all four sides so that case needs no copy of the input.

Kernels only ever read ``pad_top``/``pad_left`` (to map an output position to
its input window) and ``OH``/``OW`` (how many windows there are): the bottom and
right padding only decide ``OH``/``OW``, here, once.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

__all__ = ["WindowGeometry", "output_size", "same_padding"]


def output_size(size: int, kernel: int, stride: int, pad_before: int, pad_after: int) -> int:
    """Number of window positions along one axis: ``(size + pads - kernel) // stride + 1``."""
    return (size + pad_before + pad_after - kernel) // stride + 1


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """Keras/TensorFlow ``"same"`` padding along one axis, as ``(before, after)``.

    The output has ``ceil(size / stride)`` positions; the total padding needed is
    ``max((out - 1) * stride + kernel - size, 0)``, split with the extra pixel (if
    the total is odd) at the end (bottom/right), as TensorFlow does.
    """
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


@dataclass(frozen=True)
class WindowGeometry:
    """Everything a kernel needs to know about a sliding-window op on (N, C, H, W).

    Attributes
    ----------
    n, c, h, w : int
        Input batch size, channels, height, width.
    kh, kw : int
        Window (kernel) height and width.
    sh, sw : int
        Strides.
    pad_top, pad_bottom, pad_left, pad_right : int
        Zero padding (convolution) or -inf padding (max pooling) per side.
    oh, ow : int
        Output height and width (computed once, here).
    """

    n: int
    c: int
    h: int
    w: int
    kh: int
    kw: int
    sh: int
    sw: int
    pad_top: int
    pad_bottom: int
    pad_left: int
    pad_right: int

    # cached_property: computed on first use and kept (the kernels read them many times
    # per call); it writes the instance __dict__ directly, which a frozen dataclass allows
    @cached_property
    def oh(self) -> int:
        return output_size(self.h, self.kh, self.sh, self.pad_top, self.pad_bottom)

    @cached_property
    def ow(self) -> int:
        return output_size(self.w, self.kw, self.sw, self.pad_left, self.pad_right)

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        return (self.n, self.c, self.h, self.w)

    @property
    def cols_shape(self) -> tuple[int, int]:
        """Shape of the im2col matrix: ``(C*KH*KW, N*OH*OW)``."""
        return (self.c * self.kh * self.kw, self.n * self.oh * self.ow)

    def with_batch(self, n: int) -> "WindowGeometry":
        """The same geometry for a batch of ``n`` images (used for chunking)."""
        return WindowGeometry(
            n, self.c, self.h, self.w, self.kh, self.kw, self.sh, self.sw,
            self.pad_top, self.pad_bottom, self.pad_left, self.pad_right,
        )

    @property
    def is_symmetric(self) -> bool:
        return self.pad_top == self.pad_bottom and self.pad_left == self.pad_right
