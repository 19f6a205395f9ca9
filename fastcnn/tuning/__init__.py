"""Hyper-parameter search, ensembles and checkpoint averaging (scale-out on Dask).

>>> from fastcnn.tuning import LogUniform, random_search
>>> space = {"lr": LogUniform(1e-4, 1e-1), "reg": LogUniform(1e-6, 1e-2)}
>>> results = random_search(build, space, x, y, validation_data=(x_val, y_val),
...                         trials=20, epochs=5, seed=0, executor=2)  # doctest: +SKIP
>>> print(results)                       # the table, best first  # doctest: +SKIP
>>> fine = random_search(build, results.refine(top_k=5), ...)      # doctest: +SKIP
>>> results.ensemble(3).evaluate(x_test, y_test)                   # doctest: +SKIP

Modules: :mod:`~fastcnn.tuning.space` (distributions), :mod:`~fastcnn.tuning.search`
(random/grid search), :mod:`~fastcnn.tuning.trial` (one trial, the early abort),
:mod:`~fastcnn.tuning.executors` (sequential, local process pool, Dask),
:mod:`~fastcnn.tuning.results` (the table), :mod:`~fastcnn.tuning.ensemble`
(ensembles, checkpoint averaging), :mod:`~fastcnn.tuning.plot` (the scatter plot).
Dask is optional: ``pip install fastcnn[distributed]``.
"""

from fastcnn.tuning.ensemble import Ensemble, average_checkpoints
from fastcnn.tuning.executors import (
    DaskExecutor,
    LocalExecutor,
    SequentialExecutor,
    get_executor,
)
from fastcnn.tuning.results import SearchResults
from fastcnn.tuning.search import grid_search, random_search
from fastcnn.tuning.space import Choice, IntUniform, LogUniform, Uniform
from fastcnn.tuning.trial import AbortOnDivergence

__all__ = ["LogUniform", "Uniform", "IntUniform", "Choice", "random_search", "grid_search",
           "SearchResults", "SequentialExecutor", "LocalExecutor", "DaskExecutor",
           "get_executor", "Ensemble", "average_checkpoints", "AbortOnDivergence"]
