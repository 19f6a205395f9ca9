"""One training step, in the order CS231n teaches it::

    zero the gradients
    out   = model forward (training=True)            logits if softmax is fused
    loss  = loss(out, y) + sum of regularization penalties
    dout  = d loss / d out                           (p - y) / N when fused
    model backward(dout)                             accumulates every Parameter.grad
    optimizer.step(parameters)                       updates the trainable ones

``fit`` (:mod:`fastcnn.train.loop`) repeats it over mini-batches; the diagnostics use the
pieces one by one.
"""

from __future__ import annotations

__all__ = ["regularization_penalty", "loss_and_gradients", "train_step"]


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
    fused). Fills ``state["dx"]`` (d loss / d x) when a dict is given; otherwise the
    input gradient is not computed at all (the first layer skips it).
    """
    model.zero_grad()
    out = model.forward_for_loss(x, training=training)
    loss_fn = model.compiled_loss
    loss = loss_fn.forward(out, y)
    loss += regularization_penalty(model, add_gradients=True)
    dx = model.backward_from_loss(loss_fn.backward(), need_dx=state is not None)
    if state is not None:
        state["dx"] = dx
    return loss, out


def train_step(model, x, y):
    """One optimizer step on one mini-batch; returns ``(loss, out)``."""
    loss, out = loss_and_gradients(model, x, y, training=True)
    model.optimizer.step(model.parameters())
    return loss, out
