"""What a forward kernel call hands to its backward, and the check of ``dout``.

Shared by the kernel API modules (:mod:`fastcnn.kernels`, :mod:`fastcnn.kernels.pooling`).
"""

from __future__ import annotations

import numpy as np

from fastcnn.common.validation import as_float_array, check_shape

__all__ = ["KernelCache", "check_dout"]


class KernelCache:
    """What a forward call hands to its backward: opaque backend data plus enough
    bookkeeping to check ``dout`` and to route the call to the same backend."""

    __slots__ = ("op", "backend", "out_shape", "dtype", "data", "extra")

    def __init__(self, op, backend, out_shape, dtype, data, extra=None):
        self.op = op
        self.backend = backend
        self.out_shape = tuple(out_shape)
        self.dtype = dtype
        self.data = data
        self.extra = extra

    def __repr__(self):
        return (f"KernelCache(op={self.op!r}, backend={self.backend!r}, "
                f"out_shape={self.out_shape}, dtype={self.dtype})")


def check_cache(where: str, cache, op: str) -> None:
    """``cache`` must be a :class:`KernelCache` made by the forward of ``op``."""
    if not isinstance(cache, KernelCache) or cache.op != op:
        raise TypeError(
            f"{where}: cache must be the cache returned by {op}_forward; got "
            f"{type(cache).__name__}"
            + (f" from {cache.op}" if isinstance(cache, KernelCache) else "") + "."
        )


def check_dout(where: str, dout, cache) -> np.ndarray:
    """``dout`` of a ``<op>_backward`` call: a float array of the forward's output
    shape and dtype, with ``cache`` from ``<op>_forward``."""
    check_cache(where, cache, where.replace("_backward", ""))
    dout = as_float_array(where, "dout", dout)
    if dout.dtype != cache.dtype:
        raise TypeError(
            f"{where}: dout has dtype {dout.dtype} but the forward pass ran in "
            f"{cache.dtype}; mixed dtypes are not cast silently."
        )
    check_shape(where, "dout", dout, cache.out_shape)
    return dout
