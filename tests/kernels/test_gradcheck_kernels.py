"""Central-difference gradient checks (float64) of every backward, on every backend.

The upstream gradient ``dout`` is random (never all ones: a constant dout hides
errors that cancel, such as a batch-norm backward missing its mean term). The
analytic gradient of ``L = sum(forward(...) * dout)`` must match central
differences to a relative error below ``GRADCHECK_MAX_REL_ERROR`` (1e-6).
"""

import _helpers as H
import pytest
from _helpers import FAST_BACKENDS, skip_unless_available

import fastcnn
from fastcnn import kernels
from fastcnn.tools.gradcheck import numeric_gradient, relative_error

BACKENDS = [pytest.param("numpy", id="numpy")] + FAST_BACKENDS


@pytest.fixture(params=BACKENDS)
def any_backend(request):
    skip_unless_available(request.param)
    with fastcnn.use_backend(request.param):
        yield request.param


def check(analytic, f, x, dout, h, what):
    numeric = numeric_gradient(f, x, dout, h=h)
    err = relative_error(analytic, numeric)
    assert err < H.GRADCHECK_MAX_REL_ERROR, f"{what}: relative error {err:.3g}"


CONV_GEOMS = [
    ((2, 3, 5, 5), (4, 3, 3, 3), 1, 1),
    ((2, 2, 6, 7), (3, 2, 3, 2), (2, 1), (1, 0)),
    ((1, 2, 5, 6), (2, 2, 3, 3), 2, ((0, 1), (1, 0))),
]


@pytest.mark.parametrize("x_shape, w_shape, stride, padding", CONV_GEOMS,
                         ids=["3x3-pad1", "hw-pairs", "asym-pad"])
def test_conv2d_backward_matches_central_differences(any_backend, x_shape, w_shape, stride,
                                                     padding, rng):
    x = rng.standard_normal(x_shape)
    w = rng.standard_normal(w_shape) / 3
    b = rng.standard_normal(w_shape[0])
    out, cache = kernels.conv2d_forward(x, w, b, stride, padding)
    dout = rng.standard_normal(out.shape)
    dx, dw, db = kernels.conv2d_backward(dout, cache)

    def f():
        return kernels.conv2d_forward(x, w, b, stride, padding)[0]

    # Convolution is linear in each argument: any step is exact; 1e-3 keeps rounding small.
    for name, arr, grad in (("x", x, dx), ("w", w, dw), ("b", b, db)):
        check(grad, f, arr, dout, 1e-3, f"conv d{name}")


CONV_DILATION_GROUPS = [  # x shape, w shape, stride, padding, dilation, groups
    ((2, 4, 7, 7), (4, 2, 3, 3), 1, 1, 2, 2),
    ((2, 3, 6, 6), (6, 1, 3, 3), (2, 1), 1, 1, 3),
    ((1, 4, 9, 8), (4, 1, 3, 3), 1, ((0, 1), (1, 0)), (2, 1), 4),
]


@pytest.mark.parametrize("x_shape, w_shape, stride, padding, dilation, groups",
                         CONV_DILATION_GROUPS,
                         ids=["dilated-groups2", "depthwise-mult2", "depthwise-dilated-asym"])
def test_conv2d_dilation_groups_backward_matches_central_differences(
        any_backend, x_shape, w_shape, stride, padding, dilation, groups, rng):
    x = rng.standard_normal(x_shape)
    w = rng.standard_normal(w_shape) / 3
    b = rng.standard_normal(w_shape[0])
    args = (stride, padding, dilation, groups)
    out, cache = kernels.conv2d_forward(x, w, b, *args)
    dout = rng.standard_normal(out.shape)
    dx, dw, db = kernels.conv2d_backward(dout, cache)

    def f():
        return kernels.conv2d_forward(x, w, b, *args)[0]

    for name, arr, grad in (("x", x, dx), ("w", w, dw), ("b", b, db)):
        check(grad, f, arr, dout, 1e-3, f"conv d{name}")


POOL_GEOMS = [((2, 2, 6, 6), 2, 2, 0), ((1, 2, 7, 7), 3, 2, 0), ((1, 2, 5, 6), 3, 2, 1),
              ((2, 1, 5, 7), (2, 3), (1, 2), (1, 1))]


@pytest.mark.parametrize("x_shape, size, stride, padding", POOL_GEOMS,
                         ids=["2x2s2", "3x3s2-overlap", "pad1", "hw-pairs"])
def test_maxpool2d_backward_matches_central_differences(any_backend, x_shape, size, stride,
                                                        padding, rng):
    # Values 0.0625 apart: no tie, and no step of size h crosses a kink of the max.
    x = H.distinct_values(x_shape, rng)
    out, cache = kernels.maxpool2d_forward(x, size, stride, padding)
    dout = rng.standard_normal(out.shape)
    dx = kernels.maxpool2d_backward(dout, cache)
    check(dx, lambda: kernels.maxpool2d_forward(x, size, stride, padding)[0], x, dout, 1e-4,
          "pool dx")


@pytest.mark.parametrize("shape", [(6, 4), (3, 2, 3, 4)], ids=["dense", "spatial"])
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_batchnorm_backward_matches_central_differences(any_backend, shape, training, rng):
    c = shape[1]
    x = 0.5 + 2.0 * rng.standard_normal(shape)
    gamma, beta = rng.uniform(0.5, 1.5, c), rng.standard_normal(c)
    rm, rv = rng.standard_normal(c), rng.uniform(0.5, 2.0, c)

    def f():  # fresh running stats: training mode updates them in place
        return kernels.batchnorm_forward(x, gamma, beta, rm.copy(), rv.copy(), training,
                                         0.9, 1e-5)[0]

    out, cache = kernels.batchnorm_forward(x, gamma, beta, rm.copy(), rv.copy(), training,
                                           0.9, 1e-5)
    dout = rng.standard_normal(out.shape)
    dx, dgamma, dbeta = kernels.batchnorm_backward(dout, cache)
    for name, arr, grad in (("x", x, dx), ("gamma", gamma, dgamma), ("beta", beta, dbeta)):
        check(grad, f, arr, dout, 1e-4, f"bn d{name}")
