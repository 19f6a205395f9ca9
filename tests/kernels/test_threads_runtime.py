"""The thread runtime (fastcnn/kernels/_common.py): fork safety, race-free thread state,
single-threaded BLAS during our parallel work, OpenMP's wait policy, the thread bound.

Fork and multiprocessing run in a fresh interpreter with a timeout, so that a hang (the
bug these tests guard against: libgomp's pool after fork) fails the test instead of
stalling the suite.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest

import fastcnn
from fastcnn import kernels
from fastcnn.kernels import _common
from fastcnn.kernels import _dispatch

ROOT = Path(__file__).resolve().parents[2]

FORK_SCRIPT = textwrap.dedent('''
    import multiprocessing as mp
    import os
    import sys

    import numpy as np

    import fastcnn
    from fastcnn import kernels

    BACKEND = sys.argv[1]


    def step(threads):
        """conv + pool + batch norm forward and backward; a checksum of the results."""
        fastcnn.set_backend(BACKEND)
        fastcnn.set_num_threads(threads)
        rng = np.random.default_rng(0)
        x = rng.standard_normal((32, 8, 24, 24)).astype(np.float32)
        w = rng.standard_normal((16, 8, 3, 3)).astype(np.float32)
        out, cache = kernels.conv2d_forward(x, w, np.zeros(16, np.float32), 1, 1)
        dx, dw, db = kernels.conv2d_backward(out, cache)
        pooled, pcache = kernels.maxpool2d_forward(out, 2)
        dpool = kernels.maxpool2d_backward(pooled, pcache)
        bn, bcache = kernels.batchnorm_forward(pooled, np.ones(16, np.float32),
                                               np.zeros(16, np.float32), np.zeros(16, np.float32),
                                               np.ones(16, np.float32))
        dbn = kernels.batchnorm_backward(bn, bcache)[0]
        return float(sum(np.float64(a).sum() for a in (out, dx, dw, db, dpool, bn, dbn)))


    def child_steps(_):
        return step(1), step(2)


    if __name__ == "__main__":
        expected = step(2)                     # the parent has run kernels on 2 threads
        assert step(1) == expected             # and results do not depend on the count
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:                           # plain os.fork() child
            ok = child_steps(None) == (expected, expected)
            os.write(write, b"1" if ok else b"0")
            os._exit(0)
        os.waitpid(pid, 0)
        assert os.read(read, 1) == b"1", "os.fork() child: wrong results"
        for method in ("fork", "spawn", "forkserver"):
            with mp.get_context(method).Pool(2) as pool:
                for got in pool.map(child_steps, range(2)):
                    assert got == (expected, expected), (method, got)
        assert step(2) == expected             # the parent still works after the forks
        print("all children finished")
''')


def _run(script: str, *args, timeout=240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, script, *args], capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ, PYTHONPATH=str(ROOT)))


@pytest.mark.slow
def test_fork_and_process_pools_run_kernels_on_1_and_2_threads(fast_backend, tmp_path):
    script = tmp_path / "fork_check.py"
    script.write_text(FORK_SCRIPT)
    try:
        proc = _run(str(script), fast_backend)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{fast_backend}: a forked child or a pool hung (timeout)")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "all children finished" in proc.stdout


def test_openmp_waits_passively_unless_the_user_chose(tmp_path):
    pytest.importorskip("fastcnn.kernels.cython._kernels")
    script = tmp_path / "policy.py"
    script.write_text(textwrap.dedent('''
        import os
        from fastcnn.kernels import _dispatch
        info = _dispatch.backend_module("cython").backend_info()
        print(info["openmp_wait_policy"], "|", os.environ.get("OMP_WAIT_POLICY"))
    '''))
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=120, env=dict(env, PYTHONPATH=str(ROOT)))
    assert proc.returncode == 0, proc.stderr
    # set for libgomp while it loaded, and taken out of the environment again
    assert proc.stdout.strip() == "PASSIVE (set by fastcnn) | None"
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=120, env=dict(env, PYTHONPATH=str(ROOT),
                                                OMP_WAIT_POLICY="ACTIVE"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "set by the user: OMP_WAIT_POLICY=ACTIVE | ACTIVE"


def test_numba_uses_a_fork_safe_threading_layer():
    numba = pytest.importorskip("numba")
    if os.environ.get("NUMBA_THREADING_LAYER"):
        pytest.skip("the user chose Numba's threading layer")
    _dispatch.backend_module("numba")
    with fastcnn.use_backend("numba"), fastcnn.use_num_threads(2):
        x = np.ones((64, 64, 16, 16), np.float32)
        kernels.maxpool2d_forward(x, 2)
    assert numba.threading_layer() in ("tbb", "workqueue")


def test_set_num_threads_rejects_more_than_4_per_core():
    bound = _dispatch.MAX_THREADS
    assert bound == 4 * (os.cpu_count() or 1)
    fastcnn.set_num_threads(bound)
    assert fastcnn.get_num_threads() == bound
    with pytest.raises(ValueError, match=rf"set_num_threads: n = {bound + 1} is more than "
                                         rf"{bound} threads \(4 per core"):
        fastcnn.set_num_threads(bound + 1)
    with pytest.raises(ValueError, match="use_num_threads: n = 1000000 is more than"):
        with fastcnn.use_num_threads(10**6):
            pass
    assert fastcnn.get_num_threads() == bound


def test_use_num_threads_is_per_python_thread():
    fastcnn.set_num_threads(2)
    inside, outside = threading.Event(), threading.Event()
    seen = {}

    def worker():
        with fastcnn.use_num_threads(1):
            inside.set()
            outside.wait(10)
            seen["worker"] = fastcnn.get_num_threads()

    thread = threading.Thread(target=worker)
    thread.start()
    inside.wait(10)
    seen["main"] = fastcnn.get_num_threads()   # the worker's block does not leak here
    outside.set()
    thread.join(10)
    assert seen == {"main": 2, "worker": 1}


def _blas_threads() -> list[int]:
    threadpoolctl = pytest.importorskip("threadpoolctl")
    return [info["num_threads"] for info in threadpoolctl.threadpool_info()
            if info["user_api"] == "blas"]


def test_concurrent_kernel_calls_restore_blas_threads(fast_backend):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    _dispatch.backend_module(fast_backend)
    _common.refresh_blas_libraries()
    rng = np.random.default_rng(1)
    x = rng.standard_normal((8, 4, 12, 12)).astype(np.float32)
    w = rng.standard_normal((6, 4, 3, 3)).astype(np.float32)
    with fastcnn.use_backend(fast_backend):
        expected = kernels.conv2d_forward(x, w, None, 1, 1)[0]
    errors = []

    def worker():
        try:
            with fastcnn.use_backend(fast_backend), fastcnn.use_num_threads(2):
                for _ in range(30):
                    out, cache = kernels.conv2d_forward(x, w, None, 1, 1)
                    kernels.conv2d_backward(out, cache)
                    np.testing.assert_array_equal(out, expected)
        except Exception as err:   # reported below: an exception in a thread is lost
            errors.append(err)

    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
        before = _blas_threads()
        threads = [threading.Thread(target=worker) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not errors, errors
        assert _blas_threads() == before == [2] * len(before)


def test_blas_runs_on_one_thread_inside_fit_and_is_restored():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    seen = []

    class Probe(fastcnn.callbacks.Callback):
        def on_batch_end(self, batch, logs=None):
            seen.append(_blas_threads())

    model = fastcnn.Sequential([fastcnn.layers.Conv2D(2, 3), fastcnn.layers.Flatten(),
                                fastcnn.layers.Dense(3, activation="softmax")],
                               input_shape=(1, 6, 6))
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    x = np.random.default_rng(0).standard_normal((8, 1, 6, 6)).astype(np.float32)
    y = np.arange(8) % 3
    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
        before = _blas_threads()
        model.fit(x, y, batch_size=4, epochs=1, verbose=0, callbacks=[Probe()])
        assert _blas_threads() == before == [2] * len(before)
    assert seen and all(counts == [1] * len(counts) for counts in seen), seen


def test_workspace_pool_never_hands_one_array_to_two_callers():
    pool = _common.WorkspacePool()
    a = pool.take("w", 10, np.float32)
    b = pool.take("w", 10, np.float32)      # a is out: b is a new array
    assert a is not b
    pool.give("w", a)
    pool.give("w", b)                       # one array per name is kept
    assert pool.nbytes() == b.nbytes
    with pool.borrow("w", 4, np.float32) as c:
        assert c.shape == (4,) and c.base is b
    assert pool.take("w", 11, np.float32) is not b   # too small: a larger one
