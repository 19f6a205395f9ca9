"""The search scatter plot: validation accuracy over two hyper-parameters.

The picture of the course's coarse search: one dot per trial at (param x, param y),
coloured by its validation accuracy, so the good region stands out and the ranges
of the fine search can be read off. Axes are logarithmic for parameters drawn from
a :class:`~fastcnn.tuning.space.LogUniform` (a learning rate from 1e-5 to 1e-1
spreads evenly over the axis). Diverged trials are drawn as red crosses, failed
ones as grey crosses; the best trial is circled.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from fastcnn.tuning.space import Distribution

__all__ = ["plot_search"]


def _axis_is_log(results, name: str) -> bool:
    space = results.space or {}
    dist = space.get(name)
    if isinstance(dist, Distribution):
        return dist.log
    values = [r["params"][name] for r in results.records]
    # no space: log when the positive values span more than two decades
    return (all(isinstance(v, (int, float)) and v > 0 for v in values)
            and max(values) / min(values) > 100)


def plot_search(results, x_param: str, y_param: str, path, title: str | None = None) -> str:
    """Write the scatter plot of ``results`` (a SearchResults) to ``path`` (PNG).

    Returns the path as ``str``. Raises ValueError for a parameter that is not numeric
    in every trial or is not a parameter of the search.
    """
    # matplotlib is heavy to import: only searches that plot pay for it.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    names = results.param_names()
    for name in (x_param, y_param):
        if name not in names:
            raise ValueError(f"SearchResults.plot: {name!r} is not a parameter of this search; "
                             f"parameters: {names}.")
        if not all(isinstance(r["params"][name], (int, float)) for r in results.records):
            raise ValueError(f"SearchResults.plot: parameter {name!r} must be numeric in every "
                             f"trial to be an axis.")
    fig = Figure(figsize=(6.4, 4.8), dpi=100)
    FigureCanvasAgg(fig)            # attaches itself: rendering stays off screen
    ax = fig.add_subplot()
    ok = [r for r in results.records
          if r["status"] == "ok" and math.isfinite(r["val_accuracy"])]
    if ok:
        dots = ax.scatter([r["params"][x_param] for r in ok], [r["params"][y_param] for r in ok],
                          c=[r["val_accuracy"] for r in ok], cmap="viridis", s=40,
                          edgecolors="black", linewidths=0.3)
        fig.colorbar(dots, ax=ax, label="validation accuracy")
        best = ok[0]                       # records are ranked, best first
        ax.scatter([best["params"][x_param]], [best["params"][y_param]], s=160,
                   facecolors="none", edgecolors="red", linewidths=1.5, label="best")
    for status, colour in (("diverged", "red"), ("failed", "grey")):
        rows = [r for r in results.records if r["status"] == status]
        if rows:
            ax.scatter([r["params"][x_param] for r in rows],
                       [r["params"][y_param] for r in rows],
                       marker="x", color=colour, s=40, label=status)
    for name, set_scale in ((x_param, ax.set_xscale), (y_param, ax.set_yscale)):
        if _axis_is_log(results, name):
            set_scale("log")
    ax.set_xlabel(x_param)
    ax.set_ylabel(y_param)
    ax.set_title(title or f"{len(results)} trials: validation accuracy")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="best", fontsize="small")
    fig.tight_layout()
    path = Path(os.fspath(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return str(path)
