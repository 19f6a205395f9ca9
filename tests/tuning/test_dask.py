"""A search on a real dask.distributed LocalCluster: two worker processes on loopback.

The cluster is started and closed by the test; every wait has a timeout (cluster
start, client calls, the search itself), so a broken cluster fails the test instead
of hanging the run.
"""

import os

import pytest

distributed = pytest.importorskip("distributed", reason="Dask is optional: "
                                  "pip install 'fastcnn[distributed]'")
dask = pytest.importorskip("dask")

from _tuning_helpers import build_or_misbehave, build_tiny, numbers, tiny_data  # noqa: E402
from fastcnn.tuning import DaskExecutor, LogUniform, random_search  # noqa: E402
from fastcnn.tuning.trial import TrialConfig, TrialData, TrialSpec  # noqa: E402

SEARCH_TIMEOUT = 50   # seconds for any one search; the searches here take a few


@pytest.fixture(scope="module")
def client():
    # One worker death is retried on another worker; the second is reported.
    with dask.config.set({"distributed.scheduler.allowed-failures": 1}):
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                           host="127.0.0.1", dashboard_address=None,
                                           silence_logs=50)
        try:
            with distributed.Client(cluster, timeout=30) as dask_client:
                dask_client.wait_for_workers(2, timeout=30)
                yield dask_client
        finally:
            cluster.close(timeout=30)


def _search(executor):
    (x, y), val = tiny_data()
    return random_search(build_tiny, {"lr": LogUniform(1e-4, 50.0)}, x, y,
                         validation_data=val, trials=4, epochs=2, seed=3, executor=executor)


def test_search_on_dask_gives_the_numbers_of_one_process(client):
    on_dask = _search(DaskExecutor(client, timeout=SEARCH_TIMEOUT))
    assert numbers(on_dask) == numbers(_search(None))
    worker_pids = set(client.run(os.getpid).values())
    assert {r["worker"] for r in on_dask} <= worker_pids and os.getpid() not in worker_pids
    assert on_dask.best["model"] is not None             # weights shipped back
    assert on_dask.ensemble(2).predict(tiny_data()[1][0]).shape == (120, 10)


def test_a_client_is_accepted_as_executor_and_lambdas_travel(client):
    (x, y), val = tiny_data()
    results = random_search(lambda params: build_tiny(params), {"lr": LogUniform(1e-3, 1e-2)},
                            x, y, validation_data=val, trials=2, epochs=1, seed=0,
                            executor=client)
    assert results.counts["ok"] == 2


def _run(client, actions, tmp_path):
    """One trial per action straight on a DaskExecutor; records by index."""
    (x, y), (x_val, y_val) = tiny_data(n_train=96, n_val=32)
    config = TrialConfig(build=build_or_misbehave, epochs=1, batch_size=32,
                         abort_factor=3.0, keep_model=False)
    specs = [TrialSpec(i, {"lr": 1e-3, "action": action, "marker": str(tmp_path / f"m{i}")},
                       seed=i) for i, action in enumerate(actions)]
    executor = DaskExecutor(client, timeout=SEARCH_TIMEOUT)
    records = {r["index"]: r for r in executor.run(config, TrialData(x, y, x_val, y_val),
                                                  specs)}
    assert sorted(records) == list(range(len(actions)))
    return records


# One misbehaving trial per run, and the crashing one after the others: Dask charges a
# worker's death to every task on that worker, a retried trial queued behind the culprit
# included, so this is what makes the outcome of each trial certain.
def test_a_lost_worker_gets_its_trial_retried(client, tmp_path):
    records = _run(client, ["ok", "die_once"], tmp_path)
    assert records[0]["status"] == "ok", records[0]["error"]
    assert records[1]["status"] == "ok", records[1]["error"]
    assert (tmp_path / "m1").exists()                     # it did die the first time
    client.wait_for_workers(2, timeout=30)                # its nanny restarted it


def test_a_trial_that_keeps_killing_workers_is_reported(client, tmp_path):
    records = _run(client, ["ok", "ok", "die"], tmp_path)
    assert records[0]["status"] == records[1]["status"] == "ok"
    assert records[2]["status"] == "failed" and "KilledWorker" in records[2]["error"]
