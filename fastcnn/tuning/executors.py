"""Where the trials of a search run: here, on a local process pool, or on Dask.

Trials are independent, so they parallelise perfectly across processes. Every
executor has ``run(config, data, specs)``: a generator that yields one record (see
:func:`fastcnn.tuning.trial.run_trial`) per trial *as trials finish*, and ``slots``,
the number of trials it runs at once.

=====================  ==========================================================
``SequentialExecutor``  one trial after the other, in this process
``LocalExecutor``       a pool of worker processes on this machine
                        (``concurrent.futures.ProcessPoolExecutor``)
``DaskExecutor``        the workers of a ``dask.distributed`` cluster (a ``Client``
                        or a scheduler address), e.g. many machines
=====================  ==========================================================

Cores: a worker process runs its trial's kernels on ``threads_per_worker`` threads.
The local pool's defaults keep ``workers x threads_per_worker <= cores``: more
threads than cores only adds switching. Trials of a small net gain little from a
second kernel thread but everything from a second process, so the default is one
worker per core with one thread each.

Failures never hang a search: a local worker that dies mid-trial (crash, out of
memory, killed) breaks the pool; the trials that were running are retried, alone, in
a fresh pool (so a second death is blamed on the right trial), and reported as
``"failed"`` after ``retries`` deaths. A trial running longer than
``trial_timeout`` seconds has its worker killed and is reported as failed. On Dask,
the scheduler itself reschedules the trial of a lost worker (up to its
``distributed.scheduler.allowed-failures`` setting) and then reports it lost.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import time
import uuid
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from threadpoolctl import threadpool_limits

from fastcnn.kernels._dispatch import set_num_threads
from fastcnn.tuning.trial import TrialSpec, _new_record, run_trial

__all__ = ["SequentialExecutor", "LocalExecutor", "DaskExecutor", "get_executor",
           "failed_record"]


def failed_record(spec: TrialSpec, error: str) -> dict:
    """The record of a trial that could not run to its end (worker lost, timeout)."""
    record = _new_record(spec)
    record["error"] = error
    record["worker"] = None
    return record


class SequentialExecutor:
    """Run the trials one after the other in this process (kernels on ``threads``
    threads; default: the current :func:`fastcnn.get_num_threads`)."""

    slots = 1

    def __init__(self, threads: int | None = None):
        self.threads = threads

    def run(self, config, data, specs):
        for spec in specs:
            yield run_trial(config, data, spec, self.threads)

    def __repr__(self):
        return f"SequentialExecutor(threads={self.threads})"


# ---------------------------------------------------------------- local process pool
_WORKER_STATE: dict = {}          # set once per worker process by _init_worker


def _init_worker(config, data, threads: int) -> None:
    """Runs once in each new worker: keep the search's data, pin the thread counts."""
    # Idle OpenMP threads spin-wait by default, which makes kernels many times slower
    # when other processes (the other workers) use the cores. Read when the OpenMP
    # runtime loads, i.e. at this worker's first kernel call, after this line.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    set_num_threads(threads)
    # The limit object must stay alive, or BLAS goes back to its own thread count.
    _WORKER_STATE.update(config=config, data=data, threads=threads,
                         blas_limit=threadpool_limits(threads))


def _run_in_worker(spec: TrialSpec) -> dict:
    state = _WORKER_STATE
    return run_trial(state["config"], state["data"], spec, state["threads"])


def _check_picklable(config) -> None:
    try:
        pickle.dumps(config.build)
    except Exception as exc:
        raise TypeError(
            f"LocalExecutor: build must be picklable to reach the worker processes (a "
            f"function defined at the top level of a module); got {config.build!r} "
            f"({type(exc).__name__}: {exc}). Hint: move it out of the enclosing function, "
            f"or run with executor=None (in this process) or on Dask (which pickles "
            f"lambdas and closures).") from None


