"""Training diagnostics as PNG files: curves, learning rate, activations, filters, update ratios.

These are the "babysitting" plots of a CNN course: is the loss going down, is the
model overfitting (train vs validation), are activations dying or saturating, do the
first-layer filters look like edges and colour blobs, and are weight updates about
1e-3 of the weights.

Every function takes plain data (dicts and arrays; e.g. a ``History``'s ``.history``
dict), writes one PNG to ``path`` (parent folders are created), and returns ``path``
as a ``str``. Figures are built with matplotlib's object-oriented API on the Agg
canvas, so nothing is ever shown on screen, pyplot's global state is not touched
(safe in scripts, servers and notebooks alike), and nothing is left open.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

__all__ = [
    "plot_history",
    "plot_learning_rate",
    "plot_activation_histograms",
    "plot_filters",
    "plot_update_ratios",
]

DPI = 100
UPDATE_RATIO_RULE = 1e-3  # CS231n's rule of thumb for |lr * update| / |weights| per step


def _new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)  # attaches itself to fig: rendering stays off screen
    return fig


def _save(fig: Figure, path) -> str:
    path = Path(os.fspath(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=DPI)
    fig.clear()  # drop the artists now rather than at garbage collection
    return str(path)


def _series(where: str, mapping: dict, key: str) -> np.ndarray:
    values = np.asarray(mapping[key], dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"{where}: {key!r} must be a non-empty 1-D sequence of numbers; "
                         f"got shape {values.shape}.")
    return values


def _first_key(mapping: dict, candidates):
    return next((k for k in candidates if k in mapping), None)


def _check_mapping(where: str, name: str, value) -> dict:
    if not isinstance(value, dict) or not value:
        raise ValueError(f"{where}: {name} must be a non-empty dict; got {value!r:.80}.")
    return value


def plot_history(history: dict, path, title: str = "Training history",
                 log_loss: bool = False) -> str:
    """Loss (left) and accuracy (right) per epoch, training vs validation.

    ``history`` maps metric names to per-epoch lists, as Keras' ``History.history``:
    ``loss`` (required), and optionally ``val_loss``, ``accuracy`` (or ``acc``) and
    ``val_accuracy`` (or ``val_acc``). A gap between the training and validation
    curves that grows over the epochs is the signature of overfitting.

    ``log_loss=True`` draws the loss on a log scale, where the slow late progress of a
    run (0.05 -> 0.02) stays visible next to the first epochs' drop (2.3 -> 0.3).
    """
    where = "plot_history"
    history = _check_mapping(where, "history", history)
    if "loss" not in history:
        raise ValueError(f"{where}: history must contain 'loss'; got keys {sorted(history)}.")
    if log_loss:
        for key in ("loss", "val_loss"):
            if key in history and not (_series(where, history, key) > 0).all():
                raise ValueError(f"{where}: log_loss=True needs positive {key!r} values; "
                                 f"got {list(history[key])!r:.80}.")
    fig = _new_figure(11, 4.2)
    ax_loss, ax_acc = fig.subplots(1, 2)
    panels = [
        (ax_loss, "Loss", ("loss",), ("val_loss",)),
        (ax_acc, "Accuracy", ("accuracy", "acc"), ("val_accuracy", "val_acc")),
    ]
    for ax, label, train_keys, val_keys in panels:
        plotted = False
        for keys, name, style in ((train_keys, "train", "-o"), (val_keys, "validation", "-s")):
            key = _first_key(history, keys)
            if key is None:
                continue
            values = _series(where, history, key)
            epochs = np.arange(1, values.size + 1)
            ax.plot(epochs, values, style, markersize=3, label=f"{name} ({key})")
            plotted = True
        ax.set_title(label + (" (log scale)" if log_loss and ax is ax_loss else ""))
        if log_loss and ax is ax_loss:
            ax.set_yscale("log")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # no "epoch 2.5"
        ax.set_xlabel("epoch")
        ax.set_ylabel(label.lower())
        ax.grid(True, alpha=0.3)
        if plotted:
            ax.legend()
        else:
            ax.text(0.5, 0.5, f"no {label.lower()} recorded", ha="center", va="center",
                    transform=ax.transAxes, color="grey")
    fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path)


def plot_learning_rate(history: dict, path, title: str = "Learning rate schedule") -> str:
    """The learning rate per epoch (``history["lr"]`` or ``history["learning_rate"]``).

    The y axis is logarithmic when the rate spans more than a factor of 10 (step decay
    and warm-up schedules are easier to read that way).
    """
    where = "plot_learning_rate"
    history = _check_mapping(where, "history", history)
    key = _first_key(history, ("lr", "learning_rate"))
    if key is None:
        raise ValueError(f"{where}: history must contain 'lr' or 'learning_rate'; "
                         f"got keys {sorted(history)}.")
    lr = _series(where, history, key)
    fig = _new_figure(6.5, 4)
    ax = fig.subplots()
    ax.plot(np.arange(1, lr.size + 1), lr, "-o", markersize=3, label=key)
    positive = lr[lr > 0]
    if positive.size == lr.size and positive.max() / positive.min() > 10:
        ax.set_yscale("log")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("learning rate")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return _save(fig, path)


def plot_activation_histograms(stats: dict, path, bins: int = 50,
                               title: str = "Activation distributions per layer") -> str:
    """One histogram per layer of its activations, with mean, std and % zeros in the title.

    ``stats`` maps layer names (in network order) to arrays of activations of any shape.
    Healthy networks keep a spread of values in every layer; a histogram collapsing
    to 0 (std shrinking layer after layer) or piling up at +-1 (saturated tanh) shows
    a bad initialization. The share of exact zeros shows dead ReLUs.
    """
    where = "plot_activation_histograms"
    stats = _check_mapping(where, "stats", stats)
    n = len(stats)
    cols = min(n, 4)
    rows = math.ceil(n / cols)
    fig = _new_figure(3.2 * cols, 2.8 * rows)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for ax, (name, values) in zip(axes, stats.items()):
        values = np.asarray(values, dtype=np.float64).ravel()
        finite = values[np.isfinite(values)]
        if finite.size == 0:
            ax.set_title(f"{name}\n(no finite values)", fontsize=9)
            continue
        ax.hist(finite, bins=bins, color="tab:blue", alpha=0.8)
        zeros = 100.0 * np.count_nonzero(finite == 0) / finite.size
        ax.set_title(f"{name}\nmean={finite.mean():.3g}  std={finite.std():.3g}  "
                     f"zeros={zeros:.0f}%", fontsize=9)
        ax.set_xlabel("activation", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in axes[n:]:
        ax.set_visible(False)
    axes[0].set_ylabel("count", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path)


def _grid_shape(count: int) -> tuple[int, int]:
    """``(rows, cols)`` of a near-square grid holding ``count`` cells (cols >= rows)."""
    cols = math.ceil(math.sqrt(count))
    return math.ceil(count / cols), cols


def _filter_mosaic(weights: np.ndarray, pad: int = 1):
    """Tile filters ``(F, C, KH, KW)`` into one image on a near-square grid of filters;
    each filter is min-max normalised to [0, 1] on its own.

    ``C == 3``: each filter is one RGB tile ``(KH, KW, 3)``. Otherwise each filter's
    ``C`` channels are greyscale tiles side by side in its grid cell (``C == 1``: one
    tile per cell). Cells and tiles are separated by ``pad`` pixels of background
    (NaN, drawn white). Returns ``(image, rows, cols)`` of the grid of filters.
    """
    f, c, kh, kw = weights.shape
    lo = weights.min(axis=(1, 2, 3), keepdims=True)
    span = weights.max(axis=(1, 2, 3), keepdims=True) - lo
    # a constant filter has no contrast to show: draw it mid-grey instead of dividing by 0
    norm = np.where(span > 0, (weights - lo) / np.where(span > 0, span, 1.0), 0.5)
    rows, cols = _grid_shape(f)
    rgb = c == 3
    tiles_per_cell = 1 if rgb else c
    # a cell: its tiles, each followed by a gap; one more gap between multi-channel
    # cells so that the filters stand apart from their channels
    cell_w = tiles_per_cell * (kw + pad) + (pad if tiles_per_cell > 1 else 0)
    depth = (3,) if rgb else ()
    grid = np.full((rows * (kh + pad) + pad, cols * cell_w + pad) + depth, np.nan)
    for i in range(f):  # F is small (first-layer filters), so a loop is clearest here
        r, q = divmod(i, cols)
        top, left = pad + r * (kh + pad), pad + q * cell_w
        if rgb:
            grid[top:top + kh, left:left + kw] = norm[i].transpose(1, 2, 0)
            continue
        for j in range(c):
            tile_left = left + j * (kw + pad)
            grid[top:top + kh, tile_left:tile_left + kw] = norm[i, j]
    return grid, rows, cols


def plot_filters(weights, path, title: str = "First-layer filters") -> str:
    """Show convolution filters ``(F, C, KH, KW)`` as a grid, one cell per filter.

    Each filter is normalised to ``[0, 1]`` on its own (min-max over its channels and
    taps), so weak and strong filters are equally visible. With ``C == 3`` each filter
    is one RGB tile (trained first layers show oriented edges and colour blobs); for
    any other ``C`` a cell holds the filter's channels as greyscale tiles side by side.
    """
    where = "plot_filters"
    w = np.asarray(weights)
    if w.ndim != 4 or 0 in w.shape:
        raise ValueError(f"{where}: weights must have shape (F, C, KH, KW) with no zero "
                         f"dimension; got shape {w.shape}.")
    if not np.issubdtype(w.dtype, np.floating):
        raise TypeError(f"{where}: weights has dtype {w.dtype}; expected float32 or float64.")
    w = w.astype(np.float64)
    if not np.isfinite(w).all():
        raise ValueError(f"{where}: weights contain NaN or Inf; a diverged run has no "
                         "filters to show.")
    grid, rows, cols = _filter_mosaic(w)
    # the figure takes the grid's aspect ratio: ~0.12 inch per pixel, 3..10 inches a side
    scale = min(10.0 / max(grid.shape[:2]), 0.12 * max(1.0, 24 / max(grid.shape[:2])))
    height, width = grid.shape[0] * scale, grid.shape[1] * scale
    fig = _new_figure(max(5.0, width), max(3.0, height) + 1.0)   # + room for the title
    ax = fig.subplots()
    f, c = w.shape[:2]
    if grid.ndim == 3:
        ax.imshow(np.where(np.isnan(grid), 1.0, grid), interpolation="nearest")
        layout = f"{f} filters, RGB"
    else:
        ax.imshow(np.ma.masked_invalid(grid), cmap="gray", vmin=0, vmax=1,
                  interpolation="nearest")
        layout = f"{f} filters" + ("" if c == 1 else f", their {c} channels side by side")
    ax.set_axis_off()
    ax.set_title(f"{title}\n{layout}\n{rows}x{cols} grid of {w.shape[2]}x{w.shape[3]} "
                 "filters, each normalised to its own min..max", fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def plot_update_ratios(ratios: dict, path, title: str = "Update / weight ratio",
                       per: str = "epoch") -> str:
    """Per-parameter ``||update|| / ||weight||`` over training on a log scale.

    ``ratios`` maps parameter names to lists of ratios: by default one per epoch, the
    median of the ratios sampled during that epoch (what ``History.update_ratios``
    holds, so the x axis is "epoch"); ``per="step"`` for one value per optimizer step.
    The dashed line marks the 1e-3 rule of thumb: far below it the learning rate is
    probably too low, far above it (1e-1) too high.
    """
    where = "plot_update_ratios"
    ratios = _check_mapping(where, "ratios", ratios)
    if per not in ("epoch", "step"):
        raise ValueError(f"{where}: per must be 'epoch' or 'step'; got {per!r}.")
    fig = _new_figure(8, 4.5)
    ax = fig.subplots()
    for name in ratios:
        values = _series(where, ratios, name)
        values = np.where(values > 0, values, np.nan)  # log scale: hide zeros (frozen steps)
        x = np.arange(1, values.size + 1) if per == "epoch" else np.arange(values.size)
        ax.plot(x, values, "-o" if per == "epoch" else "-", markersize=3, label=str(name),
                linewidth=1.2)
    ax.axhline(UPDATE_RATIO_RULE, color="black", linestyle="--", linewidth=1,
               label="1e-3 rule of thumb")
    ax.set_yscale("log")
    if per == "epoch":
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel("median ||update|| / ||weight|| in the epoch")
    else:
        ax.set_xlabel("optimizer step")
        ax.set_ylabel("||update|| / ||weight||")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="best", ncol=2 if len(ratios) > 6 else 1)
    fig.tight_layout()
    return _save(fig, path)
