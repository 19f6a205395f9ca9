"""The NumPy reference equals naive nested loops on tiny float64 shapes (oracle tolerance).

This is the first rung of the verification ladder: the loops in ``_helpers`` are
written straight from the formulas, the reference is vectorised; if both agree,
the reference is trusted to judge the fast backends.
"""

import _helpers as H
import numpy as np
import pytest

import fastcnn
from fastcnn import kernels
from fastcnn.tools.testing import ConvCase, PoolCase

# Tiny geometries: every loop in the oracle runs, and the grid's corners appear.
TINY_CONV = [
    ConvCase("3x3-pad1", 2, 2, 4, 5, 3, 3, 3, 1, 1),
    ConvCase("stride2-nonsquare", 1, 2, 5, 6, 2, 2, 3, 2, (1, 0)),
    ConvCase("hw-pairs", 2, 1, 5, 5, 2, 3, 2, (2, 1), (0, 1)),
    ConvCase("asym-pad", 1, 2, 4, 5, 2, 3, 3, 2, ((0, 1), (1, 0))),
    ConvCase("kernel-equals-padded-input", 1, 2, 2, 3, 2, 4, 5, 1, 1),
    ConvCase("stride-gt-kernel", 2, 1, 7, 7, 1, 2, 2, 3),
]
TINY_POOL = [
    PoolCase("2x2s2", 2, 2, 4, 4, 2, 2),
    PoolCase("3x3s2-overlap", 1, 2, 7, 7, 3, 2),
    PoolCase("floor-mode", 1, 1, 5, 7, 2, 2),
    PoolCase("pad1", 1, 2, 5, 5, 3, 2, 1),
    PoolCase("hw-pairs", 1, 1, 6, 5, (3, 2), (2, 1), (1, 0)),
]


@pytest.fixture(autouse=True)
def _numpy_backend():
    with fastcnn.use_backend("numpy"):
        yield


def close(actual, expected, what):
    H.assert_close(actual, expected, dtype=np.float64, kind="oracle", what=what)


@pytest.mark.parametrize("case", TINY_CONV, ids=H.case_ids(TINY_CONV))
def test_im2col_col2im_match_loops(case, rng):
    x = rng.standard_normal(case.x_shape)
    geometry = (case.kh, case.kw, case.stride, case.padding)
    cols = kernels.im2col(x, *geometry)
    np.testing.assert_array_equal(cols, H.naive_im2col(x, *geometry))
    c = rng.standard_normal(cols.shape)
    close(kernels.col2im(c, case.x_shape, *geometry),
          H.naive_col2im(c, case.x_shape, *geometry), "col2im")


@pytest.mark.parametrize("case", TINY_CONV, ids=H.case_ids(TINY_CONV))
def test_conv2d_forward_backward_match_loops(case, rng):
    inputs = case.make_inputs(rng, np.float64)
    out, cache = kernels.conv2d_forward(*inputs.values(), case.stride, case.padding)
    close(out, H.naive_conv_forward(*inputs.values(), case.stride, case.padding), "conv out")
    dout = rng.standard_normal(out.shape)
    grads = kernels.conv2d_backward(dout, cache)
    want = H.naive_conv_backward(dout, inputs["x"], inputs["w"], case.stride, case.padding)
    for name, got, exp in zip(("dx", "dw", "db"), grads, want):
        close(got, exp, f"conv {name}")


@pytest.mark.parametrize("case", TINY_POOL, ids=H.case_ids(TINY_POOL))
def test_maxpool2d_forward_backward_match_loops(case, rng):
    x = rng.standard_normal(case.x_shape)
    geometry = (case.size, case.stride, case.padding)
    out, cache = kernels.maxpool2d_forward(x, *geometry)
    want_out, want_argmax = H.naive_maxpool_forward(x, *geometry)
    np.testing.assert_array_equal(out, want_out)
    np.testing.assert_array_equal(cache.data[0], want_argmax)   # reference cache: (argmax, g)
    dout = rng.standard_normal(out.shape)
    close(kernels.maxpool2d_backward(dout, cache),
          H.naive_maxpool_backward(dout, want_argmax, x.shape), "pool dx")


def test_maxpool2d_ties_go_to_first_maximum():
    # Every window of a constant plane ties everywhere: the first (top-left) wins.
    x = np.ones((1, 1, 4, 4))
    x[0, 0, 1, 1] = x[0, 0, 0, 1] = 2.0   # tie between (0,1) and (1,1) in window 0
    out, cache = kernels.maxpool2d_forward(x, 2, 2)
    want_out, want_argmax = H.naive_maxpool_forward(x, 2, 2, 0)
    np.testing.assert_array_equal(out, want_out)
    np.testing.assert_array_equal(cache.data[0], want_argmax)
    assert cache.data[0][0, 0, 0, 0] == 1          # (row 0, col 1) is first in row-major order
    assert cache.data[0][0, 0, 1, 1] == 2 * 4 + 2  # all-ones window: its top-left


def test_maxpool2d_nan_wins_and_propagates():
    x = np.arange(16, dtype=np.float64).reshape(1, 1, 4, 4)
    x[0, 0, 0, 0] = np.nan                     # first element of window (0, 0)
    x[0, 0, 3, 3] = np.nan                     # last element of window (1, 1), beats 14.0
    x[0, 0, 1, 2] = np.inf
    out, cache = kernels.maxpool2d_forward(x, 2, 2)
    want_out, want_argmax = H.naive_maxpool_forward(x, 2, 2, 0)
    np.testing.assert_array_equal(out, want_out)           # NaN == NaN for assert_array_equal
    np.testing.assert_array_equal(cache.data[0], want_argmax)
    assert np.isnan(out[0, 0, 0, 0]) and np.isnan(out[0, 0, 1, 1]) and out[0, 0, 0, 1] == np.inf
    assert cache.data[0][0, 0, 1, 1] == 15


BN_SHAPES = [(6, 3), (3, 2, 3, 2), (1, 3, 2, 3)]


@pytest.mark.parametrize("shape", BN_SHAPES, ids=["dense", "spatial", "batch1-spatial"])
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_batchnorm_forward_backward_match_loops(shape, training, rng):
    c = shape[1]
    x = 1.5 + 2.0 * rng.standard_normal(shape)
    gamma, beta = rng.uniform(0.5, 1.5, c), rng.standard_normal(c)
    rm, rv = rng.standard_normal(c), rng.uniform(0.5, 2.0, c)
    momentum, eps = 0.8, 1e-3
    want_out, want_rm, want_rv = H.naive_batchnorm_forward(x, gamma, beta, rm, rv, training,
                                                           momentum, eps)
    run_mean, run_var = rm.copy(), rv.copy()
    out, cache = kernels.batchnorm_forward(x, gamma, beta, run_mean, run_var, training,
                                           momentum, eps)
    close(out, want_out, "bn out")
    close(run_mean, want_rm, "running_mean")
    close(run_var, want_rv, "running_var")
    dout = rng.standard_normal(shape)
    grads = kernels.batchnorm_backward(dout, cache)
    want = H.naive_batchnorm_backward(dout, x, gamma, rm, rv, training, eps)
    for name, got, exp in zip(("dx", "dgamma", "dbeta"), grads, want):
        close(got, exp, f"bn {name}")
