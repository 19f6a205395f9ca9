"""The divergence guard of ``fit``: notice an exploding loss, find where it started.

When a batch loss is NaN/Inf or exceeds ``EXPLOSION_FACTOR`` (3) times a reference loss,
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
    """``explosion_guard`` argument -> ``"warn"``, ``"raise"`` or ``None`` (off)."""
    if value in (True, False, "warn", "raise"):
        return {True: "warn", False: None}.get(value, value)
    raise ValueError(f"{where}: explosion_guard must be True, False, 'warn' or 'raise'; "
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


def _last_is_fused(model, i: int) -> bool:
    return model.fused_softmax and i == len(model.layers) - 1


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
    """
    layers = model.layers
    h = x
    for i, layer in enumerate(layers):
        bad = [p.name for p in layer.parameters() if not np.isfinite(p.data).all()]
        if bad:
            return {"layer": layer.name, "kind": "weights",
                    "detail": f"parameters {bad} hold NaN/Inf"}
        h_in = h
        h = layer.forward_logits(h, True) if _last_is_fused(model, i) else layer.forward(h, True)
        if not np.isfinite(h).all():
            peak = float(np.max(np.abs(h_in))) if h_in.size else 0.0
            return {"layer": layer.name, "kind": "activations",
                    "detail": f"{type(layer).__name__}, input max |x| = {peak:.3g}, "
                              f"{int(np.count_nonzero(~np.isfinite(h)))} non-finite outputs"}
    loss_fn = model.compiled_loss
    loss = loss_fn.forward(h, y)
    model.zero_grad()
    d = loss_fn.backward()
    if not math.isfinite(loss) or not np.isfinite(d).all():
        return {"layer": layers[-1].name, "kind": "activations",
                "detail": f"the loss itself is {loss} on finite outputs"}
    for i in reversed(range(len(layers))):
        layer = layers[i]
        d = layer.backward_logits(d) if _last_is_fused(model, i) else layer.backward(d)
        bad = [p.name for p in layer.parameters() if not np.isfinite(p.grad).all()]
        if bad or not np.isfinite(d).all():
            what = f"parameter gradients {bad}" if bad else "its input gradient"
            return {"layer": layer.name, "kind": "gradients",
                    "detail": f"{type(layer).__name__}, {what} non-finite"}
    best, best_ratio = layers[-1].name, -1.0
    for layer in layers:
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
