"""Dask glue (imported only by :class:`~fastcnn.tuning.executors.DaskExecutor`, and by
Dask workers when they unpickle what it sends; needs ``fastcnn[distributed]``).

The search's data reach every worker once through a *worker plugin* rather than as a
task result (``client.scatter`` or a data task). The difference matters when workers
die: the scheduler keeps the plugin and installs it on every worker that joins, a
restarted one included, so no data are ever lost; and the trial tasks depend on no
other task, so the scheduler places each on any idle worker, never queued behind a
running trial on the worker that holds the data (Dask charges a worker's death to
every task on it, so a queued innocent trial would be blamed for a crash).
"""

from __future__ import annotations

from distributed.diagnostics.plugin import WorkerPlugin

from fastcnn.tuning.trial import run_trial

__all__ = ["SearchData", "run_trial_on_worker"]

# token -> TrialData, in each worker process (filled by SearchData.setup)
_DATA: dict = {}


class SearchData(WorkerPlugin):
    """Holds one search's ``TrialData``; on each worker, stores it under ``token``."""

    def __init__(self, token: str, data):
        self.token = token
        self.data = data

    def setup(self, worker):
        _DATA[self.token] = self.data

    def teardown(self, worker):
        _DATA.pop(self.token, None)


def run_trial_on_worker(config, token: str, spec, threads: int) -> dict:
    """:func:`~fastcnn.tuning.trial.run_trial` on the data this worker holds."""
    return run_trial(config, _DATA[token], spec, threads)
