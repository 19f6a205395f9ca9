"""Babysitting diagnostics: the sanity checks a CNN course runs before training for real.

==============================  =========================================================
:func:`check_initial_loss`      an untrained softmax classifier should score about
                                ``ln(C)`` (uniform guesses); a large L2 factor must raise
                                the loss (regularization is wired in)
:func:`overfit_small_subset`    without regularization a working model + optimizer
                                drives ~20 samples to 100% training accuracy
:func:`activation_stats`        per-layer mean / std / dead ReLUs / saturated units, to
                                spot vanishing or exploding activations (bad init)
:func:`locate_nonfinite`        re-run one batch layer by layer and name the first layer
                                whose weights, activations or gradients are NaN/Inf
                                (``fit``'s explosion guard uses it)
:func:`measure_loop_overhead`   time of a ``fit`` epoch vs the sum of its bare training
                                steps (the loop must add little: target <= 1.1x)
==============================  =========================================================

Every function leaves the model it is given as it was (``overfit_small_subset`` trains
a copy), so they can be called between runs of a hyper-parameter search.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from fastcnn.common.exceptions import FastCNNWarning
from fastcnn.nn import losses, regularizers
from fastcnn.nn.layers.activations import ReLU, Sigmoid, Softmax, Tanh
from fastcnn.nn.layers.base import _all_layers
from fastcnn.nn.layers.core import Dropout
from fastcnn.optim import optimizers
from fastcnn.train.callbacks import Callback
from fastcnn.train.edge import prepare_x
from fastcnn.train.guard import locate_nonfinite
from fastcnn.train.loop import regularization_penalty, train_step

__all__ = ["locate_nonfinite", "check_initial_loss", "InitialLossReport",
           "overfit_small_subset", "OverfitReport", "activation_stats", "ActivationStats",
           "measure_loop_overhead", "LoopOverhead", "clone_model"]


# ------------------------------------------------------------------------ cloning
def clone_model(model):
    """A new compiled model of the same class (``Sequential`` or functional ``Model``)
    with the same architecture, weights, moving statistics, loss, metrics and
    optimizer settings (fresh optimizer state)."""
    if not model.built:
        raise RuntimeError("clone_model: the model is not built. Hint: pass input_shape=... "
                           "to Sequential.")
    clone = type(model).from_config(model.get_config())
    for dst, src in zip(clone.parameters(), model.parameters()):
        dst.data[...] = src.data
    for dst, src in zip(clone.states().values(), model.states().values()):
        dst[...] = src
    if model.optimizer is not None:
        clone.compile(optimizer=optimizers.serialize(model.optimizer),
                      loss=losses.serialize(model.loss), metrics=[])
        clone.compiled_metrics = list(model.compiled_metrics)
    return clone


def _classes(where: str, model) -> int:
    if not isinstance(model.loss, (losses.SparseCategoricalCrossentropy,
                                   losses.CategoricalCrossentropy)):
        raise ValueError(f"{where}: needs a model compiled with a (sparse) categorical "
                         f"cross-entropy loss; got {type(model.loss).__name__}.")
    return int(model.output_shape[-1])


# --------------------------------------------------------------- initial loss check
#: the largest spread (std over classes) of initial logits still called healthy
MAX_INITIAL_LOGIT_STD = 2.0


@dataclass
class InitialLossReport:
    """Result of :func:`check_initial_loss`.

    ``passed`` is True when ``lower <= loss <= upper`` (``loss_ok``) and the L2 check
    rose. ``expected`` is ``ln C``; ``upper`` and ``lower`` are derived in
    :func:`check_initial_loss`.
    """

    loss: float
    expected: float
    classes: int
    upper: float
    lower: float
    loss_with_l2: float
    l2: float
    regularization_rises: bool
    loss_ok: bool
    passed: bool
    verdict: str

    def __str__(self) -> str:
        return (f"initial loss {self.loss:.4f} vs ln({self.classes}) = {self.expected:.4f} "
                f"(ratio {self.loss / self.expected:.2f}; healthy range [{self.lower:.3f}, "
                f"{self.upper:.3f}]); with L2({self.l2:g}) on every weight: "
                f"{self.loss_with_l2:.4f}\nverdict: {self.verdict}")


def _per_sample_losses(model, out, ys) -> np.ndarray:
    """``-log p[n, y_n]`` for every sample (from logits when the loss sees logits)."""
    labels = ys.argmax(axis=1) if ys.ndim == 2 else ys.astype(np.int64)
    out = out.astype(np.float64)
    sees_logits = model.fused_softmax or model.loss.from_logits
    log_p = losses.log_softmax(out) if sees_logits else np.log(np.maximum(out, 1e-300))
    return -log_p[np.arange(len(labels)), labels]


def _initial_loss_bounds(per_sample, ys, classes) -> tuple[float, float]:
    """``(lower, upper)`` for a healthy untrained classifier (see check_initial_loss)."""
    labels = ys.argmax(axis=1) if ys.ndim == 2 else ys.astype(np.int64)
    freq = np.bincount(labels, minlength=classes) / len(labels)
    label_entropy = float(-np.sum(freq[freq > 0] * np.log(freq[freq > 0])))
    std_error = float(np.std(per_sample)) / math.sqrt(len(per_sample))
    upper = math.log(classes) + MAX_INITIAL_LOGIT_STD ** 2 / 2
    return label_entropy - 3 * std_error, upper


def _initial_loss_verdict(data_loss, expected, lower, upper, rises) -> str:
    if not math.isfinite(data_loss):
        verdict = "FAIL: the initial loss is not finite; check the data and the initialization"
    elif data_loss > upper:
        verdict = (f"FAIL: the loss is {data_loss / expected:.1f}x ln(C), above ln(C) + 2 "
                   f"(initial logits spread by more than 2): the initial weights are "
                   f"probably too large (confident wrong predictions)")
    elif data_loss < lower:
        verdict = ("FAIL: the loss is below the entropy of the labels before training: "
                   "check for labels leaking into the inputs, a model that is already "
                   "trained, or a mis-wired loss")
    else:
        verdict = "ok: the untrained model guesses about uniformly"
    if not rises:
        verdict += ("; FAIL: a large L2 factor did not raise the loss (regularization not "
                    "applied)")
    return verdict


def check_initial_loss(model, x, y, n=256, l2=10.0) -> InitialLossReport:
    """CS231n's first sanity checks on an untrained classifier.

    1. With small random weights the softmax is nearly uniform, so the cross-entropy
       is about ``-ln(1/C) = ln(C)`` (2.303 for 10 classes). The healthy range is
       derived, not a fixed tolerance:

       * upper: for logits ``z_k ~ N(0, s^2)`` independent of the label, a second-order
         expansion of ``logsumexp`` gives ``E[loss] ~= ln C + s^2 / 2``. Glorot/He
         initialisation keeps activations near unit variance, so a healthy net has
         ``s`` around 1 (loss ~ ln C + 0.5, e.g. 2.8 for 10 classes, which is
         1.2x ln C: a fixed 25% tolerance called such nets failures). Above
         ``s = MAX_INITIAL_LOGIT_STD = 2`` the classes one standard deviation apart
         differ ``e^2 ~ 7x`` in probability: confident guesses, weights too large.
         So ``upper = ln C + 2``.
       * lower: no prediction independent of the labels scores below the entropy
         ``H(pi) = -sum_k pi_k ln pi_k`` of the label frequencies ``pi`` (``ln C`` when
         balanced); ``lower = H(pi) - 3`` standard errors of the mean loss. Below it
         the model already knows the labels (a data leak, or a trained model).
    2. Adding a large L2 penalty (``l2 * sum(w**2)`` on every weight matrix/kernel)
       must raise the loss: the regularization term reaches the objective.

    Uses the first ``n`` samples, inference mode, and restores every regularizer.
    """
    where = "check_initial_loss"
    classes = _classes(where, model)
    xs = prepare_x(where, model, x[:n])
    ys = np.asarray(y)[:n]
    out = model.forward_for_loss(xs, training=False)
    data_loss = float(model.compiled_loss.forward(out, ys))
    per_sample = _per_sample_losses(model, out, ys)
    lower, upper = _initial_loss_bounds(per_sample, ys, classes)
    base = data_loss + regularization_penalty(model, add_gradients=False)
    saved = [(p, p.regularizer) for p in model.parameters()]
    try:
        for p, _ in saved:
            if p.data.ndim >= 2:
                p.regularizer = regularizers.L2(l2)
        with_l2 = data_loss + regularization_penalty(model, add_gradients=False)
    finally:
        for p, reg in saved:
            p.regularizer = reg
    expected = math.log(classes)
    loss_ok = lower <= data_loss <= upper
    rises = with_l2 > base
    verdict = _initial_loss_verdict(data_loss, expected, lower, upper, rises)
    return InitialLossReport(data_loss, expected, classes, upper, lower, with_l2, l2, rises,
                             loss_ok, loss_ok and rises, verdict)


# ---------------------------------------------------------------- overfit a subset
class _StopAtPerfect(Callback):
    """Stop as soon as the epoch's training accuracy (``logs[key]``) is 1."""

    def __init__(self, key):
        super().__init__()
        self.key = key

    def on_epoch_end(self, epoch, logs=None):
        if (logs or {}).get(self.key, 0.0) >= 1.0:
            self.model.stop_training = True


