"""Kernels against ``torch.nn.functional`` (optional: skipped when torch is absent).

Conventions converted, not copied:
* torch's batch-norm ``momentum`` weighs the *new* statistic: ``m_torch = 1 - ours``;
* torch's running variance takes the *unbiased* batch variance (divide by M - 1),
  ours the biased one (divide by M), as docs/architecture.md states: we convert torch's update
  back to the biased one before comparing;
* asymmetric padding has no torch conv argument: pad with ``F.pad`` first.
Tolerances: kinds "torch-forward" and "torch-grad" of the one table.
"""

import _helpers as H
import numpy as np
import pytest
from _helpers import FAST_BACKENDS, skip_unless_available

import fastcnn
from fastcnn import kernels

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


CONV = [  # x shape, w shape, stride, padding
    ((2, 3, 8, 8), (4, 3, 3, 3), 1, 1),
    ((2, 3, 9, 7), (5, 3, 3, 5), 2, (1, 2)),
    ((1, 2, 10, 9), (3, 2, 5, 3), (2, 1), (2, 0)),
    ((2, 4, 7, 7), (4, 4, 1, 1), 1, 0),
    ((2, 3, 8, 9), (2, 3, 3, 3), 2, ((0, 1), (1, 0))),
]


@pytest.mark.parametrize("x_shape, w_shape, stride, padding", CONV,
                         ids=["3x3-pad1", "nonsquare-s2-pad-pair", "hw-pairs", "1x1", "asym-pad"])
def test_conv2d_matches_torch(backend, dtype, x_shape, w_shape, stride, padding, rng):
    x = rng.standard_normal(x_shape).astype(dtype)
    w = (rng.standard_normal(w_shape) / np.sqrt(np.prod(w_shape[1:]))).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype)
    out, cache = kernels.conv2d_forward(x, w, b, stride, padding)
    dout = rng.standard_normal(out.shape).astype(dtype)
    dx, dw, db = kernels.conv2d_backward(dout, cache)

    tx, tw, tb = t(x), t(w), t(b)
    if isinstance(padding, tuple) and isinstance(padding[0], tuple):
        (top, bottom), (left, right) = padding
        tout = F.conv2d(F.pad(tx, (left, right, top, bottom)), tw, tb, stride=stride)
    else:
        tout = F.conv2d(tx, tw, tb, stride=stride, padding=padding)
    tout.backward(torch.from_numpy(dout))
    close(out, tout, dtype, "torch-forward", "conv out")
    for name, ours, theirs in (("dx", dx, tx.grad), ("dw", dw, tw.grad), ("db", db, tb.grad)):
        close(ours, theirs, dtype, "torch-grad", f"conv {name}")


CONV_DILATION_GROUPS = [  # x shape, w shape, stride, padding, dilation, groups
    ((2, 3, 9, 9), (4, 3, 3, 3), 1, 2, 2, 1),
    ((2, 2, 11, 9), (3, 2, 3, 2), (2, 1), (1, 2), (2, 3), 1),
    ((2, 4, 8, 8), (6, 2, 3, 3), 1, 1, 1, 2),
    ((2, 6, 7, 7), (9, 2, 1, 1), 1, 0, 1, 3),
    ((2, 4, 9, 8), (4, 2, 3, 3), 2, 2, 2, 2),
    ((2, 5, 8, 8), (5, 1, 3, 3), 1, 1, 1, 5),
    ((2, 3, 8, 7), (6, 1, 3, 3), 2, 1, 1, 3),
    ((2, 3, 10, 10), (3, 1, 3, 3), 1, 2, 2, 3),
    ((2, 4, 8, 9), (4, 1, 3, 3), 2, ((0, 1), (1, 0)), 1, 4),
]


@pytest.mark.parametrize("x_shape, w_shape, stride, padding, dilation, groups",
                         CONV_DILATION_GROUPS,
                         ids=["dilated2", "dilated-hw-pairs", "groups2", "groups3-1x1",
                              "groups2-dilated-s2", "depthwise", "depthwise-mult2-s2",
                              "depthwise-dilated", "depthwise-asym-pad"])
