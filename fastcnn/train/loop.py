"""The training loop behind ``Sequential.fit`` / ``evaluate`` / ``predict``.

One training step, in the order CS231n teaches it::

    zero the gradients
    out   = model forward (training=True)            logits if softmax is fused
    loss  = loss(out, y) + sum of regularization penalties
    dout  = d loss / d out                           (p - y) / N when fused
    model backward(dout)                             accumulates every Parameter.grad
    optimizer.step(parameters)                       updates the trainable ones

``fit`` wraps that step in the babysitting a course teaches, at little cost:

* **Shuffling** every epoch from one seeded generator; mini-batches are gathered
  with ``np.take(..., out=)`` into two buffers allocated once per ``fit``.
* **Progress**: a tqdm bar per epoch on stderr (``verbose=1`` and stderr is a
  terminal, or ``progress=True``), and one summary line per epoch on stdout
  (``verbose`` 1 or 2): loss, metrics, validation metrics, learning rate, time.
* **History**: per-epoch ``loss``, metrics, ``val_*`` and ``lr`` (the rate in force
  at the start of the epoch), plus ``update_ratios`` and ``diverged``.
* **Explosion guard**: when a batch loss is NaN/Inf or exceeds
  ``EXPLOSION_FACTOR`` (3) times a reference loss, the update is *not* applied,
  the batch is re-run layer by layer to find the first layer whose weights,
  activations or gradients are non-finite (:func:`fastcnn.diagnostics.locate_nonfinite`),
  and training stops. The reference is the first batch's loss in this ``fit``, or,
  for a softmax cross-entropy, the chance-level loss ``ln(C)`` when that is larger:
  a model that is already trained (a second ``fit``) starts with a tiny loss whose
  batch-to-batch noise easily triples, while a real explosion quickly passes
  ``3 ln(C)``. Default (``explosion_guard=True``): a :class:`FastCNNWarning`
  with the diagnosis, ``history.diverged`` holds it, and ``fit`` returns normally
  (the history of the completed epochs is kept; checkpoints already written are never
  touched, since no epoch end is reached). ``explosion_guard="raise"`` raises
  :class:`TrainingDivergedError` instead (after ``on_train_end``), and ``False``
  turns the guard off.
* **Update/weight ratios**: every ``k`` steps (about 5 times per epoch) the weights
  are copied before the step and ``||w_after - w_before|| / ||w_before||`` is
  measured per trainable parameter. ``history.update_ratios[name]`` gets the
  epoch's median. A :class:`FastCNNWarning` (once per parameter and cause in a
  ``fit``) says when every sample of an epoch for a weight matrix/kernel lies
  below ``1e-5`` (learning rate probably too low) or above ``1e-1`` (too high);
  CS231n's rule of thumb is about ``1e-3``.
* **Callbacks** (:mod:`fastcnn.callbacks`) with Keras' hooks and
  ``model.stop_training``.
"""

from __future__ import annotations

import math
import sys
import time
import warnings

import numpy as np

from fastcnn.common.exceptions import FastCNNWarning

__all__ = ["History", "TrainingDivergedError", "loss_and_gradients", "train_step", "fit",
           "evaluate", "predict", "regularization_penalty", "EXPLOSION_FACTOR",
           "UPDATE_RATIO_LOW", "UPDATE_RATIO_HIGH"]

#: the guard stops when a batch loss exceeds this multiple of the first batch's loss
EXPLOSION_FACTOR = 3.0
#: update/weight ratios outside [LOW, HIGH] for a whole epoch trigger a warning
UPDATE_RATIO_LOW = 1e-5
UPDATE_RATIO_HIGH = 1e-1
_RATIO_SAMPLES_PER_EPOCH = 5


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