class LocalExecutor:
    """A pool of ``workers`` processes on this machine.

    Parameters
    ----------
    workers : int, optional
        Default: the number of cores (``os.cpu_count()``). Never more than the trials.
    threads_per_worker : int, optional
        Kernel and BLAS threads in each worker. Default: ``max(1, cores // workers)``.
    start_method : "spawn" (default), "forkserver" or "fork"
        How workers start. "spawn" starts a fresh interpreter (~0.5 s once per worker
        here, negligible next to a trial) and is safe whatever ran before in this
        process; "fork" copies this process, including the state of OpenMP/BLAS
        thread pools that may have run here, which is only safe once the kernels are
        fork-safe.
    retries : int
        How often a trial whose worker died is run again before it is reported failed.
    trial_timeout : float, optional
        Seconds a trial may run; its worker is then killed and it is reported failed.
        Counted from submission, so a fresh worker's start-up (about a second, more on
        a busy machine) is included.
    """

    def __init__(self, workers=None, threads_per_worker=None, start_method="spawn",
                 retries=1, trial_timeout=None):
        cores = os.cpu_count() or 1
        if workers is not None and (not isinstance(workers, int) or isinstance(workers, bool)
                                    or workers < 1):
            raise ValueError(f"LocalExecutor: workers must be a positive int; got {workers!r}.")
        self.workers = workers or cores
        if threads_per_worker is None:
            threads_per_worker = max(1, cores // self.workers)
        if not isinstance(threads_per_worker, int) or threads_per_worker < 1:
            raise ValueError(f"LocalExecutor: threads_per_worker must be a positive int; got "
                             f"{threads_per_worker!r}.")
        self.threads_per_worker = threads_per_worker
        if start_method not in multiprocessing.get_all_start_methods():
            raise ValueError(f"LocalExecutor: start_method must be one of "
                             f"{multiprocessing.get_all_start_methods()}; got {start_method!r}.")
        self.start_method = start_method
        if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
            raise ValueError(f"LocalExecutor: retries must be a non-negative int; got "
                             f"{retries!r}.")
        self.retries = retries
        if trial_timeout is not None and not (isinstance(trial_timeout, (int, float))
                                              and trial_timeout > 0):
            raise ValueError(f"LocalExecutor: trial_timeout must be a positive number of "
                             f"seconds or None; got {trial_timeout!r}.")
        self.trial_timeout = trial_timeout

    @property
    def slots(self) -> int:
        return self.workers

    def __repr__(self):
        return (f"LocalExecutor(workers={self.workers}, threads_per_worker="
                f"{self.threads_per_worker}, start_method={self.start_method!r})")

    def run(self, config, data, specs):
        _check_picklable(config)
        queue = [(spec, False) for spec in specs]   # (spec, suspect: in flight at a death)
        deaths: dict[int, int] = {}
        width = min(self.workers, len(queue))
        while queue:
            pool = ProcessPoolExecutor(
                max_workers=width, mp_context=multiprocessing.get_context(self.start_method),
                initializer=_init_worker, initargs=(config, data, self.threads_per_worker))
            try:
                yield from self._drain(pool, queue, deaths, width)
            finally:
                pool.shutdown(wait=False, cancel_futures=True)

    def _drain(self, pool, queue, deaths, width):
        """Feed ``pool`` from ``queue`` (at most ``width`` trials in flight, so a
        submitted trial is a running trial) and yield records, until the queue is
        empty or the pool is broken; lost trials go back to the queue's front."""
        in_flight: dict = {}                      # future -> (spec, suspect, start time)
        while queue or in_flight:
            if not self._submit(pool, queue, in_flight, width) and not in_flight:
                return                            # broken before anything ran: new pool
            done, _ = wait(in_flight, timeout=1.0, return_when=FIRST_COMPLETED)
            lost = []
            for future in done:
                spec, suspect, _ = in_flight.pop(future)
                try:
                    yield future.result()
                except BrokenProcessPool:
                    lost.append((spec, suspect))
            timed_out = self._overdue(in_flight)
            if timed_out:
                _kill_workers(pool)
                for future, (spec, suspect, _) in list(in_flight.items()):
                    if spec in timed_out:
                        yield failed_record(spec, f"timed out after {self.trial_timeout:g} s "
                                                  f"(trial_timeout); its worker was killed")
                    else:
                        queue.insert(0, (spec, suspect))   # innocent: run it again
                return
            if lost:
                # Every trial still in flight went down with the pool, too.
                lost += [(spec, suspect) for spec, suspect, _ in in_flight.values()]
                yield from self._requeue(lost, queue, deaths)
                return

    @staticmethod
    def _submit(pool, queue, in_flight, width) -> bool:
        """Submit from the queue's front; False when the pool is already broken."""
        while queue and len(in_flight) < width:
            spec, suspect = queue[0]
            # A suspect runs alone: if its worker dies again, it is the culprit.
            if suspect and in_flight:
                break
            try:
                future = pool.submit(_run_in_worker, spec)
            except BrokenProcessPool:
                return False
            queue.pop(0)
            in_flight[future] = (spec, suspect, time.monotonic())
            if suspect:
                break
        return True

    def _overdue(self, in_flight) -> list:
        if self.trial_timeout is None:
            return []
        now = time.monotonic()
        return [spec for spec, _, start in in_flight.values()
                if now - start > self.trial_timeout]

    def _requeue(self, lost, queue, deaths):
        """Charge a death to each trial that was running (exactly to the culprit once
        suspects run alone); report those over ``retries``, requeue the others."""
        for spec, _ in reversed(lost):
            deaths[spec.index] = deaths.get(spec.index, 0) + 1
            if deaths[spec.index] > self.retries:
                yield failed_record(spec, f"worker process died while running this trial "
                                          f"({deaths[spec.index]} times)")
            else:
                queue.insert(0, (spec, True))


def _kill_workers(pool) -> None:
    """Kill a pool's worker processes (Python >= 3.14 has ``pool.kill_workers()``;
    before that the processes are only reachable through ``pool._processes``)."""
    kill = getattr(pool, "kill_workers", None)
    if kill is not None:
        kill()
        return
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        process.kill()


# ------------------------------------------------------------------------------ Dask
class DaskExecutor:
    """Run trials as tasks on a ``dask.distributed`` cluster.

    Parameters
    ----------
    client : distributed.Client or str
        A connected client, or a scheduler address (``"tcp://host:8786"``) to connect
        to (that client is closed when the search ends).
    threads_per_trial : int
        Kernel/BLAS threads each trial uses (default 1: start workers with
        ``--nthreads 1`` and one worker per core). Trials inside one worker process run
        one at a time (the random generator is per process), so a worker with several
        threads still trains one model at a time.
    timeout : float, optional
        Seconds the whole search may take; unfinished trials are then cancelled and
        reported as failed.

    The data are sent to each worker once, and ``build`` travels with cloudpickle, so
    lambdas and closures work. Only as many trials as the cluster has threads are
    submitted at a time, so none waits on a busy worker. A worker that dies is
    replaced by its nanny and its trial rescheduled by the scheduler, up to
    ``distributed.scheduler.allowed-failures`` times; then it is reported failed.
    """

    def __init__(self, client, threads_per_trial=1, timeout=None):
        import distributed  # optional (fastcnn[distributed]): only when used
        self._owns_client = isinstance(client, str)
        if self._owns_client:
            client = distributed.Client(client, timeout=30)
        if not isinstance(client, distributed.Client):
            raise TypeError(f"DaskExecutor: client must be a distributed.Client or a "
                            f"scheduler address 'tcp://host:port'; got {client!r}.")
        self.client = client
        self.threads_per_trial = int(threads_per_trial)
        self.timeout = timeout

    @property
    def slots(self) -> int:
        return max(1, sum(self.client.nthreads().values()))

    def __repr__(self):
        return f"DaskExecutor({self.client!r}, threads_per_trial={self.threads_per_trial})"

    def run(self, config, data, specs):
        import distributed  # optional (fastcnn[distributed]): only when used

        from fastcnn.tuning import _dask  # imports distributed: only when used
        client, token = self.client, uuid.uuid4().hex[:12]
        plugin = f"fastcnn-data-{token}"
        client.register_plugin(_dask.SearchData(token, data), name=plugin)
        queue, running = list(specs), {}           # running: future -> spec
        completed = distributed.as_completed(timeout=self.timeout)

        def submit():
            # Only as many trials in flight as the cluster has threads now (a dead
            # worker's are gone until its nanny restarts it): no trial waits in a
            # worker's queue, where a crash of the running trial would count against
            # it too (Dask charges a death to every task on the lost worker).
            width = self.slots
            while queue and len(running) < width:
                spec = queue[0]
                future = client.submit(_dask.run_trial_on_worker, config, token, spec,
                                       self.threads_per_trial, pure=False,
                                       key=f"fastcnn-trial-{token}-{spec.stage}-{spec.index}")
                running[future] = queue.pop(0)
                completed.add(future)

        try:
            submit()
            for future in completed:
                spec = running.pop(future)
                record = self._record(future, spec)
                # Drop Dask's copy of the result: were its worker to die now, Dask
                # would otherwise train this trial again to restore it.
                future.release()
                yield record
                submit()
        except TimeoutError:
            for spec in list(running.values()) + queue:
                yield failed_record(spec, f"timed out: the search took longer than "
                                          f"{self.timeout:g} s (timeout)")
        finally:
            client.cancel(list(running))
            client.unregister_worker_plugin(plugin)
            if self._owns_client:
                client.close()

    @staticmethod
    def _record(future, spec) -> dict:
        if future.status == "finished":
            return future.result()
        # "error": its workers kept dying (KilledWorker); or "cancelled"
        why = repr(future.exception()) if future.status == "error" else future.status
        return failed_record(spec, f"Dask could not run this trial: {why}")


def get_executor(executor):
    """``None`` -> :class:`SequentialExecutor`; an int n -> ``LocalExecutor(n)``;
    ``"local"`` -> ``LocalExecutor()``; a ``distributed.Client`` or an address
    ``"tcp://..."`` -> :class:`DaskExecutor`; an executor object -> itself."""
    if executor is None:
        return SequentialExecutor()
    if isinstance(executor, bool):
        raise TypeError("executor must be None, an int, 'local', a Dask client or address, "
                        "or an executor object; got a bool.")
    if isinstance(executor, int):
        return LocalExecutor(workers=executor)
    if executor == "local":
        return LocalExecutor()
    if isinstance(executor, str) and "://" in executor:
        return DaskExecutor(executor)
    if type(executor).__module__.split(".")[0] == "distributed":
        return DaskExecutor(executor)
    if callable(getattr(executor, "run", None)) and hasattr(executor, "slots"):
        return executor
    raise TypeError(f"executor must be None, an int (local workers), 'local', a Dask client "
                    f"or scheduler address 'tcp://host:port', or an object with run() and "
                    f"slots; got {executor!r}.")
