"""Checks specific to the compiled ("cython") backend: the build switches, the bounded
conv workspace, the 1x1 fast path, the chunked conv, read-only inputs, NaN handling and
bitwise determinism across thread counts. Comparisons with the reference across the shape
grid live in test_backend_vs_reference.py; these cover what only the C/Cython code has."""

from __future__ import annotations

import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from fastcnn.kernels import _common
from fastcnn import kernels as K
from fastcnn.kernels import _dispatch as B
from fastcnn.kernels.geometry import is_pointwise
from fastcnn.tools.testing import assert_close

ROOT = Path(__file__).resolve().parents[2]

cython_backend = pytest.importorskip(
    "fastcnn.kernels.cython.backend", reason="compiled extension not built",
    exc_type=ImportError,
)
pytestmark = pytest.mark.requires_cython



def _conv_both(x, w, b, stride, padding, dout_seed=1):
    results = {}
    for name in ("numpy", "cython"):
        with B.use_backend(name):
            out, cache = K.conv2d_forward(x, w, b, stride, padding)
            dout = np.random.default_rng(dout_seed).standard_normal(out.shape).astype(x.dtype)
            results[name] = (out, *K.conv2d_backward(dout, cache))
    return results["numpy"], results["cython"]


def test_backend_info_reports_openmp():
    info = cython_backend.backend_info()
    assert isinstance(info["openmp"], bool)
    assert info["max_threads"] >= 1


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv_1x1_path_matches_reference(dtype, rng):
    x = rng.standard_normal((5, 7, 6, 9)).astype(dtype)
    w = rng.standard_normal((70, 7, 1, 1)).astype(dtype)   # > one GEMM column block of dw
    b = rng.standard_normal(70).astype(dtype)
    g = K._window_geometry("t", x.shape, 1, 1, 1, 0)
    assert is_pointwise(g)
    for ref, got in zip(*_conv_both(x, w, b, 1, 0)):
        assert_close(got, ref, dtype=dtype)   # the central tolerance table


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv_one_image_blocks_matches_reference(dtype, rng, monkeypatch):
    # A tiny block budget forces one image per block: the GEMMs then write out[n] and read
    # dout[n] directly, and dw sums 7 runs of one image each.
    monkeypatch.setattr(cython_backend, "BLOCK_BYTES", 1)
    x = rng.standard_normal((7, 3, 9, 8)).astype(dtype)
    w = rng.standard_normal((4, 3, 3, 2)).astype(dtype)
    b = rng.standard_normal(4).astype(dtype)
    g = K._window_geometry("t", x.shape, 3, 2, (2, 1), ((1, 0), (0, 1)))
    assert cython_backend.conv_chunk_images(g, 4, x.dtype.itemsize) == 1
    for ref, got in zip(*_conv_both(x, w, b, (2, 1), ((1, 0), (0, 1)))):
        assert_close(got, ref, dtype=dtype)   # the central tolerance table


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("max_runs", [1, 3, 8])
def test_conv_multi_image_blocks_and_runs_match_reference(dtype, max_runs, rng, monkeypatch):
    # 5x5 outputs: 6 images per block; N = 50 -> 9 blocks, the last one short; with
    # max_runs 3 the runs hold 3 blocks (dw accumulates with beta = 1).
    monkeypatch.setattr(cython_backend, "MAX_RUNS", max_runs)
    x = rng.standard_normal((50, 3, 5, 5)).astype(dtype)
    w = rng.standard_normal((6, 3, 3, 3)).astype(dtype)
    b = rng.standard_normal(6).astype(dtype)
    g = K._window_geometry("t", x.shape, 3, 3, 1, 1)
    assert cython_backend.conv_chunk_images(g, 6, x.dtype.itemsize) == 6
    for ref, got in zip(*_conv_both(x, w, b, 1, 1)):
        assert_close(got, ref, dtype=dtype)   # the central tolerance table


def test_conv_workspace_is_reused(rng):
    x = rng.standard_normal((4, 3, 8, 8)).astype(np.float32)
    w = rng.standard_normal((5, 3, 3, 3)).astype(np.float32)
    with B.use_backend("cython"):
        K.conv2d_forward(x, w, None, 1, 1)
        first = cython_backend._workspaces.take("conv_work", 1, np.float32)
        cython_backend._workspaces.give("conv_work", first)
        K.conv2d_forward(x, w, None, 1, 1)
        assert cython_backend._workspaces.take("conv_work", 1, np.float32) is first