class History:
    """What ``fit`` returns: ``history.history["loss"][epoch]`` etc. (Keras' shape).

    Attributes
    ----------
    history : dict[str, list[float]]
        Per-epoch values: ``loss``, each metric, ``val_*`` with validation data, and
        ``lr`` (the learning rate at the start of the epoch).
    epoch : list[int]
        Epoch indices (0-based).
    params : dict
        ``batch_size``, ``epochs``, ``steps`` (mini-batches per epoch), ``samples``.
    epoch_times : list[float]
        Wall-clock seconds per epoch (training + validation).
    update_ratios : dict[str, list[float]]
        Per trainable parameter, the median ``||lr * update|| / ||w||`` of each epoch.
    diverged : dict or None
        Set when the explosion guard stopped training: ``epoch``, ``batch``, ``loss``,
        ``initial_loss``, ``reason``, ``layer``, ``kind`` (``"weights"``,
        ``"activations"``, ``"gradients"`` or ``None`` when everything is still finite),
        ``detail`` and ``message``.
    """

    def __init__(self, params: dict | None = None):
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []
        self.params = dict(params or {})
        self.epoch_times: list[float] = []
        self.update_ratios: dict[str, list[float]] = {}
        self.diverged: dict | None = None

    def append(self, epoch: int, logs: dict) -> None:
        self.epoch.append(epoch)
        for key, value in logs.items():
            self.history.setdefault(key, []).append(float(value))

    def to_dict(self) -> dict:
        """JSON-ready: ``{"history", "epoch", "params", "epoch_times", "update_ratios",
        "diverged"}``."""
        return {"history": self.history, "epoch": self.epoch, "params": self.params,
                "epoch_times": self.epoch_times, "update_ratios": self.update_ratios,
                "diverged": self.diverged}

    def __repr__(self):
        last = {k: round(v[-1], 4) for k, v in self.history.items()}
        flag = ", diverged" if self.diverged else ""
        return f"History(epochs={len(self.epoch)}, last={last}{flag})"


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
    from fastcnn.common.validation import check_positive_int
    return check_positive_int(where, "batch_size", batch_size)


def _check_guard(where: str, value):
    if value in (True, False, "warn", "raise"):
        return {True: "warn", False: None}.get(value, value)
    raise ValueError(f"{where}: explosion_guard must be True, False, 'warn' or 'raise'; "
                     f"got {value!r}.")


def _check_verbose(where: str, verbose) -> int:
    if verbose not in (0, 1, 2) or isinstance(verbose, float):
        raise ValueError(f"{where}: verbose must be 0, 1 or 2; got {verbose!r}.")
    return int(verbose)


class _RatioMeter:
    """Measures ``||w_after - w_before|| / ||w_before||`` on sampled steps, with weight
    snapshots in buffers allocated once."""

    def __init__(self, params, every: int):
        self.params = [p for p in params if p.trainable]
        self.every = every
        self.snaps = [np.empty_like(p.data) for p in self.params]
        self.norms = [0.0] * len(self.params)
        self.samples: dict[str, list[float]] = {p.name: [] for p in self.params}
        self.warned: set = set()

    @np.errstate(over="ignore", invalid="ignore")     # a diverging run may overflow
    def before(self) -> None:
        for i, (p, snap) in enumerate(zip(self.params, self.snaps)):
            np.copyto(snap, p.data)
            flat = snap.reshape(-1)
            self.norms[i] = math.sqrt(float(np.dot(flat, flat)))

    @np.errstate(over="ignore", invalid="ignore")
    def after(self) -> None:
        for p, snap, norm in zip(self.params, self.snaps, self.norms):
            np.subtract(p.data, snap, out=snap)          # the update, lr included
            flat = snap.reshape(-1)
            if norm > 0:                                 # zero-initialised biases: skip
                self.samples[p.name].append(math.sqrt(float(np.dot(flat, flat))) / norm)

    def end_epoch(self, history: History, epoch: int) -> None:
        for p in self.params:
            values = self.samples[p.name]
            if not values:
                continue
            history.update_ratios.setdefault(p.name, []).append(float(np.median(values)))
            if p.data.ndim < 2:                          # the rule is about weight matrices
                values.clear()
                continue
            cause = ("low" if max(values) < UPDATE_RATIO_LOW else
                     "high" if min(values) > UPDATE_RATIO_HIGH else None)
            if cause and (p.name, cause) not in self.warned:
                self.warned.add((p.name, cause))
                hint = ("the learning rate is probably too low (or the gradient vanishes "
                        "here)" if cause == "low" else "the learning rate is probably too high")
                warnings.warn(
                    f"fit: parameter {p.name!r} had update/weight ratios "
                    f"{min(values):.1e}..{max(values):.1e} during epoch {epoch + 1}, far from "
                    f"the ~1e-3 rule of thumb; {hint}.", FastCNNWarning, stacklevel=4)
            values.clear()


