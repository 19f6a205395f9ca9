"""The training loop behind ``Sequential.fit`` / ``evaluate`` / ``predict``.

One training step, in the order CS231n teaches it::

    zero the gradients
    out   = model forward (training=True)            logits if softmax is fused
    loss  = loss(out, y) + sum of regularization penalties
    dout  = d loss / d out                           (p - y) / N when fused
    model backward(dout)                             accumulates every Parameter.grad
    optimizer.step(parameters)                       updates the trainable ones

Kept deliberately plain: an epoch is a loop over mini-batches, and the per-epoch
averages go into a :class:`History` exactly as Keras reports them.
"""

from __future__ import annotations

import numpy as np

__all__ = ["History", "loss_and_gradients", "train_step", "fit", "evaluate", "predict",
           "regularization_penalty"]


class History:
    """What ``fit`` returns: ``history.history["loss"][epoch]`` etc. (Keras' shape).

    Attributes
    ----------
    history : dict[str, list[float]]
        Per-epoch averages: ``loss``, each metric, and ``val_*`` with validation data.
    epoch : list[int]
        Epoch indices (0-based).
    params : dict
        ``batch_size``, ``epochs``, ``steps`` (mini-batches per epoch), ``samples``.
    """

    def __init__(self, params: dict | None = None):
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []
        self.params = dict(params or {})

    def append(self, epoch: int, logs: dict) -> None:
        self.epoch.append(epoch)
        for key, value in logs.items():
            self.history.setdefault(key, []).append(float(value))

    def __repr__(self):
        last = {k: round(v[-1], 4) for k, v in self.history.items()}
        return f"History(epochs={len(self.epoch)}, last={last})"


def regularization_penalty(model, add_gradients: bool) -> float:
    """Sum of ``R(w)`` over parameters with a regularizer; with ``add_gradients``
    ``dR/dw`` is also added to each ``p.grad``."""
    total = 0.0
    for p in model.parameters():
        reg = p.regularizer
        if reg is None:
            continue
        if add_gradients and hasattr(reg, "apply_"):
            total += reg.apply_(p)                 # adds dR/dw to p.grad in place
        else:
            penalty, grad = reg(p.data)
            total += penalty
            if add_gradients:
                p.grad += grad
    return float(total)


def loss_and_gradients(model, x, y, training: bool = True, state: dict | None = None):
    """Forward, loss (+ penalties) and backward for one batch; no parameter update.

    Returns ``(loss, out)`` where ``out`` is what the loss saw (logits when softmax is
    fused). Fills ``state["dx"]`` (d loss / d x) when a dict is given.
    """
    model.zero_grad()
    out = model.forward_for_loss(x, training=training)
    loss_fn = model.compiled_loss
    loss = loss_fn.forward(out, y)
    loss += regularization_penalty(model, add_gradients=True)
    dx = model.backward_from_loss(loss_fn.backward())
    if state is not None:
        state["dx"] = dx
    return loss, out


def train_step(model, x, y):
    """One optimizer step on one mini-batch; returns ``(loss, out)``."""
    loss, out = loss_and_gradients(model, x, y, training=True)
    model.optimizer.step(model.parameters())
    return loss, out


def _check_xy(where: str, model, x, y):
    if not isinstance(x, np.ndarray) or x.dtype != model.dtype:
        got = x.dtype if isinstance(x, np.ndarray) else type(x).__name__
        raise TypeError(f"{where}: x must be a numpy array of dtype {model.dtype} (the "
                        f"model's dtype); got {got}. Hint: x.astype(np.{model.dtype}).")
    if y is not None and len(y) != len(x):
        raise ValueError(f"{where}: x and y must hold the same number of samples; got "
                         f"len(x)={len(x)}, len(y)={len(y)}.")
    if len(x) == 0:
        raise ValueError(f"{where}: x must hold at least one sample; got x.shape={x.shape}.")


def _check_batch_size(where: str, batch_size) -> int:
    from ._validation import check_positive_int
    return check_positive_int(where, "batch_size", batch_size)


def fit(model, x, y, batch_size=32, epochs=1, validation_data=None, shuffle=True,
        verbose=1, seed=None) -> History:
    """Train ``model`` (compiled) on ``(x, y)``; see :meth:`Sequential.fit`."""
    from . import random as _random
    from ._validation import check_nonnegative_int
    where = "Sequential.fit"
    _check_xy(where, model, x, y)
    batch_size = _check_batch_size(where, batch_size)
    epochs = check_nonnegative_int(where, "epochs", epochs)
    y = np.asarray(y)
    rng = _random.get_rng(seed)
    n = len(x)
    history = History({"batch_size": batch_size, "epochs": epochs, "samples": n,
                       "steps": -(-n // batch_size)})
    model.history = history
    for epoch in range(epochs):
        order = rng.permutation(n) if shuffle else None
        totals = {"loss": 0.0, **{name: 0.0 for name, _ in model.compiled_metrics}}
        for start in range(0, n, batch_size):
            if order is None:
                xb, yb = x[start:start + batch_size], y[start:start + batch_size]
            else:
                idx = order[start:start + batch_size]
                xb, yb = x[idx], y[idx]
            loss, out = train_step(model, xb, yb)
            totals["loss"] += loss * len(xb)
            for name, metric in model.compiled_metrics:
                totals[name] += metric(out, yb) * len(xb)
        logs = {key: value / n for key, value in totals.items()}
        if validation_data is not None:
            x_val, y_val = validation_data
            values = evaluate(model, x_val, y_val, batch_size=batch_size, as_dict=True)
            logs.update({f"val_{key}": value for key, value in values.items()})
        history.append(epoch, logs)
        if verbose:
            shown = " - ".join(f"{key}: {value:.4f}" for key, value in logs.items())
            print(f"Epoch {epoch + 1}/{epochs} - {shown}")
    return history


def evaluate(model, x, y, batch_size=32, as_dict: bool = False):
    """Loss (+ penalties) and metrics over ``(x, y)`` in inference mode.

    Returns ``[loss, metric1, ...]`` (or the loss alone without metrics), or a dict.
    """
    where = "Sequential.evaluate"
    _check_xy(where, model, x, y)
    batch_size = _check_batch_size(where, batch_size)
    y = np.asarray(y)
    totals = {"loss": 0.0, **{name: 0.0 for name, _ in model.compiled_metrics}}
    for start in range(0, len(x), batch_size):
        xb, yb = x[start:start + batch_size], y[start:start + batch_size]
        out = model.forward_for_loss(xb, training=False)
        totals["loss"] += model.compiled_loss.forward(out, yb) * len(xb)
        for name, metric in model.compiled_metrics:
            totals[name] += metric(out, yb) * len(xb)
    values = {key: value / len(x) for key, value in totals.items()}
    values["loss"] += regularization_penalty(model, add_gradients=False)
    if as_dict:
        return values
    return list(values.values()) if model.compiled_metrics else values["loss"]


def predict(model, x, batch_size=32) -> np.ndarray:
    """Model outputs for ``x`` in inference mode (probabilities after a Softmax)."""
    where = "Sequential.predict"
    _check_xy(where, model, x, None)
    batch_size = _check_batch_size(where, batch_size)
    outs = [model.forward(x[start:start + batch_size], training=False)
            for start in range(0, len(x), batch_size)]
    return np.concatenate(outs, axis=0)