@dataclass
class OverfitReport:
    """Result of :func:`overfit_small_subset`; ``passed`` means 100% train accuracy."""

    n: int
    epochs_run: int
    train_accuracy: float
    final_loss: float
    passed: bool
    verdict: str
    history: object = field(repr=False, default=None)

    def __str__(self) -> str:
        return (f"overfit {self.n} samples: accuracy {self.train_accuracy:.3f}, loss "
                f"{self.final_loss:.4g} after {self.epochs_run} epochs\nverdict: {self.verdict}")


def overfit_small_subset(model, x, y, n=20, epochs=200, batch_size=None, seed=0,
                         metric="accuracy") -> OverfitReport:
    """Train a copy of ``model`` on ``n`` samples with no regularization (no weight
    penalties, dropout rate 0) and report whether it reaches 100% training accuracy.

    A model that cannot memorise 20 samples has a bug (wrong gradient, a dead
    network, a learning rate far too low or high). Stops early at 100%. ``model`` is
    left untouched.
    """
    where = "overfit_small_subset"
    if model.optimizer is None:
        raise RuntimeError(f"{where}: the model is not compiled. Hint: call model.compile().")
    if not any(name == metric for name, _ in model.compiled_metrics):
        raise ValueError(f"{where}: the model must be compiled with metrics=[{metric!r}]; "
                         f"got {[name for name, _ in model.compiled_metrics]}.")
    clone = clone_model(model)
    for p in clone.parameters():
        p.regularizer = None
    for layer in _all_layers(clone.layers):
        if isinstance(layer, Dropout):
            layer.rate = 0.0
    xs, ys = x[:n], np.asarray(y)[:n]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FastCNNWarning)
        history = clone.fit(xs, ys, batch_size=batch_size or len(xs), epochs=epochs,
                            verbose=0, seed=seed, callbacks=[_StopAtPerfect(metric)],
                            update_ratio_every=0)
    h = history.history
    acc = h[metric][-1] if h.get(metric) else 0.0
    loss = h["loss"][-1] if h.get("loss") else float("nan")
    passed = acc >= 1.0
    if history.diverged:
        verdict = f"FAIL: training diverged ({history.diverged['reason']}); lower the learning rate"
    elif passed:
        verdict = f"ok: memorised {len(xs)} samples in {len(history.epoch)} epochs"
    else:
        verdict = (f"FAIL: only {acc:.1%} training accuracy after {len(history.epoch)} epochs: "
                   f"check the gradients (fastcnn.gradcheck), the learning rate and the init")
    return OverfitReport(len(xs), len(history.epoch), acc, loss, passed, verdict, history)


