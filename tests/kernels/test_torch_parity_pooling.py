"""Pooling options and the empty batch-norm batch against ``torch.nn.functional``
(optional: skipped when torch is absent): ``max_pool2d`` with dilation, ceil mode and
``return_indices`` (ties included), ``avg_pool2d`` with every option,
``adaptive_avg_pool2d``, and ``batch_norm`` in training mode on ``N == 0``.
Tolerances: kinds "exact", "torch-forward" and "torch-grad" of the one table.
"""

import numpy as np
import pytest

import fastcnn
from fastcnn import kernels

import _helpers as H
from _helpers import FAST_BACKENDS, skip_unless_available

torch = pytest.importorskip("torch", reason="PyTorch is the optional oracle")
F = torch.nn.functional

pytestmark = pytest.mark.requires_torch


@pytest.fixture(params=[pytest.param("numpy", id="numpy")] + FAST_BACKENDS)
def backend(request):
    skip_unless_available(request.param)
    with fastcnn.use_backend(request.param):
        yield request.param


def t(a):
    return torch.from_numpy(np.ascontiguousarray(a)).requires_grad_(True)


def close(ours, theirs, dtype, kind, what):
    H.assert_close(ours, theirs.detach().numpy(), dtype=dtype, kind=kind, what=what)


MAX = [  # x shape, size, stride, padding, dilation, ceil_mode
    ((2, 3, 8, 8), 2, 2, 0, 1, False),
    ((2, 3, 9, 9), 2, 2, 0, 1, True),
    ((2, 2, 9, 10), 3, 2, 1, 1, True),
    ((2, 2, 9, 9), 3, 1, 1, 2, False),
    ((1, 2, 11, 10), (3, 2), (2, 3), (1, 1), (2, 3), True),
    ((1, 2, 7, 7), 2, 1, 0, 3, True),
]


@pytest.mark.parametrize("geom", MAX, ids=["2x2", "2x2-ceil", "3x3s2-pad-ceil",
                                           "3x3-dil2", "pairs-dil-ceil", "dil3-ceil"])
@pytest.mark.parametrize("values", ["distinct", "ties"])
def test_maxpool2d_with_dilation_ceil_mode_and_indices_matches_torch(backend, dtype, geom,
                                                                     values, rng):
    shape, size, stride, padding, dilation, ceil_mode = geom
    if values == "ties":    # few distinct values: many windows hold their max twice
        x = rng.integers(-2, 3, shape).astype(dtype)
    else:
        x = H.distinct_values(shape, rng, dtype)
    out, cache = kernels.maxpool2d_forward(x, size, stride, padding, dilation, ceil_mode)
    dout = rng.standard_normal(out.shape).astype(dtype)
    dx = kernels.maxpool2d_backward(dout, cache)
    tx = t(x)
    tout, tidx = F.max_pool2d(tx, size, stride, padding, dilation, ceil_mode,
                              return_indices=True)
    tout.backward(torch.from_numpy(dout))
    close(out, tout, dtype, "exact", "pool out")
    np.testing.assert_array_equal(kernels.maxpool2d_indices(cache), tidx.numpy())
    close(dx, tx.grad, dtype, "torch-grad", "pool dx")


AVG = [  # x shape, size, stride, padding, ceil_mode, count_include_pad, divisor_override
    ((2, 3, 8, 8), 2, None, 0, False, True, None),
    ((2, 3, 9, 9), 2, 2, 0, True, True, None),
    ((2, 2, 9, 10), 3, 2, 1, False, True, None),
    ((2, 2, 9, 10), 3, 2, 1, False, False, None),
    ((2, 2, 9, 10), 3, 2, 1, True, True, None),
    ((2, 2, 9, 10), 3, 2, 1, True, False, None),
    ((1, 2, 8, 7), (3, 2), (2, 1), (1, 1), True, True, None),
    ((1, 2, 8, 7), 2, 2, 1, True, True, 3),
    ((1, 2, 8, 7), 3, 1, 1, False, False, 7),
]


@pytest.mark.parametrize("geom", AVG, ids=["2x2", "2x2-ceil", "3x3s2-pad", "pad-exclude",
                                           "pad-ceil", "pad-ceil-exclude", "pairs-ceil",
                                           "divisor-ceil", "divisor-exclude"])
def test_avgpool2d_with_every_option_matches_torch(backend, dtype, geom, rng):
    shape, size, stride, padding, ceil_mode, include, override = geom
    x = rng.standard_normal(shape).astype(dtype)
    out, cache = kernels.avgpool2d_forward(x, size, stride, padding, ceil_mode, include,
                                           override)
    dout = rng.standard_normal(out.shape).astype(dtype)
    dx = kernels.avgpool2d_backward(dout, cache)
    tx = t(x)
    tout = F.avg_pool2d(tx, size, stride, padding, ceil_mode, include, override)
    tout.backward(torch.from_numpy(dout))
    close(out, tout, dtype, "torch-forward", "avgpool out")
    close(dx, tx.grad, dtype, "torch-grad", "avgpool dx")


@pytest.mark.parametrize("shape, size", [((2, 3, 7, 9), (3, 4)), ((2, 4, 8, 8), 1),
                                         ((1, 2, 5, 6), (5, 6)), ((1, 2, 4, 5), (7, 3)),
                                         ((2, 2, 10, 7), (4, None))],
                         ids=["3x4", "global", "identity", "upsampling", "keep-width"])
def test_adaptive_avgpool2d_matches_torch(backend, dtype, shape, size, rng):
    x = rng.standard_normal(shape).astype(dtype)
    out, cache = kernels.adaptive_avgpool2d_forward(x, size)
    dout = rng.standard_normal(out.shape).astype(dtype)
    dx = kernels.adaptive_avgpool2d_backward(dout, cache)
    tx = t(x)
    tout = F.adaptive_avg_pool2d(tx, size)
    tout.backward(torch.from_numpy(dout))
    close(out, tout, dtype, "torch-forward", "adaptive out")
    close(dx, tx.grad, dtype, "torch-grad", "adaptive dx")


@pytest.mark.parametrize("shape", [(0, 3, 4, 4), (0, 3)], ids=["spatial", "dense"])
def test_batchnorm_training_on_an_empty_batch_matches_torch(backend, dtype, shape, rng):
    gamma = rng.uniform(0.5, 1.5, 3).astype(dtype)
    beta = rng.standard_normal(3).astype(dtype)
    rm, rv = rng.standard_normal(3).astype(dtype), rng.uniform(0.5, 2, 3).astype(dtype)
    trm, trv = torch.from_numpy(rm.copy()), torch.from_numpy(rv.copy())
    x = np.zeros(shape, dtype)
    out, cache = kernels.batchnorm_forward(x, gamma, beta, rm, rv, training=True)
    dx, dgamma, dbeta = kernels.batchnorm_backward(np.zeros(shape, dtype), cache)
    tx, tg, tb = t(x), t(gamma), t(beta)
    tout = F.batch_norm(tx, trm, trv, tg, tb, training=True)
    tout.backward(torch.zeros(shape, dtype=tout.dtype))
    assert out.shape == tuple(tout.shape) and dx.shape == tuple(tx.grad.shape)
    close(rm, trm, dtype, "exact", "running_mean")
    close(rv, trv, dtype, "exact", "running_var")
    close(dgamma, tg.grad, dtype, "exact", "dgamma")
    close(dbeta, tb.grad, dtype, "exact", "dbeta")