def _format_logs(epoch: int, epochs: int, logs: dict, seconds: float) -> str:
    parts = [f"Epoch {epoch + 1}/{epochs}"]
    for key, value in logs.items():
        parts.append(f"{key}: {value:.3g}" if key == "lr" else f"{key}: {value:.4f}")
    parts.append(f"{seconds:.2f}s")
    return " - ".join(parts)


def _reference_floor(model) -> float:
    """``ln(C)`` for a (sparse) categorical cross-entropy on C classes, else 0."""
    from fastcnn.nn.losses import CategoricalCrossentropy, SparseCategoricalCrossentropy
    if isinstance(model.loss, (SparseCategoricalCrossentropy, CategoricalCrossentropy)):
        classes = model.output_shape[-1] if model.output_shape else 0
        return math.log(classes) if classes and classes > 1 else 0.0
    return 0.0


def _diverged_report(model, xb, yb, epoch, batch, loss, initial) -> dict:
    from fastcnn.tools.diagnostics import locate_nonfinite
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


def fit(model, x, y, batch_size=32, epochs=1, validation_data=None, shuffle=True,
        verbose=1, seed=None, augment=None, callbacks=None, explosion_guard=True,
        progress=None, update_ratio_every=None) -> History:
    """Train ``model`` (compiled) on ``(x, y)``; see :meth:`Sequential.fit` and the
    module docstring for what each option does."""
    from fastcnn.data import augment as _augment
    from fastcnn.common import random as _random
    from fastcnn.common.validation import check_nonnegative_int
    from fastcnn.train.callbacks import CallbackList

    where = "Sequential.fit"
    _check_xy(where, model, x, y)
    batch_size = _check_batch_size(where, batch_size)
    epochs = check_nonnegative_int(where, "epochs", epochs)
    verbose = _check_verbose(where, verbose)
    guard = _check_guard(where, explosion_guard)
    y = np.asarray(y)
    n = len(x)
    steps = -(-n // batch_size)
    if update_ratio_every is None:
        update_ratio_every = max(1, steps // _RATIO_SAMPLES_PER_EPOCH)
    update_ratio_every = check_nonnegative_int(where, "update_ratio_every", update_ratio_every)
    rng = _random.get_rng(seed)
    transform = _augment.get(augment)
    # The augmentation draws from its own stream, split off the shuffling generator,
    # so a seeded fit is reproducible with or without augmentation.
    aug_rng = np.random.default_rng(int(rng.integers(2**63))) if transform else None
    show_bar = (verbose == 1 and sys.stderr.isatty()) if progress is None else bool(progress)
    if show_bar:
        from tqdm import tqdm

    history = History({"batch_size": batch_size, "epochs": epochs, "samples": n,
                       "steps": steps})
    model.history = history
    model.stop_training = False
    cbs = CallbackList(callbacks, model)
    params = model.parameters()
    meter = _RatioMeter(params, update_ratio_every) if update_ratio_every else None
    metrics = model.compiled_metrics
    # Batch buffers, allocated once: a shuffled batch is gathered into them.
    m0 = min(batch_size, n)
    xbuf = np.empty((m0,) + x.shape[1:], dtype=x.dtype)
    ybuf = np.empty((m0,) + y.shape[1:], dtype=y.dtype)
    initial = None
    logs: dict = {}
    cbs.on_train_begin()
    for epoch in range(epochs):
        t0 = time.perf_counter()
        cbs.on_epoch_begin(epoch, {})
        lr = model.optimizer.current_learning_rate()
        if model.stop_training:                        # set by on_epoch_begin
            break
        order = rng.permutation(n) if shuffle else None
        totals = [0.0] * (1 + len(metrics))
        seen = 0
        bar = (tqdm(total=steps, desc=f"Epoch {epoch + 1}/{epochs}", unit="batch",
                    file=sys.stderr, leave=False, dynamic_ncols=True) if show_bar else None)
        for batch in range(steps):
            start = batch * batch_size
            m = min(batch_size, n - start)
            if order is None:
                xb, yb = x[start:start + m], y[start:start + m]
            else:
                idx = order[start:start + m]
                xb = np.take(x, idx, axis=0, out=xbuf[:m])
                yb = np.take(y, idx, axis=0, out=ybuf[:m])
            if transform is not None:
                xb = transform(xb, rng=aug_rng)
            cbs.on_batch_begin(batch, {"size": m})
            loss, out = loss_and_gradients(model, xb, yb, training=True)
            if guard and (not math.isfinite(loss) or
                          (initial is not None and loss > EXPLOSION_FACTOR * initial)):
                history.diverged = _diverged_report(model, xb, yb, epoch, batch, loss,
                                                    initial)
                break
            if initial is None:
                initial = max(loss, _reference_floor(model))
            sample = meter is not None and batch % meter.every == 0
            if sample:
                meter.before()
            model.optimizer.step(params)
            if sample:
                meter.after()
            totals[0] += loss * m
            for i, (_, metric) in enumerate(metrics, start=1):
                totals[i] += metric(out, yb) * m
            seen += m
            cbs.on_batch_end(batch, {"loss": loss, "size": m})
            if bar is not None:
                bar.update(1)
                if batch % 8 == 0:
                    bar.set_postfix_str(f"loss {totals[0] / seen:.4f}", refresh=False)
            if model.stop_training:
                break
        if bar is not None:
            bar.close()
        if history.diverged is not None:
            break
        if seen == 0:                                  # stopped before any batch
            break
        logs = {"loss": totals[0] / seen}
        logs.update({name: totals[i] / seen for i, (name, _) in enumerate(metrics, start=1)})
        if validation_data is not None:
            x_val, y_val = validation_data
            cbs.on_test_begin()
            values = evaluate(model, x_val, y_val, batch_size=batch_size, as_dict=True)
            cbs.on_test_end(values)
            logs.update({f"val_{key}": value for key, value in values.items()})
        logs["lr"] = lr
        if meter is not None:
            meter.end_epoch(history, epoch)
        seconds = time.perf_counter() - t0
        history.append(epoch, logs)
        history.epoch_times.append(seconds)
        cbs.on_epoch_end(epoch, {**logs, "time": seconds})
        if verbose:
            print(_format_logs(epoch, epochs, logs, seconds), flush=True)
        if model.stop_training:
            break
    cbs.on_train_end(logs)
    if history.diverged is not None:
        if guard == "raise":
            raise TrainingDivergedError(history.diverged, history)
        warnings.warn(history.diverged["message"], FastCNNWarning, stacklevel=3)
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


def predict(model, x, batch_size=32, tta=None) -> np.ndarray:
    """Model outputs for ``x`` in inference mode (probabilities after a Softmax).

    ``tta``: None/False for plain prediction; True (identity + mirror), a dict of
    :func:`fastcnn.augment.tta_views` arguments (``{"flips": True, "shifts": [(1, 0)]}``)
    or an iterable of view batches averages the predictions over test-time views
    (:func:`fastcnn.augment.tta_predict`).
    """
    where = "Sequential.predict"
    _check_xy(where, model, x, None)
    batch_size = _check_batch_size(where, batch_size)
    if tta is not None and tta is not False:
        from fastcnn.data.augment import tta_predict
        return tta_predict(lambda view: predict(model, view, batch_size), x, views=tta)
    outs = [model.forward(x[start:start + batch_size], training=False)
            for start in range(0, len(x), batch_size)]
    return np.concatenate(outs, axis=0)