def test_conv2d_dilation_groups_match_torch(backend, dtype, x_shape, w_shape, stride, padding,
                                            dilation, groups, rng):
    x = rng.standard_normal(x_shape).astype(dtype)
    w = (rng.standard_normal(w_shape) / np.sqrt(np.prod(w_shape[1:]))).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype)
    out, cache = kernels.conv2d_forward(x, w, b, stride, padding, dilation, groups)
    dout = rng.standard_normal(out.shape).astype(dtype)
    dx, dw, db = kernels.conv2d_backward(dout, cache)

    tx, tw, tb = t(x), t(w), t(b)
    if isinstance(padding, tuple) and isinstance(padding[0], tuple):
        (top, bottom), (left, right) = padding
        tout = F.conv2d(F.pad(tx, (left, right, top, bottom)), tw, tb, stride=stride,
                        dilation=dilation, groups=groups)
    else:
        tout = F.conv2d(tx, tw, tb, stride=stride, padding=padding, dilation=dilation,
                        groups=groups)
    tout.backward(torch.from_numpy(dout))
    close(out, tout, dtype, "torch-forward", "conv out")
    for name, ours, theirs in (("dx", dx, tx.grad), ("dw", dw, tw.grad), ("db", db, tb.grad)):
        close(ours, theirs, dtype, "torch-grad", f"conv {name}")


POOL = [((2, 3, 8, 8), 2, 2, 0), ((2, 3, 9, 9), 3, 2, 0), ((2, 2, 7, 9), 2, 2, 0),
        ((2, 2, 6, 6), 3, 2, 1), ((1, 2, 7, 6), (3, 2), (2, 1), (1, 0))]


@pytest.mark.parametrize("x_shape, size, stride, padding", POOL,
                         ids=["2x2s2", "3x3s2-overlap", "floor-mode", "pad1", "hw-pairs"])
def test_maxpool2d_matches_torch(backend, dtype, x_shape, size, stride, padding, rng):
    x = H.distinct_values(x_shape, rng, dtype)        # no ties: winners are unambiguous
    out, cache = kernels.maxpool2d_forward(x, size, stride, padding)
    dout = rng.standard_normal(out.shape).astype(dtype)
    dx = kernels.maxpool2d_backward(dout, cache)
    tx = t(x)
    tout = F.max_pool2d(tx, size, stride, padding)
    tout.backward(torch.from_numpy(dout))
    close(out, tout, dtype, "exact", "pool out")
    close(dx, tx.grad, dtype, "torch-grad", "pool dx")


@pytest.mark.parametrize("shape", [(16, 6), (4, 3, 5, 6), (1, 4, 3, 3)],
                         ids=["dense", "spatial", "batch1-spatial"])
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_batchnorm_matches_torch(backend, dtype, shape, training, rng):
    c = shape[1]
    x = (1.0 + 2.0 * rng.standard_normal(shape)).astype(dtype)
    gamma = rng.uniform(0.5, 1.5, c).astype(dtype)
    beta = rng.standard_normal(c).astype(dtype)
    rm0 = rng.standard_normal(c).astype(dtype)
    rv0 = rng.uniform(0.5, 2.0, c).astype(dtype)
    momentum, eps = 0.9, 1e-5
    rm, rv = rm0.copy(), rv0.copy()
    out, cache = kernels.batchnorm_forward(x, gamma, beta, rm, rv, training, momentum, eps)
    dout = rng.standard_normal(shape).astype(dtype)
    dx, dgamma, dbeta = kernels.batchnorm_backward(dout, cache)

    tx, tg, tb = t(x), t(gamma), t(beta)
    trm, trv = torch.from_numpy(rm0.copy()), torch.from_numpy(rv0.copy())
    tout = F.batch_norm(tx, trm, trv, tg, tb, training=training,
                        momentum=1.0 - momentum, eps=eps)      # torch weighs the new value
    tout.backward(torch.from_numpy(dout))
    close(out, tout, dtype, "torch-forward", "bn out")
    for name, ours, theirs in (("dx", dx, tx.grad), ("dgamma", dgamma, tg.grad),
                               ("dbeta", dbeta, tb.grad)):
        close(ours, theirs, dtype, "torch-grad", f"bn {name}")

    close(rm, trm, dtype, "torch-forward", "running_mean")
    if training:
        # torch: rv = m*rv0 + (1-m)*var_unbiased. Recover var_unbiased, make it biased
        # (times (M-1)/M), and rebuild our update from it.
        m_count = shape[0] * int(np.prod(shape[2:]))
        rv0_64 = rv0.astype(np.float64)
        var_unbiased = (trv.numpy().astype(np.float64) - momentum * rv0_64) / (1 - momentum)
        want_rv = momentum * rv0_64 + (1 - momentum) * var_unbiased * (m_count - 1) / m_count
        H.assert_close(rv, want_rv.astype(dtype), dtype=dtype, kind="torch-grad",
                       what="running_var (torch's unbiased update converted)")
        assert not np.allclose(rv, trv.numpy(), rtol=1e-6, atol=0), \
            "the two variance conventions should differ measurably"
    else:
        np.testing.assert_array_equal(rv, rv0)
        np.testing.assert_array_equal(trv.numpy(), rv0)
