"""Both convolution algorithms of the compiled backend equal the NumPy reference.

The compiled backend runs a 3x3 stride-1 convolution either by blocked im2col + GEMM (the
simple version) or by Winograd F(2x2, 3x3) (csrc/fc_winograd_impl.h: forward and dx; dW
stays on im2col). ``set_conv_algorithm`` forces one, so each is checked on its own against
the reference at the central tolerances, on geometries that hit the transforms' edges:
odd sizes (cropped last tiles), every padding 0..2 (dx then reads dout with padding
2 - pad), asymmetric padding, planes smaller than a tile, rows wider than one chunk of
tiles, several blocks with a short last one, and dx skipped.
"""

import numpy as np
import pytest

from fastcnn import kernels as K
from fastcnn.kernels import _common
from fastcnn.kernels import _dispatch as B
from fastcnn.tools.testing import assert_close

cython_backend = pytest.importorskip(
    "fastcnn.kernels.cython.backend", reason="compiled extension not built",
    exc_type=ImportError,
)
pytestmark = pytest.mark.requires_cython

ALGORITHMS = ["im2col", "winograd"]

# (N, C, F, H, W, padding): 3x3, stride 1
GEOMETRIES = [
    pytest.param(3, 4, 5, 7, 6, 1, id="odd-same"),
    pytest.param(2, 3, 2, 8, 9, 0, id="valid"),
    pytest.param(2, 2, 3, 5, 5, 2, id="pad2"),
    pytest.param(2, 3, 4, 6, 5, ((1, 0), (2, 1)), id="asymmetric"),
    pytest.param(3, 2, 2, 1, 2, 1, id="smaller-than-a-tile"),
    pytest.param(1, 2, 3, 3, 131, 1, id="wider-than-a-chunk"),
    pytest.param(9, 17, 16, 16, 16, 1, id="16x16-17-channels"),
]


@pytest.fixture
def algorithm(request):
    previous = cython_backend.set_conv_algorithm(request.param)
    yield request.param
    cython_backend.set_conv_algorithm(previous)


def _forward_backward(name, x, w, b, padding, dout, need_dx=True):
    with B.use_backend(name):
        out, cache = K.conv2d_forward(x, w, b, 1, padding)
        return (out, *K.conv2d_backward(dout, cache, need_dx=need_dx))


def _case(rng, dtype, n, c, f, h, w, padding):
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    wt = rng.standard_normal((f, c, 3, 3)).astype(dtype)
    b = rng.standard_normal(f).astype(dtype)
    g = K._window_geometry("t", x.shape, 3, 3, 1, padding)
    dout = rng.standard_normal((n, f, g.oh, g.ow)).astype(dtype)
    return x, wt, b, g, dout


@pytest.mark.parametrize("algorithm", ALGORITHMS, indirect=True)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n, c, f, h, w, padding", GEOMETRIES)
def test_algorithm_matches_reference(algorithm, dtype, n, c, f, h, w, padding, rng):
    x, wt, b, g, dout = _case(rng, dtype, n, c, f, h, w, padding)
    assert cython_backend.conv_algorithm(g, f) == algorithm
    expected = _forward_backward("numpy", x, wt, b, padding, dout)
    got = _forward_backward("cython", x, wt, b, padding, dout)
    for name, e, a in zip(["out", "dx", "dw", "db"], expected, got):
        assert a.dtype == e.dtype and a.shape == e.shape, name
        assert_close(a, e, dtype=dtype)   # the central tolerance table


@pytest.mark.parametrize("algorithm", ALGORITHMS, indirect=True)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_several_blocks_and_no_dx(algorithm, dtype, rng, monkeypatch):
    # 4 tiles per image, 3 images per block: N = 7 -> blocks of 3, 3, 1 (the last short)
    monkeypatch.setattr(cython_backend, "WINOGRAD_MIN_TILES", 12)
    monkeypatch.setattr(cython_backend, "GEMM_MIN_COLUMNS", 48)
    monkeypatch.setattr(cython_backend, "MAX_RUNS", 2)
    x, wt, b, g, dout = _case(rng, dtype, 7, 3, 5, 4, 4, 1)
    assert cython_backend.conv_chunk_images(g, 5, x.dtype.itemsize) == 3
    expected = _forward_backward("numpy", x, wt, b, 1, dout)
    got = _forward_backward("cython", x, wt, b, 1, dout)
    for e, a in zip(expected, got):
        assert_close(a, e, dtype=dtype)
    no_dx = _forward_backward("cython", x, wt, b, 1, dout, need_dx=False)
    assert no_dx[1] is None
    for e, a in zip(got[2:], no_dx[2:]):   # dw and db do not depend on need_dx
        np.testing.assert_array_equal(a, e)


