"""Test helpers: naive loop oracles, and re-exports of the one tolerance table.

The oracles are plain nested loops over every index, written straight from the
formulas of docs/architecture.md with no vectorisation trick, so that a reader can check
them by eye. They are slow and meant for tiny shapes only; they check the NumPy
reference (``fastcnn.kernels.reference``), which in turn checks the fast backends.

Tolerances and :func:`assert_close` live in :mod:`fastcnn.testing` (public, so
users get the same ones); tests import them from here or from there, never
hand-pick numbers.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest

import fastcnn
from fastcnn.kernels import _dispatch as _backend
from fastcnn.tools.testing import (  # noqa: F401  (re-exported: tests use H.assert_close, ...)
    BATCHNORM_CASES,
    CONV_CASES,
    GRADCHECK_MAX_REL_ERROR,
    IM2COL_CASES,
    POOL_CASES,
    TOLERANCES,
    assert_close,
    compare,
    distinct_values,
    tolerance,
)

#: The fast backends, each with its marker (deselect with e.g. -m "not requires_numba").
FAST_BACKENDS = [
    pytest.param("cython", marks=pytest.mark.requires_cython, id="cython"),
    pytest.param("numba", marks=pytest.mark.requires_numba, id="numba"),
]



def skip_unless_available(name: str) -> None:
    """Skip the running test, with the reason, when backend ``name`` cannot be used."""
    if not _backend.is_available(name):
        reason = _backend.unavailable_reason(name)
        pytest.skip(f"backend {name!r} unavailable: {reason}")


def case_ids(cases):
    return [case.name for case in cases]


def pads(padding):
    """``p``, ``(ph, pw)`` or ``((t, b), (l, r))`` -> ``(t, b, l, r)``."""
    if isinstance(padding, int):
        return padding, padding, padding, padding
    if isinstance(padding[0], (tuple, list)):
        (t, b), (l, r) = padding
        return t, b, l, r
    return padding[0], padding[0], padding[1], padding[1]


def pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def out_size(size, k, s, before, after):
    return (size + before + after - k) // s + 1


# ------------------------------------------------------------------ oracles


def naive_im2col(x, kh, kw, stride, padding):
    n_, c_, h_, w_ = x.shape
    sh, sw = pair(stride)
    t, b, l, r = pads(padding)
    oh, ow = out_size(h_, kh, sh, t, b), out_size(w_, kw, sw, l, r)
    cols = np.zeros((c_ * kh * kw, n_ * oh * ow), dtype=x.dtype)
    for c in range(c_):
        for i in range(kh):
            for j in range(kw):
                for n in range(n_):
                    for p in range(oh):
                        for q in range(ow):
                            row, col = p * sh + i - t, q * sw + j - l
                            if 0 <= row < h_ and 0 <= col < w_:
                                cols[(c * kh + i) * kw + j, (n * oh + p) * ow + q] = \
                                    x[n, c, row, col]
    return cols


def naive_col2im(cols, x_shape, kh, kw, stride, padding):
    n_, c_, h_, w_ = x_shape
    sh, sw = pair(stride)
    t, b, l, r = pads(padding)
    oh, ow = out_size(h_, kh, sh, t, b), out_size(w_, kw, sw, l, r)
    x = np.zeros(x_shape, dtype=cols.dtype)
    for c in range(c_):
        for i in range(kh):
            for j in range(kw):
                for n in range(n_):
                    for p in range(oh):
                        for q in range(ow):
                            row, col = p * sh + i - t, q * sw + j - l
                            if 0 <= row < h_ and 0 <= col < w_:
                                x[n, c, row, col] += cols[(c * kh + i) * kw + j,
                                                          (n * oh + p) * ow + q]
    return x


def naive_conv_forward(x, w, b, stride, padding):
    """``out[n, f, p, q] = b[f] + sum_{c,i,j} x[n, c, p*SH + i - PT, q*SW + j - PL] w[f, c, i, j]``."""
    n_, c_, h_, w_ = x.shape
    f_, _, kh, kw = w.shape
    sh, sw = pair(stride)
    t, bo, l, r = pads(padding)
    oh, ow = out_size(h_, kh, sh, t, bo), out_size(w_, kw, sw, l, r)
    out = np.zeros((n_, f_, oh, ow), dtype=x.dtype)
    for n in range(n_):
        for f in range(f_):
            for p in range(oh):
                for q in range(ow):
                    total = b[f]
                    for c in range(c_):
                        for i in range(kh):
                            for j in range(kw):
                                row, col = p * sh + i - t, q * sw + j - l
                                if 0 <= row < h_ and 0 <= col < w_:
                                    total += x[n, c, row, col] * w[f, c, i, j]
                    out[n, f, p, q] = total
    return out


def naive_conv_backward(dout, x, w, stride, padding):
    """Each term ``x[.] * w[.]`` of the forward sum sends ``dout * w`` to dx and
    ``dout * x`` to dw; db sums dout."""
    n_, c_, h_, w_ = x.shape
    f_, _, kh, kw = w.shape
    sh, sw = pair(stride)
    t, _, l, _ = pads(padding)
    _, _, oh, ow = dout.shape
    dx, dw, db = np.zeros_like(x), np.zeros_like(w), np.zeros(f_, dtype=x.dtype)
    for n in range(n_):
        for f in range(f_):
            for p in range(oh):
                for q in range(ow):
                    g = dout[n, f, p, q]
                    db[f] += g
                    for c in range(c_):
                        for i in range(kh):
                            for j in range(kw):
                                row, col = p * sh + i - t, q * sw + j - l
                                if 0 <= row < h_ and 0 <= col < w_:
                                    dx[n, c, row, col] += g * w[f, c, i, j]
                                    dw[f, c, i, j] += g * x[n, c, row, col]
    return dx, dw, db


def naive_maxpool_forward(x, size, stride, padding):
    """Returns ``out`` and ``argmax`` (flat ``row*W + col``). Scans each window in
    row-major order; the first maximum wins ties; the first NaN wins and stays."""
    n_, c_, h_, w_ = x.shape
    kh, kw = pair(size)
    sh, sw = pair(stride)
    t, b, l, r = pads(padding)
    oh, ow = out_size(h_, kh, sh, t, b), out_size(w_, kw, sw, l, r)
    out = np.zeros((n_, c_, oh, ow), dtype=x.dtype)
    argmax = np.zeros((n_, c_, oh, ow), dtype=np.int64)
    for n in range(n_):
        for c in range(c_):
            for p in range(oh):
                for q in range(ow):
                    best, where = None, -1
                    for i in range(kh):
                        for j in range(kw):
                            row, col = p * sh + i - t, q * sw + j - l
                            if not (0 <= row < h_ and 0 <= col < w_):
                                continue  # padding never wins
                            v = x[n, c, row, col]
                            if best is None or (not math.isnan(best)
                                                and (math.isnan(v) or v > best)):
                                best, where = v, row * w_ + col
                    out[n, c, p, q] = best
                    argmax[n, c, p, q] = where
    return out, argmax


def naive_maxpool_backward(dout, argmax, x_shape):
    dx = np.zeros(x_shape, dtype=dout.dtype)
    n_, c_, _, w_ = x_shape
    for n in range(n_):
        for c in range(c_):
            for p in range(dout.shape[2]):
                for q in range(dout.shape[3]):
                    k = int(argmax[n, c, p, q])
                    dx[n, c, k // w_, k % w_] += dout[n, c, p, q]
    return dx


def _channel_items(shape, c):
    """Every index of an (N, C) or (N, C, H, W) array that belongs to channel c."""
    rest = [range(s) for s in shape[2:]]
    for n in range(shape[0]):
        for tail in np.ndindex(*[len(r) for r in rest]) if rest else [()]:
            yield (n, c) + tuple(tail)


def naive_batchnorm_forward(x, gamma, beta, running_mean, running_var, training,
                            momentum, eps):
    """Returns ``out, new_running_mean, new_running_var`` (the inputs are not touched)."""
    out = np.zeros_like(x)
    new_mean, new_var = running_mean.copy(), running_var.copy()
    for c in range(x.shape[1]):
        items = list(_channel_items(x.shape, c))
        if training:
            m = len(items)
            mean = sum(float(x[idx]) for idx in items) / m
            var = sum((float(x[idx]) - mean) ** 2 for idx in items) / m
            new_mean[c] = momentum * running_mean[c] + (1 - momentum) * mean
            new_var[c] = momentum * running_var[c] + (1 - momentum) * var
        else:
            mean, var = float(running_mean[c]), float(running_var[c])
        for idx in items:
            out[idx] = gamma[c] * (x[idx] - mean) / math.sqrt(var + eps) + beta[c]
    return out, new_mean, new_var


def naive_batchnorm_backward(dout, x, gamma, running_mean, running_var, training, eps):
    """Textbook (unfused) chain rule through mean and variance, channel by channel:
    dxhat = dout*gamma; dvar = sum(dxhat*(x-mu)) * -1/2 (var+eps)^-3/2;
    dmu = -sum(dxhat)/std; dx = dxhat/std + dvar*2(x-mu)/M + dmu/M."""
    dx = np.zeros_like(x)
    dgamma = np.zeros_like(gamma)
    dbeta = np.zeros_like(gamma)
    for c in range(x.shape[1]):
        items = list(_channel_items(x.shape, c))
        m = len(items)
        if training:
            mean = sum(float(x[idx]) for idx in items) / m
            var = sum((float(x[idx]) - mean) ** 2 for idx in items) / m
        else:
            mean, var = float(running_mean[c]), float(running_var[c])
        std = math.sqrt(var + eps)
        for idx in items:
            dbeta[c] += dout[idx]
            dgamma[c] += dout[idx] * (x[idx] - mean) / std
        if not training:
            for idx in items:
                dx[idx] = dout[idx] * gamma[c] / std
            continue
        dvar = sum(dout[idx] * gamma[c] * (x[idx] - mean) for idx in items) * -0.5 * std ** -3
        dmu = -sum(dout[idx] * gamma[c] for idx in items) / std
        for idx in items:
            dx[idx] = (dout[idx] * gamma[c] / std + dvar * 2 * (x[idx] - mean) / m + dmu / m)
    return dx, dgamma, dbeta


def subprocess_env(**extra) -> dict:
    """Environment for a child ``python`` that must import the same fastcnn as this test
    process (an install, or a source tree run in place): its folder goes first on
    PYTHONPATH. ``extra`` adds or overrides variables."""
    package_parent = str(Path(fastcnn.__file__).resolve().parents[1])
    paths = [package_parent] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths), **extra}
