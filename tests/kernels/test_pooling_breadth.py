"""Max pooling with dilation / ceil mode / indices, average and adaptive average pooling,
and batch norm on an empty training batch: the reference against naive loops, every
fast backend against the reference (grid and Hypothesis geometry), gradient checks,
bitwise 1 vs 2 threads, the kernel contracts and the pinned error messages.
"""

import math
import re

import numpy as np
import pytest

import fastcnn
from fastcnn import kernels
from fastcnn.kernels import _dispatch
from fastcnn.tools.gradcheck import numeric_gradient, relative_error

import _helpers as H
from _helpers import FAST_BACKENDS, skip_unless_available

ALL_BACKENDS = [pytest.param("numpy", id="numpy")] + FAST_BACKENDS


@pytest.fixture(params=ALL_BACKENDS)
def any_backend(request):
    skip_unless_available(request.param)
    with fastcnn.use_backend(request.param):
        yield request.param


# ------------------------------------------------------------------ naive oracles


def _count(size, k, s, p, d, ceil_mode):
    """Output size straight from PyTorch's documentation formula."""
    span = (size + 2 * p - d * (k - 1) - 1) / s
    count = (math.ceil(span) if ceil_mode else math.floor(span)) + 1
    if ceil_mode and (count - 1) * s >= size + p:
        count -= 1
    return count


def naive_maxpool(x, k, s, p, d, ceil_mode):
    """Every output, every tap, in row-major order; ties: first max; padding skipped."""
    n_, c_, h_, w_ = x.shape
    oh, ow = _count(h_, k, s, p, d, ceil_mode), _count(w_, k, s, p, d, ceil_mode)
    out = np.zeros((n_, c_, oh, ow), x.dtype)
    idx = np.zeros((n_, c_, oh, ow), np.int64)
    for n, c, i, j in np.ndindex(n_, c_, oh, ow):
        best, where = None, -1
        for a in range(k):
            for b in range(k):
                r, q = i * s - p + a * d, j * s - p + b * d
                if 0 <= r < h_ and 0 <= q < w_ and (best is None or x[n, c, r, q] > best):
                    best, where = x[n, c, r, q], r * w_ + q
        out[n, c, i, j], idx[n, c, i, j] = best, where
    return out, idx


def naive_avgpool(x, k, s, p, ceil_mode, count_include_pad, divisor_override):
    """PyTorch's avg_pool2d definition, one output at a time."""
    n_, c_, h_, w_ = x.shape
    oh, ow = _count(h_, k, s, p, 1, ceil_mode), _count(w_, k, s, p, 1, ceil_mode)
    out = np.zeros((n_, c_, oh, ow), x.dtype)
    for n, c, i, j in np.ndindex(n_, c_, oh, ow):
        r0, q0 = i * s - p, j * s - p
        r1, q1 = min(r0 + k, h_ + p), min(q0 + k, w_ + p)   # padded window, clipped
        padded = (r1 - r0) * (q1 - q0)
        total, real = 0.0, 0
        for r in range(max(r0, 0), min(r1, h_)):
            for q in range(max(q0, 0), min(q1, w_)):
                total += x[n, c, r, q]
                real += 1
        divisor = divisor_override or (padded if count_include_pad else real)
        out[n, c, i, j] = total / divisor
    return out


def naive_adaptive(x, oh, ow):
    n_, c_, h_, w_ = x.shape
    out = np.zeros((n_, c_, oh, ow), x.dtype)
    for n, c, i, j in np.ndindex(n_, c_, oh, ow):
        r0, r1 = (i * h_) // oh, math.ceil((i + 1) * h_ / oh)
        q0, q1 = (j * w_) // ow, math.ceil((j + 1) * w_ / ow)
        out[n, c, i, j] = x[n, c, r0:r1, q0:q1].mean()
    return out


MAX_GEOMS = [  # x shape, size, stride, padding, dilation, ceil_mode
    ((2, 3, 7, 7), 2, 2, 0, 1, True),
    ((2, 2, 7, 8), 3, 2, 1, 1, True),
    ((1, 2, 9, 9), 3, 1, 1, 2, False),
    ((2, 2, 10, 9), 2, 3, 1, 3, True),
    ((1, 3, 6, 11), 3, 2, 0, 2, True),
    ((1, 1, 5, 5), 2, 2, 1, 1, True),
]

AVG_GEOMS = [  # x shape, size, stride, padding, ceil_mode, count_include_pad, divisor_override
    ((2, 3, 8, 8), 2, 2, 0, False, True, None),
    ((2, 2, 7, 7), 2, 2, 0, True, True, None),
    ((2, 2, 7, 9), 3, 2, 1, True, True, None),
    ((2, 2, 7, 9), 3, 2, 1, True, False, None),
    ((1, 2, 6, 5), 3, 1, 1, False, False, None),
    ((1, 2, 6, 7), 2, 2, 1, True, True, 3),
    ((2, 1, 9, 9), 4, 3, 2, True, False, None),
]

