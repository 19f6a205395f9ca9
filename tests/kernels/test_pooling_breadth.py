"""Max pooling with dilation / ceil mode / indices, average and adaptive average pooling:
the reference against naive loops, every fast backend against the reference (grid and
Hypothesis geometry). (Gradient checks, threads, contracts, errors:
test_pooling_contracts.py.)
"""

import math

import numpy as np
import pytest

import fastcnn
from fastcnn import kernels

import _helpers as H
from _helpers import FAST_BACKENDS, skip_unless_available
from _pooling_cases import ADAPTIVE, AVG_GEOMS, MAX_GEOMS
from _pooling_cases import geom_id as _geom_id
from _pooling_cases import run_adaptive as _run_adaptive
from _pooling_cases import run_avg as _run_avg
from _pooling_cases import run_max as _run_max

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
