"""fastcnn.testing: the grid, the tolerance table, assert_close, check_kernel."""

import _helpers as H
import numpy as np
import pytest

from fastcnn import kernels
from fastcnn.tools.testing import (
    BATCHNORM_CASES,
    CONV_CASES,
    KERNELS,
    POOL_CASES,
    TOLERANCES,
    assert_close,
    cases_for,
    check_kernel,
    random_cases,
    tolerance,
)


def test_grid_ids_are_unique_and_named():
    for grid in (CONV_CASES, POOL_CASES, BATCHNORM_CASES):
        ids = [c.name for c in grid]
        assert len(ids) == len(set(ids))
    conv = {c.name for c in CONV_CASES}
    assert {"1x1", "3x3-pad1", "stride2", "nonsquare-3x5", "nonsquare-5x3", "rect-input",
            "stride-gt-kernel", "pad-kernel-minus-1", "kernel-equals-padded-input",
            "batch1-chan1", "odd-sizes", "many-channels", "hw-pairs", "asym-pad", "N0"} <= conv
    assert {"2x2s2", "3x3s2-overlap", "floor-mode", "pad1", "nonsquare", "stride1",
            "N0"} <= {c.name for c in POOL_CASES}
    assert {"dense", "spatial", "batch1-spatial"} <= {c.name for c in BATCHNORM_CASES}


def test_grid_geometry_is_what_the_ids_say():
    by_id = {c.name: c for c in CONV_CASES}
    _, cache = kernels.conv2d_forward(*by_id["kernel-equals-padded-input"].make_inputs(
        np.random.default_rng(0), np.float64).values(), 1, 1)
    assert cache.out_shape[2:] == (1, 1)
    floor = {c.name: c for c in POOL_CASES}["floor-mode"]
    assert floor.h % 2 == 1 and floor.w % 2 == 1
    assert {c.name: c for c in POOL_CASES}["3x3s2-overlap"].overlapping


def test_tolerance_table():
    assert tolerance("float32", "sum") == (1e-4, 1e-5)
    assert tolerance(np.float64, "sum") == (1e-10, 1e-12)
    assert tolerance("float32", "exact") == (0.0, 0.0)
    assert set(TOLERANCES) >= {("float32", "torch-grad"), ("float64", "oracle")}
    with pytest.raises(ValueError, match="no entry for dtype float32 and kind 'oracle'"):
        tolerance("float32", "oracle")


def test_assert_close_names_worst_index_value_case_and_dtype():
    expected = np.zeros((2, 3), np.float32)
    actual = expected.copy()
    actual[1, 2] = 0.5
    actual[0, 1] = 1e-6                     # within atol: not the worst
    with pytest.raises(AssertionError,
                       match=r"conv out: case 'stride2', dtype float32: 1 of 6 elements differ "
                             r"\(rtol=0.0001, atol=1e-05\); worst at index \(1, 2\): got "
                             r"np.float32\(0.5\), expected np.float32\(0.0\)"):
        assert_close(actual, expected, kind="sum", what="conv out", case="stride2")
    assert_close(actual[0], expected[0])    # passes
    with pytest.raises(AssertionError, match="dtype float64, expected float32"):
        assert_close(actual.astype(np.float64), expected)
    with pytest.raises(AssertionError, match=r"shape \(3,\), expected \(2, 3\)"):
        assert_close(actual[0], expected)


def test_assert_close_nan_and_inf():
    e = np.array([np.nan, np.inf, 1.0])
    assert_close(e.copy(), e, kind="exact")
    with pytest.raises(AssertionError, match=r"worst at index \(0,\)"):
        assert_close(np.array([1.0, np.inf, 1.0]), e, kind="exact")
    with pytest.raises(AssertionError, match=r"worst at index \(1,\)"):
        assert_close(np.array([np.nan, -np.inf, 1.0]), e)


@pytest.mark.parametrize("kernel", KERNELS)
def test_check_kernel_passes_the_reference(kernel):
    cases = cases_for(kernel)
    report = check_kernel(kernel, cases=cases)    # the reference checked against itself
    assert report.ok and len(report.results) > 2 * len(cases)
    assert any(r.quantity.startswith("gradcheck") for r in report.results)


@pytest.mark.parametrize("kernel", KERNELS)
def test_check_kernel_passes_random_cases(kernel):
    assert check_kernel(kernel, cases=random_cases(kernel, np.random.default_rng(1), 4)).ok


# ---------------------------------------------- the example of the module docstring


def pool_forward(x, size, stride, padding):      # ints only, no padding
    n, c, h, w = x.shape
    oh, ow = (h - size) // stride + 1, (w - size) // stride + 1
    out = np.empty((n, c, oh, ow), dtype=x.dtype)
    for i in range(oh):
        for j in range(ow):
            window = x[:, :, i * stride:i * stride + size, j * stride:j * stride + size]
            out[:, :, i, j] = window.max(axis=(2, 3))
    return out, (x, size, stride)


