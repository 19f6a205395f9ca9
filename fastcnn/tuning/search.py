"""Random and grid search over a space of hyper-parameters, coarse to fine.

The course's recipe::

    space = {"lr": LogUniform(1e-5, 1e-1), "reg": LogUniform(1e-6, 1e-1)}
    coarse = random_search(build, space, x, y, validation_data=(x_val, y_val),
                           trials=20, epochs=5, seed=0, executor=2)
    print(coarse)                                   # best first
    fine = random_search(build, coarse.refine(top_k=5), x, y,
                         validation_data=(x_val, y_val), trials=10, epochs=10, seed=1)

``build(params)`` receives one draw (``{"lr": 0.0023, "reg": 1.1e-05}``) and returns a
*compiled* model. Each trial trains it with ``fit(epochs=..., batch_size=...)`` and is
ranked by its last epoch's validation accuracy. The draws and the trials' seeds come
from ``seed`` alone, so a search is reproducible, and every trial gives the same
numbers on every executor (see :mod:`fastcnn.tuning.trial`).

A trial whose batch loss exceeds ``abort_factor`` times its first loss (or becomes
NaN/inf) stops at once and is recorded as ``"diverged"``: a learning rate 10x too
large is found in a few batches instead of a whole run.
"""

from __future__ import annotations

import sys

import numpy as np

from fastcnn.common.random import get_rng
from fastcnn.common.validation import check_positive_int
from fastcnn.tuning.executors import get_executor
from fastcnn.tuning.results import SearchResults
from fastcnn.tuning.space import check_space, grid_space, sample_space
from fastcnn.tuning.trial import AbortOnDivergence, TrialConfig, TrialData, TrialSpec

__all__ = ["random_search", "grid_search"]


def random_search(build, space, x, y, validation_data=None, trials=20, epochs=5,
                  batch_size=32, seed=None, executor=None, abort_factor=3.0,
                  keep_models=True, verbose=0, stage="random", fit_kwargs=None):
    """Train ``trials`` models with parameters drawn at random from ``space``.

    Parameters
    ----------
    build : callable
        ``build(params: dict) -> compiled model``. To run on a local process pool it
        must be a top-level function of a module (picklable); Dask takes any callable.
    space : dict
        ``name -> LogUniform | Uniform | IntUniform | Choice`` or a fixed value.
    x, y : arrays
        Training data.
    validation_data : (x_val, y_val)
        Required: trials are ranked on it. Keep the test set out of the search.
    trials, epochs, batch_size : int
    seed : None, int or Generator
        Draws the parameters and every trial's seed (None: the package generator,
        see :func:`fastcnn.seed`).
    executor : None, int, "local", dask Client, "tcp://..." address or executor
        Where trials run (see :func:`fastcnn.tuning.executors.get_executor`):
        None = one after the other in this process, 2 = two local worker processes.
    abort_factor : float > 1 or None
        Stop a trial once its batch loss exceeds ``abort_factor`` x its first batch
        loss (None: only on NaN/inf).
    keep_models : bool
        Ship each finished trial's model back (as ``.npz`` bytes) for
        ``results.model()`` and ``results.ensemble(k)``.
    verbose : 0 or 1
        1 prints one line per finished trial with trials done / running / diverged.
    stage : str
        A label stored in each record ("coarse", "fine", ...).
    fit_kwargs : dict, optional
        More arguments for ``model.fit`` (``augment="shift"``...).

    Returns
    -------
    SearchResults
    """
    where = "random_search"
    space = check_space(where, space)
    trials = check_positive_int(where, "trials", trials)
    rng = get_rng(seed)
    points = [sample_space(space, rng) for _ in range(trials)]
    return _run_search(where, build, space, points, rng, x, y, validation_data, epochs,
                       batch_size, executor, abort_factor, keep_models, verbose, stage,
                       fit_kwargs)


