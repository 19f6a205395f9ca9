"""Contracts of the kernel API, on the reference and every fast backend.

dtype in == dtype out; non-contiguous == contiguous; read-only inputs accepted;
mixed float32/float64 and integer dtypes are TypeErrors; N == 0 works; NaN/Inf
propagate without a crash; running statistics are updated in place in training
(even when not contiguous) and untouched in inference.
"""

import _helpers as H
import numpy as np
import pytest
from _helpers import FAST_BACKENDS, skip_unless_available

import fastcnn
from fastcnn import kernels


@pytest.fixture(params=[pytest.param("numpy", id="numpy")] + FAST_BACKENDS)
def backend(request):
    skip_unless_available(request.param)
    with fastcnn.use_backend(request.param):
        yield request.param


def make(rng, dtype, n=2):
    return {
        "x": rng.standard_normal((n, 3, 6, 7)).astype(dtype),
        "w": (rng.standard_normal((4, 3, 3, 3)) / 5).astype(dtype),
        "b": rng.standard_normal(4).astype(dtype),
        "gamma": rng.uniform(0.5, 1.5, 3).astype(dtype),
        "beta": rng.standard_normal(3).astype(dtype),
        "rm": rng.standard_normal(3).astype(dtype),
        "rv": rng.uniform(0.5, 2, 3).astype(dtype),
    }


def run(kernel, a, rng, training=True):
    """Forward and backward of ``kernel`` on the arrays ``a``; returns every output."""
    if kernel == "conv2d":
        out, cache = kernels.conv2d_forward(a["x"], a["w"], a["b"], 2, 1)
        return (out,) + kernels.conv2d_backward(_dout(out, rng), cache)
    if kernel == "maxpool2d":
        out, cache = kernels.maxpool2d_forward(a["x"], 3, 2, 1)
        return out, kernels.maxpool2d_backward(_dout(out, rng), cache)
    if kernel == "batchnorm":
        out, cache = kernels.batchnorm_forward(a["x"], a["gamma"], a["beta"], a["rm"], a["rv"],
                                               training)
        return (out,) + kernels.batchnorm_backward(_dout(out, rng), cache)
    cols = kernels.im2col(a["x"], 3, 2, 1, (1, 0))
    return cols, kernels.col2im(_dout(cols, rng), a["x"].shape, 3, 2, 1, (1, 0))


def _dout(out, rng):
    seed = int(out.size)   # same dout for the same shape, whatever the layout of x
    return np.random.default_rng(seed).standard_normal(out.shape).astype(out.dtype)


KERNELS = ["conv2d", "maxpool2d", "batchnorm", "im2col"]


@pytest.mark.parametrize("kernel", KERNELS)
def test_output_dtype_equals_input_dtype(backend, kernel, dtype, rng):
    for result in run(kernel, make(rng, dtype), rng):
        assert result.dtype == dtype, f"{kernel}: got {result.dtype} for {np.dtype(dtype)}"


@pytest.mark.parametrize("kernel", KERNELS)
def test_noncontiguous_input_equals_contiguous(backend, kernel, dtype, rng):
    a = make(rng, dtype)
    # Same values, other memory layouts: a transposed copy transposed back, and
    # every-other-element views of a doubled array.
    strided = {k: np.repeat(v, 2, axis=-1)[..., ::2] for k, v in a.items()}
    strided["x"] = np.asfortranarray(a["x"])
    assert not strided["x"].flags.c_contiguous and not strided["w"].flags.c_contiguous
    contiguous = {k: v.copy() for k, v in a.items()}
    for got, want in zip(run(kernel, strided, rng), run(kernel, contiguous, rng)):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(strided["rm"], contiguous["rm"])   # stats updated alike
    np.testing.assert_array_equal(strided["rv"], contiguous["rv"])


# Training mode only matters for batch norm: the other kernels run once, as "train".
READONLY_CASES = [(k, True) for k in KERNELS] + [("batchnorm", False)]


@pytest.mark.parametrize(("kernel", "training"), READONLY_CASES,
                         ids=[f"{k}-{'train' if t else 'eval'}" for k, t in READONLY_CASES])
def test_readonly_inputs_are_accepted(backend, kernel, training, dtype, rng):
    a = make(rng, dtype)
    want = run(kernel, {k: v.copy() for k, v in a.items()}, rng, training)
    for name, value in a.items():
        if name in ("rm", "rv") and training:
            continue   # updated in place in training: must stay writeable
        value.setflags(write=False)
    for got, exp in zip(run(kernel, a, rng, training), want):
        np.testing.assert_array_equal(got, exp)


def test_readonly_running_stats_in_training_is_an_error(backend, rng):
    a = make(rng, np.float32)
    a["rm"].setflags(write=False)
    with pytest.raises(ValueError, match="running_mean must be writeable in training mode"):
        kernels.batchnorm_forward(a["x"], a["gamma"], a["beta"], a["rm"], a["rv"], True)


