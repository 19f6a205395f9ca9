"""The local process pool: same numbers as in-process, dead and hung workers handled.

Every search here runs with a ``trial_timeout`` and small data, so a broken pool
shows up as a failed test within seconds, never as a hung test run.
"""

import os

import pytest

from _tuning_helpers import build_or_misbehave, build_tiny, numbers, tiny_data
from fastcnn.tuning import LocalExecutor, LogUniform, SequentialExecutor, random_search
from fastcnn.tuning.executors import get_executor
from fastcnn.tuning.trial import TrialConfig, TrialData, TrialSpec

SPACE = {"lr": LogUniform(1e-4, 50.0)}
TIMEOUT = 50          # seconds; a trial here takes well under one


def _search(executor, trials=4):
    (x, y), val = tiny_data()
    return random_search(build_tiny, SPACE, x, y, validation_data=val, trials=trials,
                         epochs=2, seed=3, executor=executor)


def test_two_workers_give_the_numbers_of_one_process():
    pool = LocalExecutor(workers=2, threads_per_worker=1, trial_timeout=TIMEOUT)
    in_process, pooled = _search(None), _search(pool)
    assert numbers(pooled) == numbers(in_process)
    assert len({r["worker"] for r in pooled}) == 2          # both workers trained
    assert os.getpid() not in {r["worker"] for r in pooled}


def _run(executor, actions, tmp_path):
    """Run one trial per action directly on the executor; records by index."""
    (x, y), (x_val, y_val) = tiny_data(n_train=96, n_val=32)
    config = TrialConfig(build=build_or_misbehave, epochs=1, batch_size=32,
                         abort_factor=3.0, keep_model=False)
    specs = [TrialSpec(i, {"lr": 1e-3, "action": action, "marker": str(tmp_path / f"m{i}")},
                       seed=i) for i, action in enumerate(actions)]
    records = list(executor.run(config, TrialData(x, y, x_val, y_val), specs))
    assert sorted(r["index"] for r in records) == list(range(len(actions)))
    return {r["index"]: r for r in records}


def test_a_worker_that_dies_once_gets_its_trial_retried(tmp_path):
    pool = LocalExecutor(workers=2, threads_per_worker=1, retries=1, trial_timeout=TIMEOUT)
    records = _run(pool, ["ok", "die_once", "ok", "ok"], tmp_path)
    assert [records[i]["status"] for i in range(4)] == ["ok"] * 4
    assert (tmp_path / "m1").exists()                        # it did die the first time


def test_a_trial_that_always_kills_its_worker_is_reported_and_only_it(tmp_path):
    pool = LocalExecutor(workers=2, threads_per_worker=1, retries=1, trial_timeout=TIMEOUT)
    records = _run(pool, ["ok", "die", "ok", "ok"], tmp_path)
    assert records[1]["status"] == "failed"
    assert "worker process died while running this trial (2 times)" in records[1]["error"]
    assert [records[i]["status"] for i in (0, 2, 3)] == ["ok"] * 3


def test_a_hung_trial_is_killed_after_trial_timeout(tmp_path):
    # The clock starts at submission, so it includes a fresh worker's start-up, which
    # takes several seconds on a busy machine: 20 s leaves the "ok" trials room.
    pool = LocalExecutor(workers=2, threads_per_worker=1, trial_timeout=20)
    records = _run(pool, ["ok", "hang", "ok"], tmp_path)
    assert records[1]["status"] == "failed" and "timed out after 20 s" in records[1]["error"]
    assert records[0]["status"] == records[2]["status"] == "ok"


def test_build_must_be_picklable_for_worker_processes():
    (x, y), val = tiny_data()
    with pytest.raises(TypeError, match="build must be picklable"):
        random_search(lambda p: build_tiny(p), SPACE, x, y, validation_data=val, trials=2,
                      executor=LocalExecutor(workers=2))


def test_default_sizes_keep_workers_times_threads_within_the_cores():
    cores = os.cpu_count()
    for workers in (None, 1, 2, cores + 3):
        pool = LocalExecutor(workers=workers)
        assert pool.threads_per_worker >= 1
        assert pool.workers * pool.threads_per_worker <= max(cores, pool.workers)
    assert LocalExecutor().workers == cores and LocalExecutor(workers=1).threads_per_worker \
        == cores


def test_get_executor_maps_the_shortcuts():
    assert isinstance(get_executor(None), SequentialExecutor)
    assert get_executor(2).workers == 2 and isinstance(get_executor("local"), LocalExecutor)
    pool = LocalExecutor(workers=1)
    assert get_executor(pool) is pool
    with pytest.raises(TypeError, match="executor must be"):
        get_executor(True)


@pytest.mark.parametrize("kwargs, match", [
    ({"workers": 0}, "workers must be a positive int"),
    ({"threads_per_worker": 0}, "threads_per_worker must be a positive int"),
    ({"start_method": "thread"}, "start_method must be one of"),
    ({"retries": -1}, "retries must be a non-negative int"),
    ({"trial_timeout": 0}, "trial_timeout must be a positive number"),
])
def test_bad_pool_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LocalExecutor(**kwargs)