# ----------------------------------------------------------------- activation stats
_TANH_SAT, _SIG_SAT = 0.99, 0.01


def _activation_kind(layer):
    act = layer if isinstance(layer, (ReLU, Sigmoid, Tanh)) else getattr(layer, "_activation",
                                                                          None)
    return {ReLU: "relu", Tanh: "tanh", Sigmoid: "sigmoid"}.get(type(act))


@dataclass
class ActivationStats:
    """Per-layer statistics of the activations (outputs) of every top-level layer.

    ``rows``: one dict per layer with ``layer``, ``kind`` (``relu``/``tanh``/``sigmoid``
    or None), ``mean``, ``std``, ``dead`` (ReLU: fraction of units that output 0 for
    every sample), ``saturated`` (tanh: ``|a| > 0.99``; sigmoid: ``a < 0.01`` or
    ``> 0.99``; fraction of all values) and ``verdict``. ``activations`` maps layer
    names to the output arrays (for :func:`fastcnn.plot.plot_activation_histograms`).
    ``verdict`` is the model's: the worst layer verdict, or "healthy".
    """

    rows: list
    activations: dict = field(repr=False)
    input_std: float = 1.0
    verdict: str = "healthy"

    def table(self) -> str:
        head = f"{'layer':<18}{'act':<9}{'mean':>11}{'std':>11}{'dead':>8}{'sat.':>8}  verdict"
        lines = [head, "-" * len(head)]
        for r in self.rows:
            lines.append(f"{r['layer']:<18}{(r['kind'] or '-'):<9}{r['mean']:>11.3g}"
                         f"{r['std']:>11.3g}{r['dead']:>8.1%}{r['saturated']:>8.1%}  "
                         f"{r['verdict']}")
        lines.append(f"model: {self.verdict}")
        return "\n".join(lines)

    __str__ = table

    def plot(self, path, **kwargs) -> str:
        """Histograms of every layer's activations (a PNG at ``path``)."""
        # deferred: fastcnn.tools.plot imports matplotlib (slow), needed only for a plot
        from fastcnn.tools.plot import plot_activation_histograms
        return plot_activation_histograms(self.activations, path, **kwargs)


_SEVERITY = ["healthy", "saturated", "dead", "vanishing", "exploding", "non-finite"]