@pytest.mark.parametrize("kernel", ["conv2d", "batchnorm"])
def test_mixed_float32_float64_is_a_type_error(backend, kernel, rng):
    a = make(rng, np.float32)
    bad = "w" if kernel == "conv2d" else "gamma"
    a[bad] = a[bad].astype(np.float64)
    with pytest.raises(TypeError, match=f"must share one dtype.*{bad}=float64"):
        run(kernel, a, rng)


def test_backward_with_dout_of_other_dtype_is_a_type_error(backend, rng):
    a = make(rng, np.float32)
    out, cache = kernels.conv2d_forward(a["x"], a["w"], a["b"])
    with pytest.raises(TypeError, match="dout has dtype float64 but the forward pass ran in float32"):
        kernels.conv2d_backward(out.astype(np.float64), cache)


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("int_dtype", ["int32", "int64"])
def test_integer_dtype_is_a_type_error(backend, kernel, int_dtype, rng):
    a = make(rng, np.float32)
    a["x"] = np.arange(a["x"].size).reshape(a["x"].shape).astype(int_dtype)
    with pytest.raises(TypeError, match=f"x has dtype {int_dtype}; expected float32 or float64"):
        run(kernel, a, rng)


@pytest.mark.parametrize("kernel", ["conv2d", "maxpool2d", "im2col"])
def test_empty_batch_works(backend, kernel, dtype, rng):
    a = make(rng, dtype, n=0)
    results = run(kernel, a, rng)
    assert results[0].size == 0
    if kernel == "conv2d":   # dw and db of an empty batch: zero, not garbage
        np.testing.assert_array_equal(results[2], 0)
        np.testing.assert_array_equal(results[3], 0)
    assert results[-1 if kernel != "conv2d" else 1].shape == a["x"].shape


def test_empty_batch_batchnorm_inference_works(backend, dtype, rng):
    a = make(rng, dtype, n=0)
    out, dx, dgamma, dbeta = run("batchnorm", a, rng, training=False)
    assert out.shape == dx.shape == a["x"].shape
    np.testing.assert_array_equal(dgamma, 0)
    np.testing.assert_array_equal(dbeta, 0)


@pytest.mark.parametrize("kernel", KERNELS)
def test_nan_and_inf_propagate(backend, kernel, dtype, rng):
    a = make(rng, dtype)
    a["x"][0, 0, 2, 3] = np.nan
    a["x"][1, 2, 4, 4] = np.inf
    a["x"][1, 1, 0, 0] = -np.inf
    results = run(kernel, a, rng, training=False)
    out = results[0]
    assert np.isnan(out).any(), f"{kernel}: NaN vanished"
    if kernel in ("maxpool2d", "im2col"):
        assert np.isposinf(out).any(), f"{kernel}: +inf vanished"
    # and the reference agrees on where they went
    with fastcnn.use_backend("numpy"):
        want = run(kernel, make(np.random.default_rng(0), dtype) | {"x": a["x"]}, rng,
                   training=False)
    H.assert_close(out, want[0], dtype=dtype, kind="sum", what=f"{kernel} with NaN/Inf")


def test_running_stats_updated_in_place_in_training(backend, dtype, rng):
    a = make(rng, dtype)
    rm, rv = a["rm"], a["rv"]
    rm0, rv0 = rm.copy(), rv.copy()
    kernels.batchnorm_forward(a["x"], a["gamma"], a["beta"], rm, rv, True, 0.9)
    x64 = a["x"].astype(np.float64)
    H.assert_close(rm, (0.9 * rm0 + 0.1 * x64.mean(axis=(0, 2, 3))).astype(dtype), kind="sum")
    H.assert_close(rv, (0.9 * rv0 + 0.1 * x64.var(axis=(0, 2, 3))).astype(dtype), kind="sum")


def test_running_stats_untouched_in_inference(backend, dtype, rng):
    a = make(rng, dtype)
    rm0, rv0 = a["rm"].copy(), a["rv"].copy()
    kernels.batchnorm_forward(a["x"], a["gamma"], a["beta"], a["rm"], a["rv"], False)
    np.testing.assert_array_equal(a["rm"], rm0)
    np.testing.assert_array_equal(a["rv"], rv0)


def test_noncontiguous_running_stats_still_get_their_update(backend, dtype, rng):
    a = make(rng, dtype)
    want_rm, want_rv = a["rm"].copy(), a["rv"].copy()
    kernels.batchnorm_forward(a["x"], a["gamma"], a["beta"], want_rm, want_rv, True)
    buffer = np.zeros((3, 2), dtype)
    buffer[:, 0], buffer[:, 1] = a["rm"], a["rv"]
    rm, rv = buffer[:, 0], buffer[:, 1]            # strided views into one buffer
    assert not rm.flags.c_contiguous
    kernels.batchnorm_forward(a["x"], a["gamma"], a["beta"], rm, rv, True)
    np.testing.assert_array_equal(buffer[:, 0], want_rm)
    np.testing.assert_array_equal(buffer[:, 1], want_rv)
