"""Pooling kernels (max with dilation / ceil mode / indices, average, adaptive average)
and batch norm on an empty training batch: float64 gradient checks, bitwise 1 vs 2
threads, the kernel contracts and the pinned error messages. (Oracles and backend
comparisons: test_pooling_breadth.py.)
"""

import re

import numpy as np
import pytest

import fastcnn
from fastcnn import kernels
from fastcnn.kernels import _common, _dispatch
from fastcnn.tools.gradcheck import numeric_gradient, relative_error

import _helpers as H
from _helpers import FAST_BACKENDS, skip_unless_available
from _pooling_cases import ADAPTIVE, AVG_GEOMS, MAX_GEOMS
from _pooling_cases import geom_id as _geom_id
from _pooling_cases import run_adaptive as _run_adaptive
from _pooling_cases import run_avg as _run_avg
from _pooling_cases import run_max as _run_max

ALL_BACKENDS = [pytest.param("numpy", id="numpy")] + FAST_BACKENDS


@pytest.fixture(params=ALL_BACKENDS)
def any_backend(request):
    skip_unless_available(request.param)
    with fastcnn.use_backend(request.param):
        yield request.param


# ------------------------------------------------------------- gradient checks


def _check_grad(forward, backward, x, rng, h, what):
    out = forward(x)
    dout = rng.standard_normal(out.shape)
    analytic = backward(dout)
    numeric = numeric_gradient(lambda: forward(x), x, dout, h=h)
    err = relative_error(analytic, numeric)
    assert err < H.GRADCHECK_MAX_REL_ERROR, f"{what}: relative error {err:.3g}"


@pytest.mark.parametrize("geom", MAX_GEOMS, ids=_geom_id)
def test_maxpool_backward_matches_central_differences(any_backend, geom, rng):
    _, k, s, p, d, ceil_mode = geom
    x = H.distinct_values(geom[0], rng)   # no ties: the max is differentiable
    state = {}

    def forward(v):
        out, state["cache"] = kernels.maxpool2d_forward(v, k, s, p, d, ceil_mode)
        return out
    _check_grad(forward, lambda g: kernels.maxpool2d_backward(g, state["cache"]), x, rng,
                1e-6, f"maxpool {geom}")


@pytest.mark.parametrize("geom", AVG_GEOMS, ids=_geom_id)
def test_avgpool_backward_matches_central_differences(any_backend, geom, rng):
    _, k, s, p, ceil_mode, include, override = geom
    x = rng.standard_normal(geom[0])
    state = {}

    def forward(v):
        out, state["cache"] = kernels.avgpool2d_forward(v, k, s, p, ceil_mode, include,
                                                        override)
        return out
    _check_grad(forward, lambda g: kernels.avgpool2d_backward(g, state["cache"]), x, rng,
                1e-3, f"avgpool {geom}")


@pytest.mark.parametrize("shape, size", ADAPTIVE)
def test_adaptive_avgpool_backward_matches_central_differences(any_backend, shape, size, rng):
    x = rng.standard_normal(shape)
    state = {}

    def forward(v):
        out, state["cache"] = kernels.adaptive_avgpool2d_forward(v, size)
        return out
    _check_grad(forward, lambda g: kernels.adaptive_avgpool2d_backward(g, state["cache"]),
                x, rng, 1e-3, f"adaptive {shape} -> {size}")


# ------------------------------------------------------------- threads


def _run_everything(backend, threads, dtype):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((6, 8, 11, 10)).astype(dtype)
    results = {}
    with fastcnn.use_backend(backend), fastcnn.use_num_threads(threads):
        for i, geom in enumerate(MAX_GEOMS):
            results.update({f"max{i} {k}": v for k, v in
                            zip(("out", "idx", "dx"), _run_max(x, i, (None,) + geom[1:]))})
        for i, geom in enumerate(AVG_GEOMS):
            results.update({f"avg{i} {k}": v for k, v in
                            zip(("out", "dx"), _run_avg(x, i, (None,) + geom[1:]))})
        for i, (_, size) in enumerate(ADAPTIVE):
            results.update({f"adaptive{i} {k}": v for k, v in
                            zip(("out", "dx"), _run_adaptive(x, i, size))})
        results.update({f"avg2x2 {k}": v for k, v in
                        zip(("out", "dx"), _run_avg(x, 9, (None, 2, 2, 0, False, True, None)))})
    return results


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_pooling_identical_for_1_and_2_threads(fast_backend, dtype, monkeypatch):
    # below GRAIN a backend runs on one thread whatever it is asked: lower it
    _dispatch.backend_module(fast_backend)      # imported (its threading set up) first
    monkeypatch.setattr(_common, "GRAIN", 1)
    one = _run_everything(fast_backend, 1, dtype)
    two = _run_everything(fast_backend, 2, dtype)
    for name in one:
        np.testing.assert_array_equal(one[name], two[name], err_msg=f"{name}: 1 vs 2 threads")


# ------------------------------------------------------------- contracts


def test_maxpool_indices_select_the_output_and_are_a_copy(any_backend, dtype, rng):
    x = rng.integers(-2, 3, (2, 3, 8, 8)).astype(dtype)   # ties everywhere
    for args in ((2,), (3, 2, 1), (2, 2, 0, 2, True)):
        out, cache = kernels.maxpool2d_forward(x, *args)
        idx = kernels.maxpool2d_indices(cache)
        assert idx.dtype == np.int64 and idx.shape == out.shape
        picked = np.take_along_axis(x.reshape(2, 3, -1), idx.reshape(2, 3, -1), axis=2)
        np.testing.assert_array_equal(picked.reshape(out.shape), out)
        idx[...] = 0   # the cache is not touched
        assert not np.array_equal(kernels.maxpool2d_indices(cache), idx)