def _activation_row(layer, h, x_std, is_last, vanish, explode, dead, saturated) -> dict:
    """One row of :func:`activation_stats` for ``layer``'s output ``h``."""
    kind = _activation_kind(layer)
    a = h.astype(np.float64, copy=False)
    finite = bool(np.isfinite(a).all())
    mean = float(a.mean()) if finite else float("nan")
    std = float(a.std()) if finite else float("nan")
    units = a.reshape(a.shape[0], -1)
    dead_frac = float(np.mean(~(units > 0).any(axis=0))) if kind == "relu" else 0.0
    if kind == "tanh":
        sat = float(np.mean(np.abs(a) > _TANH_SAT))
    elif kind == "sigmoid":
        sat = float(np.mean((a < _SIG_SAT) | (a > 1 - _SIG_SAT)))
    else:
        sat = 0.0
    is_output = is_last and (layer.ends_with_softmax or isinstance(layer, Softmax))
    if not finite:
        verdict = "non-finite"
    elif is_output:
        verdict = "healthy"
    elif std > explode * x_std:
        verdict = "exploding"
    elif dead_frac > dead:             # before "vanishing": dead units are the cause
        verdict = "dead"
    elif std < vanish * x_std:
        verdict = "vanishing"
    elif sat > saturated:
        verdict = "saturated"
    else:
        verdict = "healthy"
    return {"layer": layer.name, "kind": kind, "mean": mean, "std": std,
            "dead": dead_frac, "saturated": sat, "verdict": verdict}


def activation_stats(model, x, vanish=1e-2, explode=1e2, dead=0.5,
                     saturated=0.5) -> ActivationStats:
    """Run ``x`` through ``model`` (inference mode) and summarise every layer's output.

    Layer verdicts (thresholds are arguments): ``non-finite``; ``exploding`` when
    ``std > explode * std(x)``; ``vanishing`` when ``std < vanish * std(x)`` (the
    0.01-randn tanh net of CS231n: the std shrinks ~5x per layer); ``dead`` (checked
    before "vanishing", being its usual cause) when more than ``dead`` of a ReLU
    layer's units never fire on ``x``; ``saturated`` when more than ``saturated`` of
    a tanh/sigmoid layer's values sit at the flat ends (gradients ~0); else
    ``healthy``. The model's verdict is the worst layer's (severity: non-finite,
    exploding, vanishing, dead, saturated). A softmax output layer is not judged.
    """
    x = prepare_x("activation_stats", model, x)
    model._ensure_built(x)
    x_std = float(np.std(x)) or 1.0
    rows, acts = [], {}
    output_layer = model._graph.nodes[-1]

    def observe(layer, layer_input, h):            # called after every layer of the graph
        acts[layer.name] = h
        rows.append(_activation_row(layer, h, x_std, layer is output_layer, vanish,
                                    explode, dead, saturated))

    model.forward(x, False, observe=observe)
    worst = max((r["verdict"] for r in rows), key=_SEVERITY.index, default="healthy")
    return ActivationStats(rows, acts, x_std, worst)


# -------------------------------------------------------------- loop overhead timer
@dataclass
class LoopOverhead:
    """``ratio = epoch_seconds / steps_seconds`` (best of ``repeats`` each)."""

    epoch_seconds: float
    steps_seconds: float
    ratio: float
    steps: int

    def __str__(self) -> str:
        return (f"fit epoch {self.epoch_seconds * 1e3:.1f} ms vs {self.steps} bare training "
                f"steps {self.steps_seconds * 1e3:.1f} ms: ratio {self.ratio:.3f}")


def measure_loop_overhead(model, x, y, batch_size=32, repeats=3, seed=0) -> LoopOverhead:
    """Time one ``fit`` epoch (shuffling, gathering, metrics, guard, update-ratio
    sampling, callbacks machinery; ``verbose=0``, no validation) against the sum of
    ``train_step`` calls on the same batches gathered beforehand. Trains ``model``
    (use a throw-away model). Best of ``repeats`` for both, interleaved, to resist
    noise from other processes."""
    y = np.asarray(y)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(x))
    batches = [(np.ascontiguousarray(x[order[s:s + batch_size]]),
                np.ascontiguousarray(y[order[s:s + batch_size]]))
               for s in range(0, len(x), batch_size)]
    train_step(model, *batches[0])                  # warm-up: first-call allocations, JIT
    epoch_best = steps_best = math.inf
    for r in range(repeats):
        h = model.fit(x, y, batch_size=batch_size, epochs=1, verbose=0, seed=seed + r,
                      explosion_guard=False)
        epoch_best = min(epoch_best, h.epoch_times[0])
        t0 = time.perf_counter()
        for xb, yb in batches:
            train_step(model, xb, yb)
        steps_best = min(steps_best, time.perf_counter() - t0)
    return LoopOverhead(epoch_best, steps_best, epoch_best / steps_best, len(batches))
