"""Geometry fuzz of the compiled kernels: the edges of every index computation.

``test_backend_vs_reference`` draws comfortable geometries; this module draws the
edges -- windows exactly as large as the padded input, strides larger than the
window, padding as large as the rules allow (and, for convolution, larger than the
kernel), empty batches, odd sides next to the 2x2/2 pooling fast path, rows longer
than one vector tile, batch-norm feature counts across the 64-feature blocks -- on 1
and 2 threads, and compares with the NumPy reference. Geometries that are invalid
must be refused by validation before any compiled code runs.

CI runs this module (with the kernel tests) against an extension built with
``-fsanitize=address,undefined`` and bounds-checked Cython (``.ci/run``, sanitizer
stage): any out-of-bounds read or write or undefined behaviour aborts the run there.
"""

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastcnn
from fastcnn import kernels
from fastcnn.kernels import _common
from fastcnn.tools.testing import BatchNormCase, ConvCase, PoolCase, check_kernel, kernel_functions

#: Examples per property: a few dozen in the ordinary test run (both fast backends,
#: every CI run); the sanitizer stage of .ci/run sets FASTCNN_FUZZ_EXAMPLES=200.
EXAMPLES = int(os.environ.get("FASTCNN_FUZZ_EXAMPLES", "30"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture
def threads_split(fast_backend, monkeypatch):
    """Small work really runs on 2 threads when asked (the backends keep work below
    their GRAIN on one thread)."""
    fastcnn.backend.backend_module(fast_backend)
    monkeypatch.setattr(_common, "GRAIN", 1)   # the grain rule of both fast backends
    return fast_backend


def _run(kernel, backend, case, seed, threads):
    forward, backward = kernel_functions(kernel, backend)
    with fastcnn.use_backend(backend):
        fastcnn.set_num_threads(threads)
        check_kernel(kernel, forward, backward, cases=[case], gradcheck=False, seed=seed)


@st.composite
def edge_conv_cases(draw):
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    sh, sw = draw(st.integers(1, 7)), draw(st.integers(1, 7))
    dh, dw = draw(st.sampled_from([1, 1, 2, 3])), draw(st.sampled_from([1, 1, 2, 3]))
    top, bottom = draw(st.integers(0, kh + 1)), draw(st.integers(0, kh + 1))
    left, right = draw(st.integers(0, kw + 1)), draw(st.integers(0, kw + 1))
    # the smallest input the (dilated) window fits in, or a little more
    h = max(1, (kh - 1) * dh + 1 - top - bottom) + draw(st.integers(0, 3))
    w = max(1, (kw - 1) * dw + 1 - left - right) + draw(st.sampled_from([0, 1, 2, 9, 40]))
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    c = groups * draw(st.integers(1, 2))
    if draw(st.booleans()):
        c = groups                     # depthwise when groups > 1 (the direct kernel)
    return ConvCase("edge", draw(st.integers(0, 3)), c, h, w, groups * draw(st.integers(1, 2)),
                    kh, kw, (sh, sw), ((top, bottom), (left, right)), (dh, dw), groups)


@st.composite
def edge_pool_cases(draw):
    if draw(st.booleans()):                    # the 2x2 / stride-2 fast path
        size, stride, padding = (2, 2), (2, 2), (draw(st.integers(0, 1)),) * 2
    else:
        size = (draw(st.integers(1, 5)), draw(st.integers(1, 5)))
        stride = (draw(st.integers(1, 7)), draw(st.integers(1, 7)))
        padding = (draw(st.integers(0, size[0] - 1)), draw(st.integers(0, size[1] - 1)))
    h = max(1, size[0] - 2 * padding[0]) + draw(st.integers(0, 4))
    w = max(1, size[1] - 2 * padding[1]) + draw(st.sampled_from([0, 1, 2, 3, 17, 70]))
    return PoolCase("edge", draw(st.integers(0, 3)), draw(st.integers(1, 3)), h, w,
                    size, stride, padding)


@st.composite
def edge_batchnorm_cases(draw):
    # At least 2 values per feature: with one, the training-mode variance is 0 and dx
    # (exactly 0 in exact arithmetic) is rounding noise times 1/sqrt(eps) -- a
    # precision limit of the formula, not of the index arithmetic fuzzed here.
    features = draw(st.sampled_from([1, 2, 63, 64, 65, 130]))
    if draw(st.booleans()):
        shape = (draw(st.integers(2, 9)), features)
    else:
        n, h = draw(st.integers(1, 3)), draw(st.integers(1, 5))
        shape = (n, min(features, 9), h, draw(st.integers(1 if n * h >= 2 else 2, 9)))
    return BatchNormCase("edge", shape, momentum=draw(st.sampled_from([0.0, 0.5, 1.0])))


@FUZZ
@given(case=edge_conv_cases(), seed=st.integers(0, 2**16), threads=st.sampled_from([1, 2]))
def test_conv2d_and_im2col_edges(threads_split, case, seed, threads):
    _run("conv2d", threads_split, case, seed, threads)
    _run("im2col", threads_split, case, seed, threads)


@FUZZ
@given(case=edge_pool_cases(), seed=st.integers(0, 2**16), threads=st.sampled_from([1, 2]))
def test_maxpool2d_edges(threads_split, case, seed, threads):
    _run("maxpool2d", threads_split, case, seed, threads)


@FUZZ
@given(case=edge_batchnorm_cases(), seed=st.integers(0, 2**16),
       threads=st.sampled_from([1, 2]))
def test_batchnorm_edges(threads_split, case, seed, threads):
    _run("batchnorm", threads_split, case, seed, threads)


@FUZZ
@given(kh=st.integers(1, 9), h=st.integers(1, 8), pad=st.integers(0, 3),
       stride=st.sampled_from([1, 2, 2**31 - 1, 2**31, 2**63]), pool=st.booleans())
def test_invalid_geometry_is_refused_before_compiled_code(fast_backend, kh, h, pad, stride,
                                                          pool):
    """A window larger than the padded input, a pooling pad as large as the window, or
    a stride beyond 2**31 - 1: ValueError from validation, never a kernel call."""
    x = np.ones((1, 2, h, h), np.float32)
    too_large = kh > h + 2 * pad
    bad_pool_pad = pool and pad >= kh
    with fastcnn.use_backend(fast_backend):
        try:
            if pool:
                kernels.maxpool2d_forward(x, kh, stride, pad)
            else:
                kernels.conv2d_forward(x, np.ones((1, 2, kh, kh), np.float32), None,
                                       stride, pad)
        except ValueError:
            refused = True
        else:
            refused = False
    assert refused == (too_large or bad_pool_pad or stride > 2**31 - 1)