def make_pool_backward(accumulate):
    def pool_backward(dout, cache):
        x, size, stride = cache
        dx = np.zeros_like(x)
        for n, c, i, j in np.ndindex(*dout.shape):
            window = x[n, c, i * stride:i * stride + size, j * stride:j * stride + size]
            p, q = np.unravel_index(np.argmax(window), window.shape)
            if accumulate:
                dx[n, c, i * stride + p, j * stride + q] += dout[n, c, i, j]
            else:
                dx[n, c, i * stride + p, j * stride + q] = dout[n, c, i, j]   # the bug
        return dx
    return pool_backward


POOL_SIMPLE = ["2x2s2", "3x3s2-overlap", "stride1"]


def test_check_kernel_catches_assignment_instead_of_accumulation():
    with pytest.raises(AssertionError) as info:
        check_kernel("maxpool2d", pool_forward, make_pool_backward(accumulate=False),
                     cases=POOL_SIMPLE)
    message = str(info.value)
    assert message.startswith("maxpool2d backward dx (integer dout): case '3x3s2-overlap' "
                              "x.shape=(2, 3, 9, 9) size=3 stride=2 padding=0, dtype float32:")
    assert "worst at index" in message and "exact comparison" in message


def test_check_kernel_passes_the_fixed_example():
    report = check_kernel("maxpool2d", pool_forward, make_pool_backward(accumulate=True),
                          cases=POOL_SIMPLE)
    assert report.ok


def test_check_kernel_report_mode_lists_every_failure():
    report = check_kernel("maxpool2d", pool_forward, make_pool_backward(accumulate=False),
                          cases=POOL_SIMPLE, raise_on_failure=False)
    assert not report.ok
    assert {r.case for r in report.failures} == {"3x3s2-overlap", "stride1"}
    assert report.first_failure.case == "3x3s2-overlap"
    assert any(r.quantity == "gradcheck dx" for r in report.failures)   # central differences agree
    assert "failed; first: maxpool2d backward dx" in report.summary()


def test_check_kernel_catches_a_missing_batchnorm_term():
    def bad_backward(dout, cache):   # dense case: drops the  - gamma*invstd*dbeta/M  term
        dx, dgamma, dbeta = kernels.batchnorm_backward(dout, cache)
        _, gamma, invstd, _ = cache.data          # the reference's cache
        return dx + (gamma * invstd * dbeta / dout.shape[0]).astype(dx.dtype), dgamma, dbeta

    with pytest.raises(AssertionError, match=r"batchnorm backward dx \(train\): case 'dense'"):
        check_kernel("batchnorm", backward=bad_backward, cases=["dense"])


def test_check_kernel_catches_wrong_dtype_and_mutated_input():
    def fwd_float64(x, w, b, stride, padding):
        out, cache = kernels.conv2d_forward(x.astype(np.float64), w.astype(np.float64),
                                            b.astype(np.float64), stride, padding)
        return out, cache

    with pytest.raises(AssertionError, match="forward out: case '1x1'.*dtype float64, "
                                             "expected float32"):
        check_kernel("conv2d", fwd_float64, cases=["1x1"])

    def fwd_mutating(x, w, b, stride, padding):
        result = kernels.conv2d_forward(x, w, b, stride, padding)
        x[...] = 0
        return result

    with pytest.raises(AssertionError, match="forward leaves x unchanged"):
        check_kernel("conv2d", fwd_mutating, cases=["3x3-pad1"])


def test_check_kernel_reports_an_exception_as_a_failure():
    def crashing(x, kh, kw, stride, padding):
        raise IndexError("index 9 is out of bounds")

    with pytest.raises(AssertionError, match=r"im2col forward: case '1x1'.*raised IndexError: "
                                             r"index 9 is out of bounds"):
        check_kernel("im2col", crashing)


def test_check_kernel_gradcheck_catches_inconsistent_backward():
    # A backward that matches neither the reference nor the forward: both checks fire.
    def scaled_backward(dout, cache):
        dx, dw, db = kernels.conv2d_backward(dout, cache)
        return 2 * dx, dw, db

    report = check_kernel("conv2d", backward=scaled_backward, cases=["1x1"],
                          dtypes=("float64",), raise_on_failure=False)
    quantities = {r.quantity for r in report.failures}
    assert {"backward dx", "gradcheck dx"} <= quantities
    assert "backward dw" not in quantities


def test_check_kernel_rejects_unknown_names():
    with pytest.raises(ValueError, match=r"kernel must be one of \['conv2d', 'maxpool2d', "
                                         r"'avgpool2d', 'adaptive_avgpool2d', 'batchnorm', "
                                         r"'im2col'\]; got 'relu'"):
        check_kernel("relu")
    with pytest.raises(ValueError, match="unknown conv2d case 'huge'"):
        check_kernel("conv2d", cases=["huge"])


def test_helpers_reexport_the_same_table():
    assert H.TOLERANCES is TOLERANCES
