"""Results are bitwise identical for 1 and 2 threads, on every fast backend and kernel.

Reductions (dw, db, batch-norm statistics, dgamma, dbeta) must use a partition that
does not depend on the thread count (docs/architecture.md, "Threading model"); this is
the test of that.
"""

import numpy as np
import pytest

import fastcnn
from fastcnn import kernels
from fastcnn.kernels import _common


def run_all(backend, threads, rng_seed, dtype):
    """Every kernel forward and backward on shapes big enough to be split."""
    rng = np.random.default_rng(rng_seed)
    x = rng.standard_normal((6, 8, 10, 10)).astype(dtype)
    w = (rng.standard_normal((8, 8, 3, 3)) / 8).astype(dtype)
    b = rng.standard_normal(8).astype(dtype)
    results = {}
    with fastcnn.use_backend(backend), fastcnn.use_num_threads(threads):
        out, cache = kernels.conv2d_forward(x, w, b, 1, 1)
        dout = rng.standard_normal(out.shape).astype(dtype)
        results["conv out"] = out
        results.update(zip(("conv dx", "conv dw", "conv db"), kernels.conv2d_backward(dout, cache)))
        out, cache = kernels.conv2d_forward(x, w, b, 2, ((0, 1), (1, 0)))
        results["conv s2 out"] = out
        dout = rng.standard_normal(out.shape).astype(dtype)
        results.update(zip(("conv s2 dx", "conv s2 dw", "conv s2 db"),
                           kernels.conv2d_backward(dout, cache)))
        for tag, wshape, dilation, groups in (("grouped", (8, 4, 3, 3), 2, 2),
                                              ("depthwise", (16, 1, 3, 3), 1, 8)):
            wg = (rng.standard_normal(wshape) / 3).astype(dtype)
            bg = rng.standard_normal(wshape[0]).astype(dtype)
            out, cache = kernels.conv2d_forward(x, wg, bg, 1, 2, dilation, groups)
            dout = rng.standard_normal(out.shape).astype(dtype)
            results[f"conv {tag} out"] = out
            results.update(zip((f"conv {tag} dx", f"conv {tag} dw", f"conv {tag} db"),
                               kernels.conv2d_backward(dout, cache)))
        results["im2col dilated"] = kernels.im2col(x, 3, 3, 1, 1, 2)
        results["im2col"] = cols = kernels.im2col(x, 3, 3, 2, 1)
        results["col2im"] = kernels.col2im(rng.standard_normal(cols.shape).astype(dtype),
                                           x.shape, 3, 3, 2, 1)
        for size, stride in ((2, 2), (3, 2)):
            out, cache = kernels.maxpool2d_forward(x, size, stride, 1)
            dout = rng.standard_normal(out.shape).astype(dtype)
            results[f"pool{size} out"] = out
            results[f"pool{size} dx"] = kernels.maxpool2d_backward(dout, cache)
        for shape in ((64, 130), (6, 8, 10, 10)):   # 130 features: several blocks of 64
            xb = rng.standard_normal(shape).astype(dtype)
            gamma = rng.uniform(0.5, 1.5, shape[1]).astype(dtype)
            beta = rng.standard_normal(shape[1]).astype(dtype)
            for training in (True, False):
                rm = np.zeros(shape[1], dtype)
                rv = np.ones(shape[1], dtype)
                out, cache = kernels.batchnorm_forward(xb, gamma, beta, rm, rv, training)
                tag = f"bn{len(shape)}d-{'train' if training else 'eval'}"
                results[f"{tag} out"], results[f"{tag} rm"], results[f"{tag} rv"] = out, rm, rv
                dout = rng.standard_normal(shape).astype(dtype)
                results.update(zip((f"{tag} dx", f"{tag} dgamma", f"{tag} dbeta"),
                                   kernels.batchnorm_backward(dout, cache)))
    return results


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_results_identical_for_1_and_2_threads(fast_backend, dtype, monkeypatch):
    # The backends run work below GRAIN elements on one thread whatever was asked; lower
    # the grain so these small shapes really are split across 2 threads.
    fastcnn.backend.backend_module(fast_backend)
    monkeypatch.setattr(_common, "GRAIN", 1)
    one = run_all(fast_backend, 1, 7, dtype)
    two = run_all(fast_backend, 2, 7, dtype)
    for name in one:
        np.testing.assert_array_equal(one[name], two[name],
                                      err_msg=f"{fast_backend} {name} {dtype}: 1 vs 2 threads")
