"""Every available fast backend equals the NumPy reference.

* over the whole named grid of :mod:`fastcnn.testing`, both dtypes, forward and
  backward, with the tolerances of its one table (max-pool forward and argmax
  routing exact; see ``fastcnn.testing.check_kernel``);
* on property-based cases whose geometry is constructed valid (window, stride and
  padding drawn first, then an input large enough);
* the adjoint identity ``<im2col(x), c> == <x, col2im(c)>``;
* max-pool argmax (read back through the backward) equals the reference's, ties included.
"""

import _helpers as H
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastcnn
from fastcnn import kernels
from fastcnn.tools.testing import (
    ADAPTIVE_CASES,
    AVGPOOL_CASES,
    BATCHNORM_CASES,
    CONV_CASES,
    IM2COL_CASES,
    POOL_CASES,
    BatchNormCase,
    ConvCase,
    PoolCase,
    check_kernel,
    kernel_functions,
)

GRID = ([("conv2d", c) for c in CONV_CASES] + [("im2col", c) for c in IM2COL_CASES]
        + [("maxpool2d", c) for c in POOL_CASES] + [("batchnorm", c) for c in BATCHNORM_CASES]
        + [("avgpool2d", c) for c in AVGPOOL_CASES]
        + [("adaptive_avgpool2d", c) for c in ADAPTIVE_CASES])
GRID = [pytest.param(k, c, id=f"{k}-{c.name}") for k, c in GRID]


@pytest.mark.parametrize("kernel, case", GRID)
def test_fast_backend_matches_reference_on_grid(fast_backend, kernel, case, dtype):
    forward, backward = kernel_functions(kernel, fast_backend)
    report = check_kernel(kernel, forward, backward, dtypes=(dtype,), cases=[case],
                          gradcheck=False)
    assert report.ok and report.results


# ------------------------------------------------------------- properties

HYPOTHESIS = settings(suppress_health_check=[HealthCheck.function_scoped_fixture])


@st.composite
def conv_cases(draw):
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    dh, dw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    t, b = draw(st.integers(0, kh - 1)), draw(st.integers(0, kh - 1))
    left, right = draw(st.integers(0, kw - 1)), draw(st.integers(0, kw - 1))
    padding = ((t, b), (left, right))
    if t == b and left == right:
        padding = (t, left)            # exercise the (h, w) form too
    h = draw(st.integers(max(1, (kh - 1) * dh + 1 - t - b), 10))
    w = draw(st.integers(max(1, (kw - 1) * dw + 1 - left - right), 10))
    groups = draw(st.integers(1, 3))
    c = groups * draw(st.integers(1, 2))
    if draw(st.booleans()):
        c = groups                     # depthwise (a direct kernel when groups > 1)
    f = groups * draw(st.integers(1, 2))
    return ConvCase("hypothesis", draw(st.integers(0, 3)), c, h, w, f, kh, kw, (sh, sw),
                    padding, (dh, dw), groups)


@st.composite
def pool_cases(draw):
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh, sw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    ph, pw = draw(st.integers(0, kh - 1)), draw(st.integers(0, kw - 1))
    h = draw(st.integers(max(1, kh - 2 * ph), 8))
    w = draw(st.integers(max(1, kw - 2 * pw), 8))
    return PoolCase("hypothesis", draw(st.integers(1, 3)), draw(st.integers(1, 4)), h, w,
                    (kh, kw), (sh, sw), (ph, pw))


@st.composite
def batchnorm_cases(draw):
    c = draw(st.integers(1, 6))
    if draw(st.booleans()):
        shape = (draw(st.integers(4, 12)), c)
    else:
        shape = (draw(st.integers(1, 3)), c, draw(st.integers(2, 5)), draw(st.integers(2, 5)))
    return BatchNormCase("hypothesis", shape, momentum=draw(st.floats(0.0, 1.0)),
                         eps=draw(st.sampled_from([1e-5, 1e-3, 1e-1])))


def _check(kernel, backend, case, seed):
    forward, backward = kernel_functions(kernel, backend)
    check_kernel(kernel, forward, backward, cases=[case], gradcheck=False, seed=seed)


@HYPOTHESIS
@given(case=conv_cases(), seed=st.integers(0, 2**16))
def test_conv2d_and_im2col_match_reference_property(fast_backend, case, seed):
    _check("conv2d", fast_backend, case, seed)
    _check("im2col", fast_backend, case, seed)


@HYPOTHESIS
@given(case=pool_cases(), seed=st.integers(0, 2**16))
def test_maxpool2d_matches_reference_property(fast_backend, case, seed):
    _check("maxpool2d", fast_backend, case, seed)


@HYPOTHESIS
@given(case=batchnorm_cases(), seed=st.integers(0, 2**16))
def test_batchnorm_matches_reference_property(fast_backend, case, seed):
    _check("batchnorm", fast_backend, case, seed)


@pytest.mark.parametrize("backend", ["numpy", "fast"])
@HYPOTHESIS
@given(case=conv_cases(), seed=st.integers(0, 2**16))
def test_im2col_col2im_adjoint_identity(request, backend, case, seed):
    if backend == "fast":
        backend = _first_fast_backend()
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(case.x_shape)
    geometry = (case.kh, case.kw, case.stride, case.padding, case.dilation)
    with fastcnn.use_backend(backend):
        cols = kernels.im2col(x, *geometry)
        c = rng.standard_normal(cols.shape)
        back = kernels.col2im(c, case.x_shape, *geometry)
    lhs, rhs = float(np.sum(cols * c)), float(np.sum(x * back))
    H.assert_close(np.array(lhs), np.array(rhs), dtype=np.float64, kind="sum",
                   what=f"adjoint identity on {backend} ({case.describe()})")


def _first_fast_backend():
    fast = [b for b in fastcnn.available_backends() if b != "numpy"]
    if not fast:
        pytest.skip("no fast backend available (cython and numba both missing)")
    return fast[0]


# ------------------------------------------------------------------ argmax


def argmax_via_backward(x, size, stride, padding):
    """The winner of every window, read back through the backward with a one-hot
    dout per output element (works whatever the backend keeps in its cache)."""
    out, cache = kernels.maxpool2d_forward(x, size, stride, padding)
    argmax = np.empty(out.shape, dtype=np.int64)
    for idx in np.ndindex(*out.shape):
        dout = np.zeros_like(out)
        dout[idx] = 1
        dx = kernels.maxpool2d_backward(dout, cache)
        plane = dx[idx[0], idx[1]].ravel()
        (hits,) = np.nonzero(plane)
        assert hits.size == 1 and plane[hits[0]] == 1, f"window {idx}: dx={plane}"
        argmax[idx] = hits[0]
    return out, argmax


@pytest.mark.parametrize("size, stride, padding", [(2, 2, 0), (3, 2, 1), ((2, 3), 1, (1, 1))],
                         ids=["2x2s2", "3x3s2-pad1", "overlap-hw"])
def test_maxpool2d_argmax_equals_reference_with_ties(fast_backend, dtype, size, stride,
                                                     padding, rng):
    # Values from {0, 1, 2}: many ties, so the first-maximum rule decides the winner.
    x = rng.integers(0, 3, size=(2, 2, 6, 6)).astype(dtype)
    x[0, 0, :2, :2] = 1.0        # a whole window tied
    with fastcnn.use_backend("numpy"):
        want_out, want_argmax = argmax_via_backward(x, size, stride, padding)
    with fastcnn.use_backend(fast_backend):
        out, argmax = argmax_via_backward(x, size, stride, padding)
    np.testing.assert_array_equal(out, want_out)
    np.testing.assert_array_equal(argmax, want_argmax)
