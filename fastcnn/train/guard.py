"""The divergence guard of ``fit``: notice an exploding loss, find where it started.

When a batch loss is NaN/Inf (or, with ``explosion_guard="strict"``/``"raise"``, exceeds
``EXPLOSION_FACTOR`` (3) times a reference loss; by default that only warns once),
``fit`` does not apply the update, re-runs the batch layer by layer with
:func:`locate_nonfinite` to find the first layer whose weights, activations or gradients
are non-finite, and stops. The reference is the first batch's loss in this ``fit``, or, for
a softmax cross-entropy, the chance-level loss ``ln(C)`` when that is larger
(:func:`reference_floor`): a model that is already trained (a second ``fit``) starts with a
tiny loss whose batch-to-batch noise easily triples, while a real explosion quickly passes
``3 ln(C)``.
"""

from __future__ import annotations

import math

import numpy as np

from fastcnn.nn.losses import CategoricalCrossentropy, SparseCategoricalCrossentropy

__all__ = ["EXPLOSION_FACTOR", "TrainingDivergedError", "check_guard", "reference_floor",
           "locate_nonfinite", "diverged_report"]

#: the guard stops when a batch loss exceeds this multiple of the reference loss
EXPLOSION_FACTOR = 3.0


class TrainingDivergedError(RuntimeError):
    """Raised by ``fit(..., explosion_guard="raise")`` when the loss explodes.

    Attributes
    ----------
    report : dict
        See ``History.diverged``.
    history : History
        The completed epochs.
    """

    def __init__(self, report: dict, history=None):
        super().__init__(report["message"])
        self.report = report
        self.history = history


def check_guard(where: str, value):
    """``explosion_guard`` argument -> ``"nonfinite"`` (True: stop on NaN/Inf, warn above
    3x), ``"strict"`` (stop above 3x too), ``"raise"`` (strict, raising) or ``None`` (off).
    ``"warn"``, the old name of the strict stop with a warning, still means "strict"."""
    if value is True or value is False or value in ("strict", "raise", "warn"):
        return {True: "nonfinite", False: None, "warn": "strict"}.get(value, value)
    raise ValueError(f"{where}: explosion_guard must be True, False, 'strict' or 'raise'; "
                     f"got {value!r}.")


def reference_floor(model) -> float:
    """``ln(C)`` for a (sparse) categorical cross-entropy on C classes, else 0."""
    if isinstance(model.loss, (SparseCategoricalCrossentropy, CategoricalCrossentropy)):
        classes = model.output_shape[-1] if model.output_shape else 0
        return math.log(classes) if classes and classes > 1 else 0.0
    return 0.0


def _norm(a: np.ndarray) -> float:
    flat = np.asarray(a, dtype=np.float64).reshape(-1)
    return math.sqrt(float(np.dot(flat, flat)))


class _Found(Exception):
    """Carries the first problem out of the graph walk of :func:`locate_nonfinite`."""

    def __init__(self, layer, kind, detail):
        super().__init__(detail)
        self.report = {"layer": layer.name, "kind": kind, "detail": detail}


def _peak(value) -> float:
    arrays = value if isinstance(value, list) else [value]
    return max((float(np.max(np.abs(a))) for a in arrays if a.size), default=0.0)


def _check_forward(layer, layer_input, out) -> None:
    """Observer of the forward walk: the layer's weights, then its output."""
    bad = [p.name for p in layer.parameters() if not np.isfinite(p.data).all()]
    if bad:
        raise _Found(layer, "weights", f"parameters {bad} hold NaN/Inf")
    if not np.isfinite(out).all():
        raise _Found(layer, "activations",
                     f"{type(layer).__name__}, input max |x| = {_peak(layer_input):.3g}, "
                     f"{int(np.count_nonzero(~np.isfinite(out)))} non-finite outputs")


def _check_backward(layer, input_grads) -> None:
    """Observer of the backward walk: the layer's parameter and input gradients."""
    bad = [p.name for p in layer.parameters() if not np.isfinite(p.grad).all()]
    bad_dx = any(d is not None and not np.isfinite(d).all() for d in input_grads)
    if bad or bad_dx:
        what = f"parameter gradients {bad}" if bad else "its input gradient"
        raise _Found(layer, "gradients", f"{type(layer).__name__}, {what} non-finite")


# ----------------------------------------------------------------- locate_nonfinite
@np.errstate(all="ignore")        # the overflows are what we are looking for
def locate_nonfinite(model, x, y) -> dict:
    """Forward then backward one batch, one layer at a time, checking every array.

    Returns ``{"layer": name, "kind": k, "detail": str}`` where ``k`` is the first
    problem found, in this order: ``"weights"`` (a layer's parameters hold NaN/Inf),
    ``"activations"`` (its output is non-finite while its input was finite),
    ``"gradients"`` (walking backward from the loss, the first layer whose input
    gradient or parameter gradients are non-finite). When everything is finite,
    ``kind`` is None and ``layer`` is the layer with the largest
    ``||dL/dw|| / ||w||`` (the one a too-large step hurts most). Runs in training mode
    (batch-norm statistics see one more batch); parameter gradients are overwritten.
    Works on any model graph: the layers are visited in the graph's order (an
    observer passed to the model's forward/backward), ``x`` is an NCHW batch of the
    model's dtype.
    """
    try:
        out = model.forward_for_loss(x, True, observe=_check_forward)
        loss_fn = model.compiled_loss
        loss = loss_fn.forward(out, y)
        model.zero_grad()
        d = loss_fn.backward()
        if not math.isfinite(loss) or not np.isfinite(d).all():
            return {"layer": model._graph.nodes[-1].name, "kind": "activations",
                    "detail": f"the loss itself is {loss} on finite outputs"}
        model.backward_from_loss(d, need_dx=True, observe=_check_backward)
    except _Found as found:
        return found.report
    best, best_ratio = model._graph.nodes[-1].name, -1.0
    for layer in model._graph.nodes:
        for p in layer.parameters():
            w = _norm(p.data)
            ratio = _norm(p.grad) / w if w > 0 else 0.0
            if ratio > best_ratio:
                best, best_ratio = layer.name, ratio
    return {"layer": best, "kind": None, "detail": f"||dL/dw|| / ||w|| = {best_ratio:.3g}"}


def diverged_report(model, xb, yb, epoch, batch, loss, initial) -> dict:
    reason = ("non-finite loss" if not math.isfinite(loss) else
              f"loss exceeded {EXPLOSION_FACTOR:g}x the reference loss {initial:.4g}")
    where = locate_nonfinite(model, xb, yb)
    lr = model.optimizer.current_learning_rate()
    if where["kind"] is not None:
        blame = (f"the first layer with non-finite {where['kind']} is {where['layer']!r} "
                 f"({where['detail']})")
    else:
        blame = (f"no weight, activation or gradient is non-finite yet; the largest "
                 f"gradient relative to its weights is in layer {where['layer']!r} "
                 f"({where['detail']})")
    message = (f"fit: training diverged at epoch {epoch + 1}, batch {batch + 1}: loss = "
               f"{loss:.4g} ({reason}); {blame}. The update was not applied and training "
               f"stopped; the history of the completed epochs is kept. Hint: lower the "
               f"learning rate (now {lr:.3g}), e.g. by 10x.")
    return {"epoch": epoch, "batch": batch, "loss": float(loss),
            "initial_loss": None if initial is None else float(initial), "reason": reason,
            "layer": where["layer"], "kind": where["kind"], "detail": where["detail"],
            "message": message}