@pytest.mark.parametrize("algorithm", ["winograd"], indirect=True)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_winograd_bitwise_identical_for_1_and_2_threads(algorithm, dtype, rng, monkeypatch):
    monkeypatch.setattr(_common, "GRAIN", 0)   # small shapes: really use 2 threads
    monkeypatch.setattr(cython_backend, "WINOGRAD_MIN_TILES", 8)   # 11 images: 6 blocks
    x, wt, b, g, dout = _case(rng, dtype, 11, 5, 6, 9, 7, 1)
    runs = []
    for nt in (1, 2):
        with B.use_num_threads(nt):
            runs.append(_forward_backward("cython", x, wt, b, 1, dout))
    for one, two in zip(*runs):
        np.testing.assert_array_equal(one, two)


def test_choice_of_algorithm(monkeypatch):
    same = K._window_geometry("t", (2, 32, 16, 16), 3, 3, 1, 1)
    narrow = K._window_geometry("t", (2, 32, 14, 14), 3, 3, 1, 1)
    strided = K._window_geometry("t", (2, 32, 16, 16), 3, 3, 2, 1)
    five = K._window_geometry("t", (2, 32, 16, 16), 5, 5, 1, 2)
    monkeypatch.setattr(cython_backend, "CONV_ALGORITHM", "auto")
    assert cython_backend.conv_algorithm(same, 64) == "winograd"
    assert cython_backend.conv_algorithm(same, 8) == "im2col"        # too few filters
    assert cython_backend.conv_algorithm(narrow, 64) == "im2col"     # rows too short
    assert cython_backend.conv_algorithm(same, 64, groups=2) == "im2col"
    assert cython_backend.backend_info()["conv_algorithm"] == "auto"
    previous = cython_backend.set_conv_algorithm("winograd")
    assert previous == "auto"
    assert cython_backend.conv_algorithm(same, 8) == "winograd"
    for g in (strided, five):   # Winograd F(2x2, 3x3) does not apply: im2col whatever
        assert cython_backend.conv_algorithm(g, 64) == "im2col"
    cython_backend.set_conv_algorithm("im2col")
    assert cython_backend.conv_algorithm(same, 64) == "im2col"
    with pytest.raises(ValueError, match="set_conv_algorithm: name must be one of"):
        cython_backend.set_conv_algorithm("fft")
    assert cython_backend.CONV_ALGORITHM == "im2col"


@pytest.mark.parametrize("algorithm", ["auto", "winograd"], indirect=True)
@pytest.mark.parametrize("where", ["x", "w", "dout"])
@pytest.mark.parametrize("bad", [np.inf, np.nan])
def test_nan_and_inf_land_where_the_reference_puts_them(algorithm, where, bad, rng):
    # Winograd would mix a 4x4 tile's values (some times 0: 0 * inf = NaN) and so spread one
    # bad input to outputs that never read it; the backend runs im2col for such data.
    x, wt, b, g, dout = _case(rng, np.float32, 2, 16, 16, 16, 16, 1)
    assert cython_backend.conv_algorithm(g, 16) == "winograd"          # for finite data
    array = {"x": x, "w": wt, "dout": dout}[where]
    array[0, 3, min(5, array.shape[2] - 1), 2] = bad   # one value, inside a 4x4 tile
    with np.errstate(invalid="ignore"):   # inf * 0 in the reference's matmul: expected
        expected = _forward_backward("numpy", x, wt, b, 1, dout)
    got = _forward_backward("cython", x, wt, b, 1, dout)
    previous = cython_backend.set_conv_algorithm("im2col")
    try:
        im2col = _forward_backward("cython", x, wt, b, 1, dout)
    finally:
        cython_backend.set_conv_algorithm(previous)
    # what read the bad value ran im2col: out reads x and w, dx reads dout and w (dx of
    # a bad x reads only finite data and may stay Winograd); dw and db are always im2col
    fell_back = {"out": where != "dout", "dx": where != "x", "dw": True, "db": True}
    for name, e, a, simple in zip(["out", "dx", "dw", "db"], expected, got, im2col):
        np.testing.assert_array_equal(np.isnan(a), np.isnan(e), err_msg=name)
        np.testing.assert_array_equal(np.isinf(a), np.isinf(e), err_msg=name)
        if fell_back[name]:   # im2col's values bit for bit (its accuracy: the tests above)
            np.testing.assert_array_equal(a, simple, err_msg=name)


def test_the_finiteness_check_picks_the_algorithm(rng):
    x, wt, b, g, dout = _case(rng, np.float32, 1, 16, 16, 16, 16, 1)
    assert cython_backend._all_finite(x, wt)
    x[0, 3, 4, 5] = np.nan
    assert not cython_backend._all_finite(x, wt)
    assert cython_backend.conv_algorithm(g, 16, finite=False) == "im2col"
