"""``SearchResults``: the table of a hyper-parameter search, best trial first.

Each row is a *record* (a dict, see :func:`fastcnn.tuning.trial.run_trial`):
``stage, index, params, seed, status, val_accuracy, val_loss, epochs, time`` and more.
Rows are ranked: finished trials (status ``"ok"``) first, by validation accuracy
(higher is better), then validation loss (lower is better); then ``"diverged"``,
then ``"failed"`` trials. ``print(results)`` gives the course's lines::

    val_acc: 0.9826  val_loss: 0.0671  lr: 2.310e-03  reg: 1.084e-05  epochs: 5  2.1 s  ok  (1 / 20)

``results.refine(top_k=5)`` returns a narrower space around the best trials (the
coarse -> fine step), ``results.ensemble(k)`` averages the top-k models, and
``results.plot("lr", "reg", path)`` draws validation accuracy over two parameters.
"""

from __future__ import annotations

import csv
import json
import math
import os

from fastcnn.tuning.ensemble import Ensemble
from fastcnn.tuning.plot import plot_search
from fastcnn.tuning.space import refine_space, space_from_config, space_to_config
from fastcnn.tuning.trial import model_from_bytes

__all__ = ["SearchResults"]

_STATUS_ORDER = {"ok": 0, "diverged": 1, "failed": 2}
_JSON_FORMAT = "fastcnn-search-results"


def _rank_key(record: dict):
    """Sort key: status, then accuracy (descending), then loss; NaN sorts last."""
    acc, loss = record.get("val_accuracy", math.nan), record.get("val_loss", math.nan)
    return (_STATUS_ORDER.get(record["status"], 3),
            -acc if math.isfinite(acc) else math.inf,
            loss if math.isfinite(loss) else math.inf,
            record.get("stage", ""), record["index"])


def _format_value(value) -> str:
    if isinstance(value, float):
        return f"{value:.3e}" if value != 0 and not 1e-2 <= abs(value) < 1e4 else f"{value:.4g}"
    return str(value)