ADAPTIVE = [((2, 3, 7, 9), (3, 4)), ((2, 2, 8, 8), 1), ((1, 2, 5, 6), (5, 6)),
            ((1, 2, 4, 5), (7, 3)), ((2, 2, 10, 7), (4, None))]


def _geom_id(g):
    return "-".join(str(v) for v in g[1:])


@pytest.mark.parametrize("geom", MAX_GEOMS, ids=_geom_id)
def test_reference_maxpool_matches_naive_loops(geom, rng):
    shape, k, s, p, d, ceil_mode = geom
    x = rng.integers(-3, 4, shape).astype(np.float64)   # small ints: many ties
    with fastcnn.use_backend("numpy"):
        out, cache = kernels.maxpool2d_forward(x, k, s, p, d, ceil_mode)
    want, idx = naive_maxpool(x, k, s, p, d, ceil_mode)
    np.testing.assert_array_equal(out, want)
    np.testing.assert_array_equal(kernels.maxpool2d_indices(cache), idx)


@pytest.mark.parametrize("geom", AVG_GEOMS, ids=_geom_id)
def test_reference_avgpool_matches_naive_loops(geom, rng):
    shape, k, s, p, ceil_mode, include, override = geom
    x = rng.standard_normal(shape)
    with fastcnn.use_backend("numpy"):
        out, _ = kernels.avgpool2d_forward(x, k, s, p, ceil_mode, include, override)
    H.assert_close(out, naive_avgpool(x, k, s, p, ceil_mode, include, override),
                   kind="oracle", what="avgpool")


@pytest.mark.parametrize("shape, size", ADAPTIVE)
def test_reference_adaptive_avgpool_matches_naive_loops(shape, size, rng):
    x = rng.standard_normal(shape)
    with fastcnn.use_backend("numpy"):
        out, _ = kernels.adaptive_avgpool2d_forward(x, size)
    oh, ow = (size, size) if isinstance(size, int) else size
    ow = shape[3] if ow is None else ow
    H.assert_close(out, naive_adaptive(x, oh, ow), kind="oracle", what="adaptive")


# ------------------------------------------------------------- fast vs reference


def _run_max(x, dout_seed, geom):
    _, k, s, p, d, ceil_mode = geom
    out, cache = kernels.maxpool2d_forward(x, k, s, p, d, ceil_mode)
    dout = np.random.default_rng(dout_seed).standard_normal(out.shape).astype(x.dtype)
    return out, kernels.maxpool2d_indices(cache), kernels.maxpool2d_backward(dout, cache)


def _run_avg(x, dout_seed, geom):
    _, k, s, p, ceil_mode, include, override = geom
    out, cache = kernels.avgpool2d_forward(x, k, s, p, ceil_mode, include, override)
    dout = np.random.default_rng(dout_seed).standard_normal(out.shape).astype(x.dtype)
    return out, kernels.avgpool2d_backward(dout, cache)


def _run_adaptive(x, dout_seed, size):
    out, cache = kernels.adaptive_avgpool2d_forward(x, size)
    dout = np.random.default_rng(dout_seed).standard_normal(out.shape).astype(x.dtype)
    return out, kernels.adaptive_avgpool2d_backward(dout, cache)


@pytest.mark.parametrize("geom", MAX_GEOMS, ids=_geom_id)
def test_fast_maxpool_equals_reference(fast_backend, geom, dtype, rng):
    x = rng.integers(-3, 4, geom[0]).astype(dtype)
    with fastcnn.use_backend("numpy"):
        want = _run_max(x, 1, geom)
    with fastcnn.use_backend(fast_backend):
        got = _run_max(x, 1, geom)
    for name, a, b in zip(("out", "indices", "dx"), got, want):
        kind = "exact" if name != "dx" or geom[2] >= geom[1] * geom[4] else "sum"
        H.assert_close(a, b, dtype=dtype, kind=kind, what=f"maxpool {name}")


@pytest.mark.parametrize("geom", AVG_GEOMS, ids=_geom_id)
def test_fast_avgpool_equals_reference(fast_backend, geom, dtype, rng):
    x = rng.standard_normal(geom[0]).astype(dtype)
    with fastcnn.use_backend("numpy"):
        want = _run_avg(x, 1, geom)
    with fastcnn.use_backend(fast_backend):
        got = _run_avg(x, 1, geom)
    for name, a, b in zip(("out", "dx"), got, want):
        H.assert_close(a, b, dtype=dtype, kind="sum", what=f"avgpool {name}")


@pytest.mark.parametrize("shape, size", ADAPTIVE)
def test_fast_adaptive_avgpool_equals_reference(fast_backend, shape, size, dtype, rng):
    x = rng.standard_normal(shape).astype(dtype)
    with fastcnn.use_backend("numpy"):
        want = _run_adaptive(x, 1, size)
    with fastcnn.use_backend(fast_backend):
        got = _run_adaptive(x, 1, size)
    for name, a, b in zip(("out", "dx"), got, want):
        H.assert_close(a, b, dtype=dtype, kind="sum", what=f"adaptive {name}")


