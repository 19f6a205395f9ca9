"""One side of the whole-epoch benchmark, in its own process.

``python -m fastcnn.tools.bench.fit_worker SIDE NET THREADS SAMPLES EPOCHS`` trains
``NET`` (:mod:`fastcnn.tools.bench.fit_nets`) for ``EPOCHS`` timed epochs on
``SAMPLES`` synthetic images and prints one JSON line: the epoch times, then the time of
``predict`` over the same images. ``SIDE`` is ``torch`` or a fastcnn backend name
(``cython``, ``numba``, ``numpy``).

Each side runs in a fresh process (the orchestrator, :mod:`fastcnn.tools.bench.fit`,
alternates them) because PyTorch's and fastcnn's thread pools slow each other down in one
process, and so that neither side inherits the other's warm caches or memory. The thread
count is fixed before any work: ``torch.set_num_threads`` for PyTorch,
``fastcnn.set_num_threads`` for fastcnn -- nothing else: no environment variable, as a
user would run it.

For fastcnn the backend's kernel functions are wrapped with a clock, so the report can
say which share of an epoch is spent outside the kernels (Dense matmuls, activations,
loss, optimizer, batching and Python overhead).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time

from fastcnn.kernels import _dispatch
from fastcnn.tools.bench import fit_nets
from fastcnn.train.callbacks import Callback

__all__ = ["KERNEL_FUNCTIONS", "time_fastcnn", "time_torch", "main"]

#: The backend functions whose time counts as "inside the kernels".
KERNEL_FUNCTIONS = ("conv2d_forward", "conv2d_backward", "maxpool2d_forward",
                    "maxpool2d_backward", "batchnorm_forward", "batchnorm_backward",
                    "im2col", "col2im")

#: Images per ``predict`` call batch on both sides.
PREDICT_BATCH = 128


@contextlib.contextmanager
def _clocked_kernels(module):
    """Inside the block, ``module``'s kernel functions add the duration of each
    outermost call to the yielded one-element list (seconds); a kernel calling another
    (the reference's conv calls its im2col) is counted once. Restored afterwards."""
    spent, depth = [0.0], [0]

    def timed(fn):
        def wrapper(*args, **kwargs):
            depth[0] += 1
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                depth[0] -= 1
                if depth[0] == 0:
                    spent[0] += time.perf_counter() - start
        return wrapper

    originals = {name: getattr(module, name) for name in KERNEL_FUNCTIONS}
    for name, fn in originals.items():
        setattr(module, name, timed(fn))
    try:
        yield spent
    finally:
        for name, fn in originals.items():
            setattr(module, name, fn)


class _EpochClock(Callback):
    """A fit callback recording each epoch's wall time and kernel time."""

    def __init__(self, kernel_seconds: list):
        super().__init__()
        self.kernel_seconds = kernel_seconds
        self.epochs: list[dict] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()
        self._kernels = self.kernel_seconds[0]

    def on_epoch_end(self, epoch, logs=None):
        self.epochs.append({"seconds": time.perf_counter() - self._start,
                            "kernel_seconds": self.kernel_seconds[0] - self._kernels})


def time_fastcnn(backend: str, net: str, threads: int, samples: int, epochs: int) -> dict:
    """Train with ``model.fit`` on ``backend``: one short warm-up fit (compiles Numba,
    fills the workspaces), then ``epochs`` timed epochs; then ``predict``."""
    _dispatch.set_backend(backend)
    _dispatch.set_num_threads(threads)
    batch = fit_nets.get_net(net).batch
    x, y = fit_nets.make_data(net, samples)
    model = fit_nets.build_model(net)
    with _clocked_kernels(_dispatch.backend_module(backend)) as spent:
        model.fit(x[:2 * batch], y[:2 * batch], batch_size=batch, epochs=1, verbose=0)
        clock = _EpochClock(spent)
        model.fit(x, y, batch_size=batch, epochs=epochs, verbose=0, shuffle=True, seed=0,
                  callbacks=[clock])
    model.predict(x[:PREDICT_BATCH], batch_size=PREDICT_BATCH)
    start = time.perf_counter()
    model.predict(x, batch_size=PREDICT_BATCH)
    predict_seconds = time.perf_counter() - start
    return {"epochs": clock.epochs, "predict_seconds": predict_seconds}


def time_torch(net: str, threads: int, samples: int, epochs: int) -> dict:
    """The PyTorch twin's training loop: one warm-up epoch on two batches, then
    ``epochs`` timed epochs; then predict."""
    import torch  # optional: only this side needs it

    torch.set_num_threads(threads)
    batch = fit_nets.get_net(net).batch
    x, y = fit_nets.make_data(net, samples)
    warm_epoch, _ = fit_nets.torch_training(net, x[:2 * batch], y[:2 * batch])
    warm_epoch()
    train_epoch, predict = fit_nets.torch_training(net, x, y)
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        train_epoch()
        times.append({"seconds": time.perf_counter() - start, "kernel_seconds": None})
    predict(x[:PREDICT_BATCH], PREDICT_BATCH)
    start = time.perf_counter()
    predict(x, PREDICT_BATCH)
    return {"epochs": times, "predict_seconds": time.perf_counter() - start}


def main(argv=None) -> int:
    side, net, threads, samples, epochs = (argv if argv is not None else sys.argv[1:])
    threads, samples, epochs = int(threads), int(samples), int(epochs)
    if side == "torch":
        result = time_torch(net, threads, samples, epochs)
    else:
        result = time_fastcnn(side, net, threads, samples, epochs)
    result.update(side=side, net=net, threads=threads, samples=samples,
                  load_avg=[round(v, 2) for v in os.getloadavg()])
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
