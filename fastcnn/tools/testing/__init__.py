"""Check a convolution, pooling or batch-norm kernel against fastcnn's NumPy reference.

This module is public: it is what fastcnn's own tests use to check its fast
backends, and it is meant for anyone who writes kernels of their own (for
example the ``conv_forward`` / ``max_pool_backward`` / ``batchnorm_backward``
functions of CS231n's assignments). It holds three things:

1. **The named shape grid**, as data: :data:`CONV_CASES`, :data:`POOL_CASES`,
   :data:`BATCHNORM_CASES` (and :data:`IM2COL_CASES`, the conv geometries). Each
   case has a readable ``name`` (``"3x3-pad1"``, ``"3x3s2-overlap"``, ``"N0"``, ...)
   that names the corner of the geometry it exercises, and makes its own inputs.
2. **One tolerance table**, :data:`TOLERANCES`, keyed by ``(dtype, kind)``, and
   :func:`assert_close`, which uses it and, on failure, names the worst element:
   its index, the value, the expected value, the case and the dtype.
3. :func:`check_kernel`, which runs *your* forward and backward over every case
   and both dtypes, compares them with the reference (computed in float64 and
   cast), gradient-checks your backward against your own forward by central
   differences on small float64 cases, and reports the first mismatch.

Example: a max-pool backward that writes ``dx[...] = dout`` instead of adding
(``+=``) is wrong exactly where windows overlap, and ``check_kernel`` says so::

    import numpy as np
    from fastcnn.testing import check_kernel

    def pool_forward(x, size, stride, padding):     # ints only, no padding
        n, c, h, w = x.shape
        oh, ow = (h - size) // stride + 1, (w - size) // stride + 1
        out = np.empty((n, c, oh, ow), dtype=x.dtype)
        for i in range(oh):
            for j in range(ow):
                window = x[:, :, i*stride:i*stride + size, j*stride:j*stride + size]
                out[:, :, i, j] = window.max(axis=(2, 3))
        return out, (x, size, stride)

    def pool_backward(dout, cache):                 # deliberately wrong
        x, size, stride = cache
        dx = np.zeros_like(x)
        for n, c, i, j in np.ndindex(*dout.shape):
            window = x[n, c, i*stride:i*stride + size, j*stride:j*stride + size]
            p, q = np.unravel_index(np.argmax(window), window.shape)
            dx[n, c, i*stride + p, j*stride + q] = dout[n, c, i, j]   # bug: must be +=
        return dx

    check_kernel("maxpool2d", pool_forward, pool_backward,
                 cases=["2x2s2", "3x3s2-overlap", "stride1"])
    # AssertionError: maxpool2d backward dx (integer dout): case '3x3s2-overlap'
    #   x.shape=(2, 3, 9, 9) size=3 stride=2 padding=0, dtype float32: 7 of 486
    #   elements differ (exact comparison); worst at index (...): got ..., expected ...

Fix the ``=`` and the same call passes (``tests/kernels/test_testing_module.py``
runs both). Central differences would catch this bug too (on the float64 cases).

The user functions follow the kernel API of ``fastcnn.kernels`` (docs/architecture.md):

==========  =====================================================  ==============================
kernel      forward                                                backward
==========  =====================================================  ==============================
conv2d      ``forward(x, w, b, stride, padding) -> (out, cache)``  ``backward(dout, cache) -> (dx, dw, db)``
            (``forward(x, w, b, stride, padding, dilation, groups)``
            for the dilated / grouped / depthwise cases)
maxpool2d   ``forward(x, size, stride, padding) -> (out, cache)``  ``backward(dout, cache) -> dx``
            (``forward(x, size, stride, padding, dilation,
            ceil_mode)`` for the ceil-mode / dilated cases)
avgpool2d   ``forward(x, size, stride, padding, ceil_mode,         ``backward(dout, cache) -> dx``
            count_include_pad, divisor_override) -> (out, cache)``
adaptive_   ``forward(x, output_size) -> (out, cache)``            ``backward(dout, cache) -> dx``
avgpool2d
batchnorm   ``forward(x, gamma, beta, running_mean, running_var,   ``backward(dout, cache) -> (dx, dgamma, dbeta)``
            training, momentum, eps) -> (out, cache)``
im2col      ``forward(x, kh, kw, stride, padding) -> cols``        ``backward(cols, x_shape, kh, kw, stride, padding) -> x``
            (one more argument, ``dilation``, for the dilated cases)
==========  =====================================================  ==============================

``stride``/``padding``/``size``/``dilation`` arrive as ints or ``(h, w)`` pairs as the
case states them; two conv cases (``asym-pad``, ``depthwise-stride2-asym-pad``) use
``((top, bottom), (left, right))`` padding: leave them out with ``cases=`` if your kernel
does not support that form, and the dilated / grouped / depthwise cases if it has no
``dilation`` / ``groups``. Likewise the max-pooling cases ``ceil-mode``,
``ceil-pad-overlap``, ``dilated`` and ``dilated-pairs-ceil`` (PyTorch's ``dilation`` and
``ceil_mode`` after ``padding``).
"""

from fastcnn.tools.testing.cases import (
    ADAPTIVE_CASES,
    AVGPOOL_CASES,
    BATCHNORM_CASES,
    CONV_CASES,
    IM2COL_CASES,
    KERNELS,
    POOL_CASES,
    BatchNormCase,
    ConvCase,
    PoolCase,
    AvgPoolCase,
    AdaptivePoolCase,
    cases_for,
    distinct_values,
    random_cases,
)
from fastcnn.tools.testing.check import CheckResult, KernelReport, check_kernel, kernel_functions
from fastcnn.tools.testing.compare import (
    GRADCHECK_MAX_REL_ERROR,
    TOLERANCES,
    assert_close,
    compare,
    tolerance,
)

__all__ = [
    "ConvCase",
    "PoolCase",
    "AvgPoolCase",
    "AdaptivePoolCase",
    "BatchNormCase",
    "CONV_CASES",
    "IM2COL_CASES",
    "POOL_CASES",
    "AVGPOOL_CASES",
    "ADAPTIVE_CASES",
    "BATCHNORM_CASES",
    "TOLERANCES",
    "GRADCHECK_MAX_REL_ERROR",
    "KERNELS",
    "tolerance",
    "compare",
    "assert_close",
    "cases_for",
    "random_cases",
    "distinct_values",
    "kernel_functions",
    "CheckResult",
    "KernelReport",
    "check_kernel",
]
