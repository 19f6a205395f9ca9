"""Shared pooling geometries and forward+backward runners of the pooling kernel tests
(tests/kernels/test_pooling_breadth.py and test_pooling_contracts.py)."""

import numpy as np

from fastcnn import kernels

MAX_GEOMS = [  # x shape, size, stride, padding, dilation, ceil_mode
    ((2, 3, 7, 7), 2, 2, 0, 1, True),
    ((2, 2, 7, 8), 3, 2, 1, 1, True),
    ((1, 2, 9, 9), 3, 1, 1, 2, False),
    ((2, 2, 10, 9), 2, 3, 1, 3, True),
    ((1, 3, 6, 11), 3, 2, 0, 2, True),
    ((1, 1, 5, 5), 2, 2, 1, 1, True),
]

AVG_GEOMS = [  # x shape, size, stride, padding, ceil_mode, count_include_pad, divisor_override
    ((2, 3, 8, 8), 2, 2, 0, False, True, None),
    ((2, 2, 7, 7), 2, 2, 0, True, True, None),
    ((2, 2, 7, 9), 3, 2, 1, True, True, None),
    ((2, 2, 7, 9), 3, 2, 1, True, False, None),
    ((1, 2, 6, 5), 3, 1, 1, False, False, None),
    ((1, 2, 6, 7), 2, 2, 1, True, True, 3),
    ((2, 1, 9, 9), 4, 3, 2, True, False, None),
]

ADAPTIVE = [((2, 3, 7, 9), (3, 4)), ((2, 2, 8, 8), 1), ((1, 2, 5, 6), (5, 6)),
            ((1, 2, 4, 5), (7, 3)), ((2, 2, 10, 7), (4, None))]


def geom_id(g):
    return "-".join(str(v) for v in g[1:])


def run_max(x, dout_seed, geom):
    _, k, s, p, d, ceil_mode = geom
    out, cache = kernels.maxpool2d_forward(x, k, s, p, d, ceil_mode)
    dout = np.random.default_rng(dout_seed).standard_normal(out.shape).astype(x.dtype)
    return out, kernels.maxpool2d_indices(cache), kernels.maxpool2d_backward(dout, cache)


def run_avg(x, dout_seed, geom):
    _, k, s, p, ceil_mode, include, override = geom
    out, cache = kernels.avgpool2d_forward(x, k, s, p, ceil_mode, include, override)
    dout = np.random.default_rng(dout_seed).standard_normal(out.shape).astype(x.dtype)
    return out, kernels.avgpool2d_backward(dout, cache)


def run_adaptive(x, dout_seed, size):
    out, cache = kernels.adaptive_avgpool2d_forward(x, size)
    dout = np.random.default_rng(dout_seed).standard_normal(out.shape).astype(x.dtype)
    return out, kernels.adaptive_avgpool2d_backward(dout, cache)