def grid_search(build, space, x, y, validation_data=None, trials=20, epochs=5,
                batch_size=32, seed=None, executor=None, abort_factor=3.0,
                keep_models=True, verbose=0, stage="grid", fit_kwargs=None):
    """Train one model per point of a grid over ``space`` (at most ``trials`` points).

    Same arguments as :func:`random_search`. ``Choice`` parameters try every option;
    the continuous ones share the rest of the budget evenly (geometric spacing for
    ``LogUniform``): with two continuous parameters and ``trials=20``, a 4 x 4 grid.
    For a fixed budget random search usually finds better values (Bergstra & Bengio
    2012): a grid tries only 4 distinct values of each parameter, random search 20.
    ``seed`` draws the trials' seeds.
    """
    where = "grid_search"
    space = check_space(where, space)
    trials = check_positive_int(where, "trials", trials)
    rng = get_rng(seed)
    return _run_search(where, build, space, grid_space(space, trials), rng, x, y,
                       validation_data, epochs, batch_size, executor, abort_factor,
                       keep_models, verbose, stage, fit_kwargs)


def _check_data(where: str, x, y, validation_data) -> TrialData:
    if validation_data is None:
        raise ValueError(f"{where}: validation_data must be (x_val, y_val): trials are ranked "
                         f"by validation accuracy; got None. Hint: hold out part of the "
                         f"training set (never the test set).")
    if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
        raise ValueError(f"{where}: validation_data must be a pair (x_val, y_val); got "
                         f"{type(validation_data).__name__}.")
    arrays = {"x": x, "y": y, "x_val": validation_data[0], "y_val": validation_data[1]}
    for name, value in arrays.items():
        if not isinstance(value, np.ndarray):
            raise TypeError(f"{where}: {name} must be a numpy array; got "
                            f"{type(value).__name__}.")
    for a, b in (("x", "y"), ("x_val", "y_val")):
        if len(arrays[a]) != len(arrays[b]) or len(arrays[a]) == 0:
            raise ValueError(f"{where}: {a} and {b} must hold the same, non-zero number of "
                             f"samples; got {len(arrays[a])} and {len(arrays[b])}.")
    return TrialData(**arrays)


def _run_search(where, build, space, points, rng, x, y, validation_data, epochs, batch_size,
                executor, abort_factor, keep_models, verbose, stage, fit_kwargs):
    """Validate, make one spec per point, run them on the executor, collect."""
    if not callable(build):
        raise TypeError(f"{where}: build must be a callable params -> compiled model; "
                        f"got {build!r}.")
    data = _check_data(where, x, y, validation_data)
    AbortOnDivergence(abort_factor)                  # validates abort_factor
    if verbose not in (0, 1, True, False):
        raise ValueError(f"{where}: verbose must be 0 or 1; got {verbose!r}.")
    config = TrialConfig(build=build, epochs=check_positive_int(where, "epochs", epochs),
                         batch_size=check_positive_int(where, "batch_size", batch_size),
                         abort_factor=abort_factor, keep_model=bool(keep_models),
                         fit_kwargs=dict(fit_kwargs or {}))
    # One seed per trial, drawn after the parameters: trial i's numbers depend only on
    # (params_i, seed_i), never on which worker runs it or when.
    seeds = rng.integers(0, 2**31 - 1, size=len(points))
    specs = [TrialSpec(index=i, params=p, seed=int(s), stage=str(stage))
             for i, (p, s) in enumerate(zip(points, seeds))]
    runner = get_executor(executor)
    records = []
    for record in runner.run(config, data, specs):
        records.append(record)
        if verbose:
            _print_progress(record, records, len(specs), runner.slots)
    if records and all(r["status"] == "failed" for r in records):
        first = records[0]
        raise RuntimeError(f"{where}: every trial failed; the first one with: "
                           f"{first['error']}\n{first.get('traceback') or ''}")
    return SearchResults(records, space)


def _print_progress(record: dict, records: list, total: int, slots: int) -> None:
    """``[ 7/20 done, 2 running, 1 diverged] val_acc: 0.9722 ... lr: 1.4e-04 ...``"""
    done = len(records)
    running = min(slots, total - done)
    diverged = sum(r["status"] == "diverged" for r in records)
    failed = sum(r["status"] == "failed" for r in records)
    params = "  ".join(f"{k}: {v:.3e}" if isinstance(v, float) else f"{k}: {v}"
                       for k, v in record["params"].items())
    extra = f", {failed} failed" if failed else ""
    status = "" if record["status"] == "ok" else f"  {record['status']}"
    print(f"[{done:>{len(str(total))}}/{total} done, {running} running, {diverged} diverged"
          f"{extra}] val_acc: {record['val_accuracy']:.4f}  {params}  "
          f"({record['time']:.1f} s){status}", file=sys.stdout, flush=True)