def test_conv_workspace_does_not_grow_with_batch(rng):
    """Peak extra memory of forward+backward (beyond inputs and outputs) stays within the
    budget for N = 2 and N = 32: no whole-batch column matrix."""
    w = rng.standard_normal((8, 16, 3, 3)).astype(np.float32)
    b = np.zeros(8, np.float32)
    budget = 2 * cython_backend.BLOCK_BYTES   # two threads' slots; the dw partials are tiny
    for n in (2, 32):
        x = rng.standard_normal((n, 16, 64, 64)).astype(np.float32)
        whole_batch_cols = 16 * 9 * n * 64 * 64 * 4
        with B.use_backend("cython"), B.use_num_threads(2):
            tracemalloc.start()
            out, cache = K.conv2d_forward(x, w, b, 1, 1)
            dx, dw, db = K.conv2d_backward(out, cache)
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
        results = out.nbytes + dx.nbytes + dw.nbytes + db.nbytes
        assert peak - results <= budget + 2**20, (n, peak, results)
        if n == 32:
            assert whole_batch_cols > 4 * budget   # the test would catch a full cols matrix


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bitwise_identical_for_1_and_2_threads(dtype, rng, monkeypatch):
    monkeypatch.setattr(_common, "GRAIN", 0)   # small shapes: really use 2 threads
    x = rng.standard_normal((11, 16, 18, 18)).astype(dtype)
    w3 = rng.standard_normal((24, 16, 3, 3)).astype(dtype)
    w1 = rng.standard_normal((80, 16, 1, 1)).astype(dtype)

    def run():
        res = []
        with B.use_backend("cython"):
            for w, s, p in ((w3, 1, 1), (w3, 2, 0), (w1, 1, 0)):
                out, cache = K.conv2d_forward(x, w, np.ones(w.shape[0], dtype), s, p)
                res += [out, *K.conv2d_backward(out * 0.5 + 1, cache)]
            out, cache = K.maxpool2d_forward(x, 3, 2, 1)
            res += [out, cache.data[0], K.maxpool2d_backward(out, cache)]
            out, cache = K.maxpool2d_forward(x, 2)       # the 2x2/2 kernels (int8 codes)
            res += [out, cache.data[0], K.maxpool2d_backward(out, cache)]
            for xx in (x, x.reshape(11 * 4, -1)):
                cc = xx.shape[1]
                out, cache = K.batchnorm_forward(xx, np.ones(cc, dtype), np.zeros(cc, dtype),
                                                 np.zeros(cc, dtype), np.ones(cc, dtype))
                res += [out, *K.batchnorm_backward(out * 1.5, cache)]
            res.append(K.im2col(x, 3, 3, 1, 1))
            res.append(K.col2im(res[-1], x.shape, 3, 3, 1, 1))
        return res

    with B.use_num_threads(1):
        one = run()
    with B.use_num_threads(2):
        two = run()
    for i, (a, b) in enumerate(zip(one, two)):
        np.testing.assert_array_equal(a, b, err_msg=f"result {i}")


def test_readonly_inputs_work(rng):
    x = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    for a in (x, w, b):
        a.setflags(write=False)
    with B.use_backend("cython"):
        out, cache = K.conv2d_forward(x, w, b, 1, 1)
        K.conv2d_backward(np.ones_like(out), cache)
        K.maxpool2d_forward(x, 2)
        g = np.ones(3, np.float32)
        g.setflags(write=False)
        K.batchnorm_forward(x, g, g, g, g, training=False)