def test_avgpool_2x2_tiles_with_odd_edges(fast_backend, dtype, rng):
    # the C kernel's 2x2/2 row path, with an odd last row and column in no window
    x = rng.standard_normal((3, 4, 9, 11)).astype(dtype)
    dout = rng.standard_normal((3, 4, 4, 5)).astype(dtype)
    results = {}
    for backend in ("numpy", fast_backend):
        with fastcnn.use_backend(backend):
            out, cache = kernels.avgpool2d_forward(x, 2)
            results[backend] = out, kernels.avgpool2d_backward(dout, cache)
    for a, b in zip(results[fast_backend], results["numpy"]):
        H.assert_close(a, b, dtype=dtype, kind="sum", what="avgpool 2x2")
    assert np.all(results[fast_backend][1][:, :, 8, :] == 0)
    assert np.all(results[fast_backend][1][:, :, :, 10] == 0)


@pytest.mark.parametrize("size, stride", [(2, 2), (3, 2)], ids=["2x2-tiles", "3x3s2"])
def test_avgpool_fast_backends_agree_bitwise(size, stride, dtype, rng):
    # both add a window's pixels row by row from 0 and divide once: the same bits
    for name in ("cython", "numba"):
        skip_unless_available(name)
    x = rng.standard_normal((2, 3, 9, 11)).astype(dtype)
    results = []
    for name in ("cython", "numba"):
        with fastcnn.use_backend(name):
            out, cache = kernels.avgpool2d_forward(x, size, stride, 1 if size == 3 else 0)
            results.append((out, kernels.avgpool2d_backward(out + 1, cache)))
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------- Hypothesis geometry

hypothesis = pytest.importorskip("hypothesis", reason="property tests need hypothesis")
st = hypothesis.strategies


@st.composite
def pool_geometry(draw, dilated=True):
    k = draw(st.integers(1, 4))
    d = draw(st.integers(1, 3)) if dilated else 1
    p = draw(st.integers(0, k // 2))
    s = draw(st.integers(1, 3))
    extent = d * (k - 1) + 1
    h = draw(st.integers(max(1, extent - 2 * p), 12))
    w = draw(st.integers(max(1, extent - 2 * p), 12))
    return (draw(st.integers(0, 2)), draw(st.integers(1, 3)), h, w), k, s, p, d, \
        draw(st.booleans())


def _valid(call):
    """Run ``call`` or return None when validation refuses the geometry (a window that
    holds padding only); any other error propagates."""
    try:
        return call()
    except ValueError as err:
        if "every window must hold" in str(err):
            return None
        raise


@pytest.mark.parametrize("backend", FAST_BACKENDS)
@hypothesis.given(geom=pool_geometry(), seed=st.integers(0, 2**16))
def test_property_fast_maxpool_equals_reference(backend, geom, seed):
    skip_unless_available(backend)
    x = np.random.default_rng(seed).integers(-2, 3, geom[0]).astype(np.float32)
    with fastcnn.use_backend("numpy"):
        want = _valid(lambda: _run_max(x, seed, geom))
    if want is None:
        return
    with fastcnn.use_backend(backend):
        got = _run_max(x, seed, geom)
    for a, b in zip(got, want):
        H.assert_close(a, b, dtype=np.float32, kind="sum", what=f"maxpool {geom}")
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])


@pytest.mark.parametrize("backend", FAST_BACKENDS)
@hypothesis.given(geom=pool_geometry(dilated=False), seed=st.integers(0, 2**16),
                  include=st.booleans(), override=st.sampled_from([None, 1, 5]))
def test_property_fast_avgpool_equals_reference(backend, geom, seed, include, override):
    skip_unless_available(backend)
    shape, k, s, p, _, ceil_mode = geom
    avg_geom = (shape, k, s, p, ceil_mode, include, override)
    x = np.random.default_rng(seed).standard_normal(shape)
    with fastcnn.use_backend("numpy"):
        want = _run_avg(x, seed, avg_geom)
    with fastcnn.use_backend(backend):
        got = _run_avg(x, seed, avg_geom)
    for a, b in zip(got, want):
        H.assert_close(a, b, dtype=np.float64, kind="sum", what=f"avgpool {avg_geom}")


@pytest.mark.parametrize("backend", FAST_BACKENDS)
@hypothesis.given(shape=st.tuples(st.integers(0, 2), st.integers(1, 3), st.integers(1, 12),
                                  st.integers(1, 12)),
                  size=st.tuples(st.integers(1, 13), st.integers(1, 13)),
                  seed=st.integers(0, 2**16))
def test_property_fast_adaptive_avgpool_equals_reference(backend, shape, size, seed):
    skip_unless_available(backend)
    x = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    with fastcnn.use_backend("numpy"):
        want = _run_adaptive(x, seed, size)
    with fastcnn.use_backend(backend):
        got = _run_adaptive(x, seed, size)
    for a, b in zip(got, want):
        H.assert_close(a, b, dtype=np.float32, kind="sum", what=f"adaptive {shape} -> {size}")


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
    monkeypatch.setattr(_dispatch.backend_module(fast_backend), "GRAIN", 1)
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
