"""The Numba convolution in blocks of images: small feature maps group ``nb`` consecutive
images per GEMM (``_common.conv_chunk_images``) and sum ``dW`` over fixed runs of blocks.
Checked against the NumPy reference and for bitwise equality on 1 and 2 threads, on
batches that span several blocks with a short last block."""

from __future__ import annotations

import numpy as np
import pytest

from fastcnn import kernels as K
from fastcnn.kernels import _common
from fastcnn.kernels import _dispatch as B
from fastcnn.tools.testing import assert_close

numba_backend = pytest.importorskip("fastcnn.kernels.numba.backend",
                                    reason="Numba is not installed", exc_type=ImportError)


def _conv_all(backend, threads, x, w, b, stride, padding, dilation=1, groups=1, need_dx=True):
    """Forward and backward on ``backend`` with ``threads`` threads: (out, dx, dw, db)."""
    with B.use_backend(backend), B.use_num_threads(threads):
        out, cache = K.conv2d_forward(x, w, b, stride, padding, dilation, groups)
        dout = np.random.default_rng(1).standard_normal(out.shape).astype(x.dtype)
        dx, dw, db = K.conv2d_backward(dout, cache, need_dx=need_dx)
    return out, dx, dw, db


# (x shape, w shape, stride, padding, dilation, groups, images per block)
CASES = [
    ((50, 3, 5, 5), (6, 3, 3, 3), 1, 1, 1, 1, 6),           # 9 blocks, the last of 2
    ((13, 4, 8, 8), (6, 2, 3, 3), 1, 1, 2, 2, 4),           # grouped, dilated: 4+4+4+1
    ((23, 3, 9, 8), (4, 3, 3, 2), (2, 1), ((1, 0), (0, 1)), 1, 1, 4),   # strided, uneven pad
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES, ids=["remainder", "grouped", "strided"])
def test_blocked_conv_matches_reference_and_is_thread_independent(case, dtype, rng,
                                                                  monkeypatch):
    xs, ws, stride, padding, dilation, groups, nb = case
    monkeypatch.setattr(_common, "GRAIN", 1)         # really split these small shapes
    x = rng.standard_normal(xs).astype(dtype)
    w = rng.standard_normal(ws).astype(dtype)
    b = rng.standard_normal(ws[0]).astype(dtype)
    g = K._window_geometry("t", xs, ws[2], ws[3], stride, padding, dilation=dilation)
    assert _common.conv_chunk_images(g, ws[0], x.itemsize) == nb
    assert xs[0] % nb != 0                           # a short last block
    args = (x, w, b, stride, padding, dilation, groups)
    ref = _conv_all("numpy", 1, *args)
    one = _conv_all("numba", 1, *args)
    two = _conv_all("numba", 2, *args)
    for name, r, a, c in zip(("out", "dx", "dw", "db"), ref, one, two):
        assert_close(a, r, dtype=dtype)              # the central tolerance table
        np.testing.assert_array_equal(a, c, err_msg=f"{name}: 1 vs 2 threads")


@pytest.mark.parametrize("runs", [1, 3, 8])
def test_dw_runs_partition_changes_nothing_but_the_order(runs, rng, monkeypatch):
    # 9 blocks cut into 1, 3 (3 blocks each) or 8 runs (1-2 blocks each); without dx only
    # dw and db.
    monkeypatch.setattr(_common, "CONV_DW_RUNS", runs)
    x = rng.standard_normal((50, 3, 5, 5))
    w = rng.standard_normal((6, 3, 3, 3))
    b = rng.standard_normal(6)
    ref = _conv_all("numpy", 1, x, w, b, 1, 1)
    got = _conv_all("numba", 2, x, w, b, 1, 1, need_dx=False)
    assert got[1] is None
    for r, a in zip(ref[2:], got[2:]):
        assert_close(a, r, dtype=np.float64)


def test_dw_runs_partition_is_fixed_and_covers_every_block(monkeypatch):
    monkeypatch.setattr(_common, "CONV_DW_RUNS", 3)
    assert _common.conv_dw_runs(5) == [(0, 1), (1, 3), (3, 5)]
    assert _common.conv_dw_runs(2) == [(0, 1), (1, 2)]
    assert _common.conv_dw_runs(1) == [(0, 1)]


def test_large_feature_maps_and_pointwise_keep_one_image_per_block(rng):
    big = K._window_geometry("t", (8, 3, 12, 12), 3, 3, 1, 1)      # 144 columns already
    assert _common.conv_chunk_images(big, 4, 4) == 1
    pointwise = K._window_geometry("t", (8, 3, 4, 4), 1, 1, 1, 0)
    assert _common.conv_chunk_images(pointwise, 4, 4) == 1
    small = K._window_geometry("t", (9, 3, 4, 4), 3, 3, 1, 1)      # 16 columns: 8 of 9
    assert _common.conv_chunk_images(small, 4, 4) == 8


def test_block_budget_limits_the_images_per_block(rng, monkeypatch):
    # (C*KH*KW + F) * P * itemsize = (27 + 6) * 25 * 8 = 6600 bytes per image: 2 fit.
    monkeypatch.setattr(_common, "CONV_BLOCK_BYTES", 2 * 6600)
    x = rng.standard_normal((7, 3, 5, 5))
    w = rng.standard_normal((6, 3, 3, 3))
    b = rng.standard_normal(6)
    g = K._window_geometry("t", x.shape, 3, 3, 1, 1)
    assert _common.conv_chunk_images(g, 6, 8) == 2
    for r, a in zip(_conv_all("numpy", 1, x, w, b, 1, 1), _conv_all("numba", 2, x, w, b, 1, 1)):
        assert_close(a, r, dtype=np.float64)
