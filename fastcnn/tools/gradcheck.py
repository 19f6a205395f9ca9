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

from fastcnn.train.loop import loss_and_gradients

__all__ = ["numeric_gradient", "relative_error", "GradientCheckError", "check_layer",
           "check_loss", "check_regularizer", "check_model", "smooth_input"]


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


# ----------------------------------------------------------------------------
# Checks through the public layer / loss / model API.
# ----------------------------------------------------------------------------

class GradientCheckError(AssertionError):
    """Analytic and numeric gradients disagree; the message is the full report."""


def _scaled_error(analytic: np.ndarray, numeric: np.ndarray, floor: float) -> tuple[float, tuple]:
    """Worst elementwise ``|a - n| / max(|a| + |n|, floor)`` and where it is."""
    a = np.asarray(analytic, dtype=np.float64)
    n = np.asarray(numeric, dtype=np.float64)
    if a.size == 0:
        return 0.0, ()
    errors = np.abs(a - n) / np.maximum(np.abs(a) + np.abs(n), floor)
    worst = np.unravel_index(int(np.argmax(errors)), errors.shape)
    return float(errors[worst]), tuple(int(i) for i in worst)


def _report(where: str, results: dict, details: dict, tol: float) -> dict:
    bad = {k: v for k, v in results.items() if v > tol}
    if bad:
        lines = [f"{where}: analytic and numeric gradients disagree (tolerance {tol:g}):"]
        for key, err in results.items():
            idx, a, n = details[key]
            mark = "FAIL" if err > tol else "ok  "
            lines.append(f"  {mark} {key:<32} max rel. error {err:.3e}"
                         + (f" at {idx}: analytic {a:.6e}, numeric {n:.6e}" if err > tol else ""))
        raise GradientCheckError("\n".join(lines))
    return results


def _random_layers(layer):
    """Layers under ``layer`` (itself included) that draw random numbers (Dropout)."""
    todo, found = [layer], []
    while todo:
        current = todo.pop()
        if hasattr(current, "rng"):
            found.append(current)
        todo.extend(current.sublayers())
    return found


def _replaying(layers, fn):
    """Wrap ``fn`` so every call sees the same random numbers (a fixed dropout mask)."""
    saved = [(layer.rng, layer.rng.bit_generator.state) for layer in layers]

    def wrapped():
        for rng, state in saved:
            rng.bit_generator.state = state
        return fn()
    return wrapped


def _compare(where, f, targets, dout, h, tol):
    """``targets``: name -> (array perturbed in place, analytic gradient).

    Round-off makes a central difference noisy by about ``eps * sum|f * dout| / h``
    (absolute). Elements whose true gradient is smaller than that (e.g. the bias of
    a conv followed by batch norm: exactly 0) cannot be judged relatively, so the
    denominator's floor is ``noise / tol``: there the check is an absolute one,
    ``|a - n| <= noise``.
    """
    magnitude = float(np.sum(np.abs(np.asarray(f(), dtype=np.float64) * dout)))
    noise = 10 * np.finfo(np.float64).eps * max(magnitude, 1.0) / h
    floor = max(1e-8, noise / tol)
    results, details = {}, {}
    for key, (array, analytic) in targets.items():
        numeric = numeric_gradient(f, array, dout, h=h)
        err, idx = _scaled_error(analytic, numeric, floor)
        results[key] = err
        details[key] = (idx, float(analytic[idx]) if idx else 0.0,
                        float(numeric[idx]) if idx else 0.0)
    return _report(where, results, details, tol)