def test_maxpool_nan_and_ties():
    x = np.array([[[[1.0, 3.0, 3.0, 0.0],
                    [np.nan, 3.0, 2.0, 1.0],
                    [-np.inf, -np.inf, 5.0, 5.0],
                    [-np.inf, -np.inf, 1.0, 1.0]]]], dtype=np.float32)
    # NaN after a number wins; -inf-only window picks its first pixel; ties -> first
    with B.use_backend("cython"):
        out, cache = K.maxpool2d_forward(x, 2)
    np.testing.assert_array_equal(out[0, 0], [[np.nan, 3.0], [-np.inf, 5.0]])
    assert cache.data[0].dtype == np.int8            # the 2x2/2 path keeps 1-byte codes
    np.testing.assert_array_equal(cache.data[0][0, 0], [[2, 0], [0, 0]])
    np.testing.assert_array_equal(cython_backend.maxpool_argmax(cache.data)[0, 0],
                                  [[4, 2], [8, 10]])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_empty_batch(dtype):
    x = np.zeros((0, 3, 5, 5), dtype)
    w = np.ones((2, 3, 3, 3), dtype)
    with B.use_backend("cython"):
        for ww in (w, w[:, :, :1, :1].copy()):
            out, cache = K.conv2d_forward(x, ww, None, 1, 0)
            dx, dw, _ = K.conv2d_backward(out, cache)
            assert dx.shape == x.shape and not dw.any()
        out, cache = K.maxpool2d_forward(x, 2)
        assert K.maxpool2d_backward(out, cache).shape == x.shape
        ones = np.ones(3, dtype)
        out, cache = K.batchnorm_forward(x, ones, ones, ones, ones, training=False)
        dx, dgamma, dbeta = K.batchnorm_backward(out, cache)
        assert dx.shape == x.shape and not dgamma.any() and not dbeta.any()


@pytest.mark.slow
def test_no_extension_build_installs_pure_python(tmp_path):
    """FASTCNN_NO_EXTENSION=1 builds no extension: a wheel with no compiled module."""
    env = dict(os.environ, FASTCNN_NO_EXTENSION="1")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "-w", str(tmp_path), str(ROOT)],
        env=env, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    wheels = list(tmp_path.glob("fastcnn-*.whl"))
    assert len(wheels) == 1 and wheels[0].name.endswith("-py3-none-any.whl"), wheels


def test_small_work_runs_on_one_thread():
    with B.use_num_threads(2):
        assert _common.threads_for(_common.GRAIN - 1) == 1
        assert _common.threads_for(_common.GRAIN) == 2
        assert _common.threads_for() == 2
        assert _common.threads_for(limit=1) == 1


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("size,stride,padding,hw", [(2, 2, 0, (8, 10)), (2, 2, 0, (7, 9)),
                                                     (2, 2, 0, (3, 600)), (2, 2, 0, (2, 2)),
                                                     (3, 2, 1, (9, 8)), (3, 1, 1, (5, 6))])
def test_maxpool_fast_paths_match_reference_with_nan_and_ties(dtype, size, stride, padding, hw,
                                                              rng):
    # integers make ties common; NaN and -inf are sprinkled in (the select-based loops
    # redo a window that holds a NaN with the full rule: first NaN wins)
    x = rng.integers(-3, 3, (3, 2) + hw).astype(dtype)
    x[rng.random(x.shape) < 0.05] = np.nan
    x[rng.random(x.shape) < 0.05] = -np.inf
    res = {}
    for name in ("numpy", "cython"):
        with B.use_backend(name):
            out, cache = K.maxpool2d_forward(x, size, stride, padding)
            dx = K.maxpool2d_backward(np.arange(out.size, dtype=dtype).reshape(out.shape), cache)
            argmax = (cython_backend.maxpool_argmax(cache.data) if name == "cython"
                      else cache.data[0])
            res[name] = (out, argmax, dx)
    np.testing.assert_array_equal(res["cython"][0], res["numpy"][0])
    np.testing.assert_array_equal(res["cython"][1], res["numpy"][1])
    np.testing.assert_array_equal(res["cython"][2], res["numpy"][2])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_maxpool2x2_backward_signed_zero_and_specials_as_reference(dtype, rng):
    # the write-only 2x2 backward gives the winner 0 + dy: -0.0 -> +0.0, NaN/inf kept, as
    # the reference's zero-fill + add
    x = rng.standard_normal((2, 3, 6, 7)).astype(dtype)
    dout = np.array([-0.0, 0.0, np.nan, -np.inf, 1.5, -2.0], dtype)[
        rng.integers(0, 6, (2, 3, 3, 3))]
    res = {}
    for name in ("numpy", "cython"):
        with B.use_backend(name):
            out, cache = K.maxpool2d_forward(x, 2)
            res[name] = K.maxpool2d_backward(dout, cache)
    np.testing.assert_array_equal(res["cython"], res["numpy"])
    assert np.array_equal(np.signbit(res["cython"]), np.signbit(res["numpy"]))
