"""Bad arguments raise ValueError/TypeError with a pinned message, before any backend runs.

Each call runs with the dispatch points replaced by a tripwire: if validation let
a bad argument through to a backend, the test would see the tripwire's error
instead of the expected message.
"""

import re

import numpy as np
import pytest

from fastcnn import kernels
from fastcnn.kernels import _dispatch as _backend

F32 = np.float32


def arr(*shape, dtype=F32):
    return np.ones(shape, dtype=dtype)


X, W, B = arr(2, 3, 6, 7), arr(4, 3, 3, 3), arr(4)
G = arr(3)


class BackendReached(Exception):
    pass


def _tripwire(*args, **kwargs):
    raise BackendReached("validation let a bad argument reach the backend")


@pytest.fixture
def caches():
    """Valid caches to feed the backward checks, made before the tripwire is set."""
    _, conv = kernels.conv2d_forward(X, W, B, 1, 1)
    _, pool = kernels.maxpool2d_forward(X, 2)
    _, bn = kernels.batchnorm_forward(X, G, G.copy(), G.copy() * 0, G.copy(), True)
    return {"conv": conv, "pool": pool, "bn": bn}


CASES = {
    # ---- conv2d_forward
    "conv-x-rank": (lambda c: kernels.conv2d_forward(arr(3, 6, 7), W, B), ValueError,
                    "conv2d_forward: x must have 4 dims; got x.shape=(3, 6, 7)."),
    "conv-x-not-array": (lambda c: kernels.conv2d_forward(X.tolist(), W, B), TypeError,
                         "conv2d_forward: x must be a numpy.ndarray of float32 or float64; got list."),
    "conv-channel-mismatch": (lambda c: kernels.conv2d_forward(arr(2, 5, 6, 7), W, B), ValueError,
                              "conv2d_forward: x must have C == 3 channels to match w (F, C, KH, KW) = "
                              "(4, 3, 3, 3); got x.shape=(2, 5, 6, 7)."),
    "conv-kernel-too-large": (lambda c: kernels.conv2d_forward(X, arr(4, 3, 9, 3), B, 1, 1),
                              ValueError, "conv2d_forward: kernel 9x3 does not fit the padded input "
                              "8x9 (input 6x7, padding top/bottom/left/right = 1/1/1/1)"),
    "conv-dilated-kernel-too-large": (lambda c: kernels.conv2d_forward(X, W, B, 1, 0, 4),
                                      ValueError, "conv2d_forward: kernel 3x3 (dilation 4x4: it "
                                      "spans 9x9) does not fit the padded input 6x7"),
    "conv-dilation-0": (lambda c: kernels.conv2d_forward(X, W, B, 1, 1, (1, 0)), ValueError,
                        "conv2d_forward: dilation must be positive; got (1, 0)."),
    "conv-groups-0": (lambda c: kernels.conv2d_forward(X, W, B, 1, 1, 1, 0), ValueError,
                      "conv2d_forward: groups must be a positive int; got 0."),
    "conv-groups-float": (lambda c: kernels.conv2d_forward(X, W, B, 1, 1, 1, 1.0), ValueError,
                          "conv2d_forward: groups must be a positive int; got 1.0."),
    "conv-groups-not-dividing": (lambda c: kernels.conv2d_forward(X, arr(4, 1, 3, 3), B, 1, 1,
                                                                  1, 2),
                                 ValueError, "conv2d_forward: groups must divide both the input "
                                 "channels C = 3 and the filters F = 4; got groups=2."),
    "conv-groups-channel-mismatch": (lambda c: kernels.conv2d_forward(arr(2, 4, 6, 7), W, B,
                                                                      1, 1, 1, 2),
                                     ValueError, "conv2d_forward: x must have C == 6 channels to "
                                     "match w (F, C/groups, KH, KW) with groups=2 = (4, 3, 3, 3); "
                                     "got x.shape=(2, 4, 6, 7)."),
    "im2col-dilation-0": (lambda c: kernels.im2col(X, 3, 3, 1, 1, 0), ValueError,
                          "im2col: dilation must be positive; got 0."),
    "conv-stride-0": (lambda c: kernels.conv2d_forward(X, W, B, 0), ValueError,
                      "conv2d_forward: stride must be positive; got 0."),
    "conv-stride-pair-0": (lambda c: kernels.conv2d_forward(X, W, B, (1, 0)), ValueError,
                           "conv2d_forward: stride must be positive; got (1, 0)."),
    "conv-negative-padding": (lambda c: kernels.conv2d_forward(X, W, B, 1, -1), ValueError,
                              "conv2d_forward: padding must be >= 0; got -1."),
    # issue 13: 2**63 was an OverflowError from Cython/Numba, 2**62 NumPy's "Maximum
    # allowed dimension exceeded"; now one bound, checked before any backend runs.
    "conv-stride-2**63": (lambda c: kernels.conv2d_forward(X, W, B, 2**63), ValueError,
                          "conv2d_forward: stride must be at most 2**31 - 1 = 2147483647; "
                          "got 9223372036854775808."),
    "conv-padding-2**62": (lambda c: kernels.conv2d_forward(X, W, B, 1, (1, 2**62)), ValueError,
                           "conv2d_forward: padding must be at most 2**31 - 1"),
    "conv-asym-padding-2**63": (lambda c: kernels.conv2d_forward(X, W, B, 1,
                                                                 ((0, 2**63), (0, 0))),
                                ValueError, "conv2d_forward: padding must be an int, an (h, w)"),
    "pool-size-2**63": (lambda c: kernels.maxpool2d_forward(X, 2**63), ValueError,
                        "maxpool2d_forward: size must be at most 2**31 - 1"),
    "im2col-stride-2**40": (lambda c: kernels.im2col(X, 2, 2, (2**40, 1)), ValueError,
                            "im2col: stride must be at most 2**31 - 1"),
    "conv-bad-asym-padding": (lambda c: kernels.conv2d_forward(X, W, B, 1, ((0, -1), (0, 0))),
                              ValueError, "conv2d_forward: padding must be an int, an (h, w) pair"),
    "conv-bias-length": (lambda c: kernels.conv2d_forward(X, W, arr(5)), ValueError,
                         "conv2d_forward: b must have shape (4,); got b.shape=(5,)."),
    "conv-mixed-dtype": (lambda c: kernels.conv2d_forward(X, W.astype(np.float64), B), TypeError,
                         "conv2d_forward: all arrays must share one dtype; got x=float32, "
                         "w=float64, b=float32."),
    "conv-int-dtype": (lambda c: kernels.conv2d_forward(X.astype(np.int64), W, B), TypeError,
                       "conv2d_forward: x has dtype int64; expected float32 or float64."),
    # ---- conv2d_backward
    "conv-dout-shape": (lambda c: kernels.conv2d_backward(arr(2, 4, 6, 6), c["conv"]), ValueError,
                        "conv2d_backward: dout must have shape (2, 4, 6, 7); got dout.shape=(2, 4, 6, 6)."),
    "conv-dout-dtype": (lambda c: kernels.conv2d_backward(arr(2, 4, 6, 7, dtype=np.float64),
                                                          c["conv"]), TypeError,
                        "conv2d_backward: dout has dtype float64 but the forward pass ran in float32"),
    "conv-dout-int": (lambda c: kernels.conv2d_backward(arr(2, 4, 6, 7, dtype=np.int32),
                                                        c["conv"]), TypeError,
                      "conv2d_backward: dout has dtype int32; expected float32 or float64."),
    "conv-wrong-cache": (lambda c: kernels.conv2d_backward(arr(2, 3, 3, 3), c["pool"]), TypeError,
                         "conv2d_backward: cache must be the cache returned by conv2d_forward; "
                         "got KernelCache from maxpool2d."),
    "conv-not-a-cache": (lambda c: kernels.conv2d_backward(arr(2, 4, 6, 7), ("x", "w")), TypeError,
                         "conv2d_backward: cache must be the cache returned by conv2d_forward; got tuple."),
    # ---- maxpool2d
    "pool-x-rank": (lambda c: kernels.maxpool2d_forward(arr(6, 7)), ValueError,
                    "maxpool2d_forward: x must have 4 dims; got x.shape=(6, 7)."),
    "pool-size-0": (lambda c: kernels.maxpool2d_forward(X, 0), ValueError,
                    "maxpool2d_forward: size must be positive; got 0."),
    "pool-stride-0": (lambda c: kernels.maxpool2d_forward(X, 2, 0), ValueError,
                      "maxpool2d_forward: stride must be positive; got 0."),
    "pool-window-too-large": (lambda c: kernels.maxpool2d_forward(X, 8), ValueError,
                              "maxpool2d_forward: window 8x8 does not fit the padded input 6x7"),
    "pool-padding-ge-window": (lambda c: kernels.maxpool2d_forward(X, 2, 2, 2), ValueError,
                               "maxpool2d_forward: padding must be smaller than the window on every "
                               "side (else a window could hold only padding); got padding=2 with size 2x2."),
    "pool-negative-padding": (lambda c: kernels.maxpool2d_forward(X, 2, 2, (0, -1)), ValueError,
                              "maxpool2d_forward: padding must be >= 0; got (0, -1)."),
    "pool-dout-shape": (lambda c: kernels.maxpool2d_backward(arr(2, 3, 3, 4), c["pool"]),
                        ValueError, "maxpool2d_backward: dout must have shape (2, 3, 3, 3); "
                        "got dout.shape=(2, 3, 3, 4)."),
    "pool-wrong-cache": (lambda c: kernels.maxpool2d_backward(arr(2, 3, 3, 3), c["conv"]),
                         TypeError, "maxpool2d_backward: cache must be the cache returned by "
                         "maxpool2d_forward; got KernelCache from conv2d."),
    # ---- batchnorm
    "bn-x-rank": (lambda c: kernels.batchnorm_forward(arr(2, 3, 4), G, G, G, G), ValueError,
                  "batchnorm_forward: x must have 2 or 4 dims; got x.shape=(2, 3, 4)."),
    "bn-gamma-length": (lambda c: kernels.batchnorm_forward(X, arr(4), G, G, G), ValueError,
                        "batchnorm_forward: gamma must have shape (3,); got gamma.shape=(4,)."),
    "bn-beta-length": (lambda c: kernels.batchnorm_forward(X, G, arr(2), G, G), ValueError,
                       "batchnorm_forward: beta must have shape (3,); got beta.shape=(2,)."),
    "bn-running-mean-length": (lambda c: kernels.batchnorm_forward(X, G, G, arr(5), G), ValueError,
                               "batchnorm_forward: running_mean must have shape (3,); "
                               "got running_mean.shape=(5,)."),
    "bn-running-var-length": (lambda c: kernels.batchnorm_forward(X, G, G, G, arr(1)), ValueError,
                              "batchnorm_forward: running_var must have shape (3,); "
                              "got running_var.shape=(1,)."),
    "bn-momentum": (lambda c: kernels.batchnorm_forward(X, G, G, G, G, True, 1.5), ValueError,
                    "batchnorm_forward: momentum must lie in [0.0, 1.0]; got 1.5."),
    "bn-momentum-nan": (lambda c: kernels.batchnorm_forward(X, G, G, G, G, True, float("nan")),
                        ValueError, "batchnorm_forward: momentum must be a finite real number; got nan."),
    "bn-eps-zero": (lambda c: kernels.batchnorm_forward(X, G, G, G, G, True, 0.9, 0.0), ValueError,
                    "batchnorm_forward: eps must lie in (0.0, inf]; got 0.0."),
    "bn-eps-negative": (lambda c: kernels.batchnorm_forward(X, G, G, G, G, True, 0.9, -1e-5),
                        ValueError, "batchnorm_forward: eps must lie in (0.0, inf]; got -1e-05."),
    "bn-training-not-bool": (lambda c: kernels.batchnorm_forward(X, G, G, G, G, "yes"), TypeError,
                             "batchnorm_forward: training must be a bool; got 'yes'."),
    "bn-train-empty-planes": (lambda c: kernels.batchnorm_forward(arr(2, 3, 0, 2), G, G, G, G, True),
                             ValueError, "batchnorm_forward: training mode needs a non-empty batch"),
    "bn-mixed-dtype": (lambda c: kernels.batchnorm_forward(X, G, G, G.astype(np.float64), G),
                       TypeError, "batchnorm_forward: all arrays must share one dtype"),
    "bn-dout-shape": (lambda c: kernels.batchnorm_backward(arr(2, 3, 6, 6), c["bn"]), ValueError,
                      "batchnorm_backward: dout must have shape (2, 3, 6, 7); got dout.shape=(2, 3, 6, 6)."),
    "bn-wrong-cache": (lambda c: kernels.batchnorm_backward(X, c["pool"]), TypeError,
                       "batchnorm_backward: cache must be the cache returned by batchnorm_forward; "
                       "got KernelCache from maxpool2d."),
    # ---- im2col / col2im
    "im2col-kernel-0": (lambda c: kernels.im2col(X, 0, 3), ValueError,
                        "im2col: kernel size (kh, kw) must be positive; got (0, 3)."),
    "im2col-x-rank": (lambda c: kernels.im2col(arr(3, 6, 7), 3, 3), ValueError,
                      "im2col: x must have 4 dims; got x.shape=(3, 6, 7)."),
    "im2col-too-large": (lambda c: kernels.im2col(X, 7, 3), ValueError,
                         "im2col: kernel 7x3 does not fit the padded input 6x7"),
    "col2im-cols-shape": (lambda c: kernels.col2im(arr(27, 10), X.shape, 3, 3), ValueError,
                          "col2im: cols must have shape (27, 40); got cols.shape=(27, 10)."),
    "col2im-x-shape": (lambda c: kernels.col2im(arr(27, 40), (2, 3, 6), 3, 3), ValueError,
                       "col2im: x_shape must be (N, C, H, W) of non-negative ints; got (2, 3, 6)."),
    "col2im-zero-channels": (lambda c: kernels.col2im(arr(0, 40), (2, 0, 6, 7), 3, 3), ValueError,
                             "col2im: x_shape must have C, H, W >= 1; got (2, 0, 6, 7)."),
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_argument_raises_pinned_message_before_any_backend(name, caches, monkeypatch):
    call, error, message = CASES[name]
    monkeypatch.setattr(kernels, "_current", _tripwire)
    monkeypatch.setattr(_backend, "backend_module", _tripwire)
    with pytest.raises(error, match=re.escape(message)):
        call(caches)


def test_tripwire_would_catch_a_call_reaching_the_backend(monkeypatch):
    # The guard above is only meaningful if a *valid* call does reach the tripwire.
    monkeypatch.setattr(kernels, "_current", _tripwire)
    with pytest.raises(BackendReached):
        kernels.conv2d_forward(X, W, B)