def smooth_input(shape, seed: int = 0, gap: float | None = None) -> np.ndarray:
    """A float64 array of distinct values spaced by ``gap`` (default ``min(0.05, 4/size)``,
    so they lie in about [-2, 2]), none closer than ``gap / 2`` to 0, in random order.

    Central differences with ``h << gap`` then never cross a ReLU kink or change the
    winner of a max-pool window or a maxout unit (Caffe's "kink" lesson).
    """
    size = int(np.prod(shape))
    gap = min(0.05, 4.0 / max(size, 1)) if gap is None else gap
    values = (np.arange(size) - size // 2 + 0.5) * gap       # ..., -gap/2, +gap/2, ...
    return np.random.default_rng(seed).permutation(values).reshape(shape)


def check_layer(layer, x, training: bool = True, seed: int = 0, h: float = 1e-6,
                tol: float = 1e-6) -> dict:
    """Gradient-check ``layer.backward`` against central differences, in float64.

    Parameters
    ----------
    layer : Layer
        Built in float64, or not yet built (then it is built for ``x``'s shape in float64).
    x : ndarray (float64) or a full input shape tuple ``(N, ...)`` (random normal input)
    training : bool
        Mode of the forward pass (dropout masks are replayed, so they stay fixed).

    Returns ``{"input": err, "<param name>": err, ...}`` (max relative errors) and raises
    :class:`GradientCheckError` with a per-array report if any exceeds ``tol``.
    The upstream gradient ``dout`` is random (never all ones, which hides bugs).
    """
    rng = np.random.default_rng(seed)
    if isinstance(x, tuple):
        x = rng.standard_normal(x)
    if x.dtype != np.float64:
        raise TypeError(f"check_layer: x must be float64; got {x.dtype}.")
    if not layer.built:
        layer.build(x.shape[1:], dtype=np.float64)
    elif layer.dtype != np.float64:
        raise TypeError(f"check_layer: layer must be built with dtype float64 (got "
                        f"{layer.dtype}). Hint: layer.build(input_shape, dtype=np.float64).")
    x = x.copy()
    forward = _replaying(_random_layers(layer), lambda: layer.forward(x, training=training))
    out = forward()
    dout = rng.standard_normal(out.shape)
    layer.zero_grad()
    forward()
    dx = layer.backward(dout)
    params = layer.parameters()
    targets = {"input": (x, dx.copy())}
    for i, p in enumerate(params):
        key = p.name if p.name not in targets else f"{p.name}#{i}"
        targets[key] = (p.data, p.grad.copy())
    return _compare(f"check_layer({type(layer).__name__} '{layer.name}')",
                    lambda: forward().copy(), targets, dout, h, tol)


def check_loss(loss, pred, y, h: float = 1e-6, tol: float = 1e-6) -> dict:
    """Gradient-check ``loss.backward()`` (d loss / d pred) in float64.
    Returns ``{"pred": err}``; raises :class:`GradientCheckError` above ``tol``."""
    pred = np.array(pred, dtype=np.float64)
    loss.forward(pred, y)
    analytic = loss.backward().copy()
    return _compare(f"check_loss({type(loss).__name__})",
                    lambda: np.float64(loss.forward(pred, y)), {"pred": (pred, analytic)},
                    1.0, h, tol)


def check_regularizer(regularizer, w, h: float = 1e-6, tol: float = 1e-6) -> dict:
    """Gradient-check ``penalty, grad = regularizer(w)`` in float64. Returns ``{"w": err}``."""
    w = np.array(w, dtype=np.float64)
    _, analytic = regularizer(w)
    return _compare(f"check_regularizer({regularizer!r})",
                    lambda: np.float64(regularizer(w)[0]), {"w": (w, np.array(analytic))},
                    1.0, h, tol)


def check_model(model, x, y, training: bool = True, h: float = 1e-6, tol: float = 1e-6) -> dict:
    """Gradient-check a compiled float64 ``Sequential``: the total loss (loss +
    regularization penalties, with the softmax/cross-entropy fusion the model uses)
    against every parameter and the input. Returns the errors by name; raises
    :class:`GradientCheckError` above ``tol``."""
    if model.dtype != np.float64:
        raise TypeError(f"check_model: the model must be float64 (got {model.dtype}). Hint: "
                        f"Sequential(..., dtype='float64').")
    x = np.array(x, dtype=np.float64)
    randoms = [r for layer in model.layers for r in _random_layers(layer)]
    state = {}

    def total_loss():
        return np.float64(loss_and_gradients(model, x, y, training=training, state=state)[0])

    total_loss = _replaying(randoms, total_loss)
    total_loss()
    targets = {"input": (x, state["dx"].copy())}
    targets.update({p.name: (p.data, p.grad.copy()) for p in model.parameters()})
    return _compare(f"check_model({model.name})", total_loss, targets, 1.0, h, tol)