@pytest.mark.parametrize("op", ["avg", "adaptive"])
def test_avgpool_contracts(any_backend, op, dtype, rng):
    x = rng.standard_normal((2, 3, 7, 6)).astype(dtype)
    x[1, 2, 3, 3] = np.nan

    def run(v):
        if op == "avg":
            out, cache = kernels.avgpool2d_forward(v, 3, 2, 1, True)
            return out, kernels.avgpool2d_backward(np.ones_like(out), cache)
        out, cache = kernels.adaptive_avgpool2d_forward(v, (3, 2))
        return out, kernels.adaptive_avgpool2d_backward(np.ones_like(out), cache)

    out, dx = run(x)
    assert out.dtype == dx.dtype == np.dtype(dtype) and dx.shape == x.shape
    assert np.isnan(out[1, 2]).any() and not np.isnan(out[0]).any()   # NaN stays local
    strided = np.asfortranarray(x)
    readonly = x.copy()
    readonly.flags.writeable = False
    for other in (strided, readonly):
        for a, b in zip(run(other), (out, dx)):
            H.assert_close(a, b, dtype=dtype, kind="exact", what=f"{op} layout")
    empty_out, empty_dx = run(x[:0])
    assert empty_out.shape == (0,) + out.shape[1:] and empty_dx.shape == (0, 3, 7, 6)


def test_batchnorm_training_on_an_empty_batch(any_backend, dtype, rng):
    for shape in ((0, 3, 4, 5), (0, 3)):
        gamma, beta = rng.uniform(0.5, 2, 3).astype(dtype), rng.standard_normal(3).astype(dtype)
        rm, rv = rng.standard_normal(3).astype(dtype), rng.uniform(0.5, 2, 3).astype(dtype)
        rm0, rv0 = rm.copy(), rv.copy()
        x = np.zeros(shape, dtype)
        out, cache = kernels.batchnorm_forward(x, gamma, beta, rm, rv, training=True)
        assert out.shape == shape and out.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(rm, rm0)
        np.testing.assert_array_equal(rv, rv0)
        dx, dgamma, dbeta = kernels.batchnorm_backward(np.zeros(shape, dtype), cache)
        assert dx.shape == shape
        np.testing.assert_array_equal(dgamma, np.zeros(3, dtype))
        np.testing.assert_array_equal(dbeta, np.zeros(3, dtype))


X = np.zeros((2, 3, 6, 7), np.float32)

ERRORS = {
    "max-dilation-0": (lambda: kernels.maxpool2d_forward(X, 2, dilation=0), ValueError,
                       "maxpool2d_forward: dilation must be positive; got 0."),
    "max-ceil-not-bool": (lambda: kernels.maxpool2d_forward(X, 2, ceil_mode=1), TypeError,
                          "maxpool2d_forward: ceil_mode must be a bool; got 1."),
    "max-dilated-too-large": (lambda: kernels.maxpool2d_forward(X, 3, dilation=3), ValueError,
                              "maxpool2d_forward: window 7x7 does not fit the padded input 6x7"),
    "max-padding-only-window": (
        lambda: kernels.maxpool2d_forward(X[:, :, :2, :2], (2, 1), 1, (1, 0), (3, 1)),
        ValueError, "maxpool2d_forward: every window must hold at least one input pixel"),
    "avg-size-missing": (lambda: kernels.avgpool2d_forward(X, 0), ValueError,
                         "avgpool2d_forward: size must be positive; got 0."),
    "avg-divisor-0": (lambda: kernels.avgpool2d_forward(X, 2, divisor_override=0), ValueError,
                      "avgpool2d_forward: divisor_override must be None or a positive int; "
                      "got 0."),
    "avg-include-not-bool": (lambda: kernels.avgpool2d_forward(X, 2, count_include_pad="no"),
                             TypeError, "avgpool2d_forward: count_include_pad must be a bool"),
    "avg-padding-ge-window": (lambda: kernels.avgpool2d_forward(X, 2, 2, 2), ValueError,
                              "avgpool2d_forward: padding must be smaller than the window"),
    "avg-empty-plane": (lambda: kernels.avgpool2d_forward(X[:, :0], 2), ValueError,
                        "avgpool2d_forward: x must have C, H, W >= 1; got x.shape=(2, 0, 6, 7)."),
    "adaptive-size-0": (lambda: kernels.adaptive_avgpool2d_forward(X, (0, 2)), ValueError,
                        "adaptive_avgpool2d_forward: output_size must be positive; got (0, 2)."),
    "adaptive-int-dtype": (lambda: kernels.adaptive_avgpool2d_forward(X.astype(int), 1),
                           TypeError, "adaptive_avgpool2d_forward: x has dtype int64"),
    "indices-wrong-cache": (lambda: kernels.maxpool2d_indices(kernels.avgpool2d_forward(X, 2)[1]),
                            TypeError, "maxpool2d_indices: cache must be the cache returned by "
                            "maxpool2d_forward; got KernelCache from avgpool2d."),
    "avg-backward-adaptive-cache": (
        lambda: kernels.avgpool2d_backward(np.zeros((2, 3, 1, 1), np.float32),
                                           kernels.adaptive_avgpool2d_forward(X, 1)[1]),
        TypeError, "avgpool2d_backward: cache must be the cache returned by avgpool2d_forward"),
}


@pytest.mark.parametrize("name", list(ERRORS))
def test_bad_pooling_argument_raises_pinned_message(name):
    call, error, message = ERRORS[name]
    with pytest.raises(error, match=re.escape(message)):
        call()
