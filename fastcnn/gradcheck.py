"""Numeric gradient checking (central differences, float64).

The core is :func:`numeric_gradient`: the derivative of the scalar
``L(x) = sum(f(x) * dout)`` with respect to every element of ``x``, by

.. math::  \\frac{\\partial L}{\\partial x_i} \\approx \\frac{L(x + h e_i) - L(x - h e_i)}{2h}

whose error is O(h^2). With a random ``dout`` (never all ones, which hides
bugs whose errors cancel, such as a batch-norm backward missing a term), this is
the vector-Jacobian product that every ``backward`` computes analytically.
:func:`relative_error` compares the two the way CS231n does.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

__all__ = ["numeric_gradient", "relative_error"]


def numeric_gradient(f: Callable[[], np.ndarray], x: np.ndarray, dout, h: float = 1e-6,
                     indices=None) -> np.ndarray:
    """Central-difference gradient of ``sum(f() * dout)`` with respect to ``x``.

    Parameters
    ----------
    f : callable with no arguments
        Recomputes the output from the *current contents* of ``x`` (and of any other
        arrays it closes over). ``x`` is perturbed in place and restored.
    x : ndarray, float64
        The input to differentiate with respect to.
    dout : ndarray or float
        Upstream gradient, broadcastable to ``f()``'s output.
    h : float
        Step size (1e-6 suits float64 values of order one).
    indices : iterable of index tuples, optional
        Only these elements (the rest of the result stays 0); default: every element.

    Returns
    -------
    ndarray shaped like ``x``.
    """
    if x.dtype != np.float64:
        raise TypeError(f"numeric_gradient: x must be float64 (float32 steps are too "
                        f"coarse for central differences); got {x.dtype}.")
    grad = np.zeros_like(x)
    for idx in (np.ndindex(x.shape) if indices is None else indices):
        saved = x[idx]
        x[idx] = saved + h
        plus = np.sum(f() * dout)
        x[idx] = saved - h
        minus = np.sum(f() * dout)
        x[idx] = saved
        grad[idx] = (plus - minus) / (2 * h)
    return grad


def relative_error(analytic: np.ndarray, numeric: np.ndarray, floor: float = 1e-8) -> float:
    """``max |a - n| / max(|a| + |n|, floor)``, elementwise; < 1e-6 means they agree
    (for float64 and a smooth function)."""
    analytic = np.asarray(analytic, dtype=np.float64)
    numeric = np.asarray(numeric, dtype=np.float64)
    denom = np.maximum(np.abs(analytic) + np.abs(numeric), floor)
    return float(np.max(np.abs(analytic - numeric) / denom)) if analytic.size else 0.0
