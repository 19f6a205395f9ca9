"""``conv2d_backward(dout, cache, need_dx=False)``: dx is skipped (None) and dw, db are
bitwise the gradients of the full backward, on every backend and on every conv path
(general im2col, 1x1, padded/strided, several images per block)."""

from __future__ import annotations

import numpy as np
import pytest
from _helpers import FAST_BACKENDS, skip_unless_available

from fastcnn import kernels as K
from fastcnn.kernels import _dispatch as B


@pytest.fixture(params=[pytest.param("numpy", id="numpy")] + FAST_BACKENDS)
def any_backend(request):
    skip_unless_available(request.param)
    return request.param

# (x shape, w shape, stride, padding, bias): general, strided+padded, 1x1, asymmetric pad
CASES = [
    ((3, 4, 7, 6), (5, 4, 3, 3), 1, 1, True),
    ((2, 3, 9, 9), (4, 3, 5, 5), 2, 2, False),
    ((4, 6, 5, 5), (7, 6, 1, 1), 1, 0, True),
    ((5, 2, 8, 8), (3, 2, 4, 4), 2, ((1, 2), (1, 2)), True),
    ((1, 3, 20, 20), (2, 3, 3, 3), 1, 1, True),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"x{c[0]}-w{c[1]}-s{c[2]}-p{c[3]}")
def test_need_dx_false_skips_dx_and_keeps_dw_db(any_backend, case, dtype, rng):
    x_shape, w_shape, stride, padding, bias = case
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype) if bias else None
    with B.use_backend(any_backend):
        out, cache = K.conv2d_forward(x, w, b, stride, padding)
        dout = rng.standard_normal(out.shape).astype(dtype)
        dx_full, dw_full, db_full = K.conv2d_backward(dout, cache)
        dx, dw, db = K.conv2d_backward(dout, cache, need_dx=False)
        _, dw_np, _ = K.conv2d_backward(dout, cache, need_dx=np.bool_(False))
    assert dx_full is not None and dx_full.shape == x_shape
    assert dx is None
    np.testing.assert_array_equal(dw, dw_full)
    np.testing.assert_array_equal(dw_np, dw_full)
    assert dw.dtype == dtype
    if bias:
        np.testing.assert_array_equal(db, db_full)
    else:
        assert db is None and db_full is None


def test_need_dx_default_and_explicit_true_agree(any_backend, rng):
    x = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    with B.use_backend(any_backend):
        out, cache = K.conv2d_forward(x, w, None, 1, 1)
        dout = np.ones_like(out)
        a = K.conv2d_backward(dout, cache)
        b = K.conv2d_backward(dout, cache, need_dx=True)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def test_need_dx_empty_batch(any_backend):
    x = np.zeros((0, 2, 5, 5), dtype=np.float32)
    w = np.ones((3, 2, 3, 3), dtype=np.float32)
    with B.use_backend(any_backend):
        out, cache = K.conv2d_forward(x, w, np.zeros(3, np.float32))
        dx, dw, db = K.conv2d_backward(out, cache, need_dx=False)
    assert dx is None
    np.testing.assert_array_equal(dw, np.zeros_like(w))
    np.testing.assert_array_equal(db, np.zeros(3, np.float32))


@pytest.mark.parametrize("bad", [0, 1, None, "no", 1.0, [False]])
def test_need_dx_must_be_a_bool(bad):
    x = np.ones((1, 1, 4, 4), dtype=np.float32)
    w = np.ones((1, 1, 3, 3), dtype=np.float32)
    with B.use_backend("numpy"):
        out, cache = K.conv2d_forward(x, w, None)
    with pytest.raises(TypeError, match=r"conv2d_backward: need_dx must be a bool; got "):
        K.conv2d_backward(out, cache, need_dx=bad)