class SearchResults:
    """The records of a search, ranked best first (see the module docstring).

    Parameters
    ----------
    records : list of dict
    space : dict, optional
        The space the trials were drawn from (for :meth:`refine` and log plot axes).
    """

    def __init__(self, records, space=None):
        self.records = sorted((dict(r) for r in records), key=_rank_key)
        self.space = dict(space) if space is not None else None

    # ---------------------------------------------------------------- the table
    def __len__(self):
        return len(self.records)

    def __iter__(self):
        return iter(self.records)

    def __getitem__(self, rank: int) -> dict:
        return self.records[rank]

    def __add__(self, other: "SearchResults") -> "SearchResults":
        """Both tables in one ranking (e.g. coarse + fine); keeps this one's space."""
        return SearchResults(self.records + other.records, self.space)

    @property
    def counts(self) -> dict:
        """``{"ok": n, "diverged": n, "failed": n}``."""
        out = dict.fromkeys(_STATUS_ORDER, 0)
        for record in self.records:
            out[record["status"]] = out.get(record["status"], 0) + 1
        return out

    @property
    def best(self) -> dict:
        """The best finished trial's record (ValueError when none finished)."""
        top = self.top(1)
        if not top:
            raise ValueError(f"SearchResults.best: no trial finished (statuses: "
                             f"{self.counts}). Hint: lower the learning-rate range or "
                             f"raise abort_factor.")
        return top[0]

    def top(self, k: int) -> list[dict]:
        """The ``k`` best records among the finished (status "ok") trials."""
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise ValueError(f"SearchResults.top: k must be a positive int; got {k!r}.")
        return [r for r in self.records if r["status"] == "ok"][:k]

    def line(self, record: dict) -> str:
        """One record as the course prints it."""
        rank = self.records.index(record) + 1 if record in self.records else "?"
        params = "  ".join(f"{name}: {_format_value(value)}"
                           for name, value in record["params"].items())
        status = record["status"]
        if status == "diverged" and record.get("diverged"):
            where = record["diverged"]
            status += f" at epoch {where['epoch'] + 1} batch {where['batch'] + 1}"
        elif status == "failed":
            status += f": {record.get('error')}"
        return (f"val_acc: {record['val_accuracy']:.4f}  val_loss: {record['val_loss']:.4f}  "
                f"{params}  epochs: {record['epochs']}  {record['time']:.1f} s  {status}  "
                f"({rank} / {len(self.records)})")

    def table(self, k: int | None = None) -> str:
        """The first ``k`` lines (all by default), best first, and a count line."""
        rows = self.records if k is None else self.records[:k]
        counts = ", ".join(f"{n} {status}" for status, n in self.counts.items())
        return "\n".join([self.line(r) for r in rows] + [f"{len(self)} trials: {counts}"])

    def __str__(self):
        return self.table()

    def __repr__(self):
        return f"SearchResults({len(self)} trials, {self.counts})"

    # ---------------------------------------------------------------- files
    def param_names(self) -> list[str]:
        names: dict = {}
        for record in self.records:
            names.update(dict.fromkeys(record["params"]))
        return list(names)

    def to_csv(self, path) -> str:
        """One row per trial, best first; parameters as columns. Returns the path."""
        path = os.fspath(path)
        columns = ["rank", "stage", "index", "status", "val_accuracy", "val_loss", "epochs",
                   "time", "cpu_time", "seed", "worker"]
        names = self.param_names()
        with open(path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(columns + names + ["error"])
            for rank, record in enumerate(self.records, start=1):
                row = [rank] + [record.get(c) for c in columns[1:]]
                row += [record["params"].get(n) for n in names] + [record.get("error") or ""]
                writer.writerow(row)
        return path

    def to_dict(self) -> dict:
        """JSON-ready (the trained models are left out; NaN stays NaN)."""
        records = [{k: v for k, v in r.items() if k != "model"} for r in self.records]
        space = None if self.space is None else space_to_config(self.space)
        return {"format": _JSON_FORMAT, "version": 1, "space": space, "records": records}

    def to_json(self, path) -> str:
        path = os.fspath(path)
        with open(path, "w") as f:
            json.dump(self.to_dict(), f, indent=1)
        return path

    @classmethod
    def from_json(cls, path) -> "SearchResults":
        """Read a table written by :meth:`to_json` (without the models)."""
        with open(os.fspath(path)) as f:
            data = json.load(f)
        if not isinstance(data, dict) or data.get("format") != _JSON_FORMAT:
            raise ValueError(f"SearchResults.from_json: {os.fspath(path)!r} is not a file "
                             f"written by SearchResults.to_json.")
        space = None if data.get("space") is None else space_from_config(data["space"])
        return cls(data["records"], space)

    # ---------------------------------------------------------------- next steps
    def refine(self, top_k: int = 5, expand: float = 0.5) -> dict:
        """A narrower space around the ``top_k`` best finished trials.

        Each interval becomes ``[min, max]`` of the values those trials used, widened
        by ``expand`` times its width on each side (on the log axis for LogUniform)
        and clipped to the old bounds; each ``Choice`` keeps the options they used.
        """
        if self.space is None:
            raise ValueError("SearchResults.refine: these results carry no search space. "
                             "Hint: SearchResults(records, space=...).")
        return refine_space(self.space, [r["params"] for r in self.top(top_k)], expand)

    def model(self, record: dict | None = None):
        """The trained model of ``record`` (default: the best trial's)."""
        record = self.best if record is None else record
        if record.get("model") is None:
            raise ValueError(f"SearchResults.model: trial {record['index']} kept no model "
                             f"(status {record['status']!r}; models are kept for finished "
                             f"trials when the search runs with keep_models=True and are "
                             f"not stored in JSON).")
        return model_from_bytes(record["model"])

    def ensemble(self, k: int = 3, method: str = "mean_prob"):
        """An :class:`~fastcnn.tuning.ensemble.Ensemble` of the ``k`` best models."""
        top = self.top(k)
        if not top:
            raise ValueError(f"SearchResults.ensemble: no trial finished (statuses: "
                             f"{self.counts}).")
        return Ensemble([self.model(r) for r in top], method=method)

    def plot(self, x_param: str, y_param: str, path, title: str | None = None) -> str:
        """Scatter of the trials over two parameters, coloured by validation accuracy
        (see :func:`fastcnn.tuning.plot.plot_search`). Returns the path."""
        return plot_search(self, x_param, y_param, path, title=title)
