"""Whole training epochs (``model.fit``) and ``predict`` of the nets users train, beside
the PyTorch training loop of the same net (same weights, Adam, batch size and data).

Nets from :mod:`fastcnn.tools.bench.fit_nets`: the Keras course MNIST net, the course
CIFAR-10 net with and without BatchNormalization, the README's digits net (all with
``--bench-quick``: mnist and digits only). An epoch here is 2,560
synthetic images (the digits net: its 1,437), so that the suite runs in minutes; ``python -m fastcnn bench --fit`` times real-size epochs.

pytest-benchmark runs every side in this one process, where PyTorch's and fastcnn's
thread pools can slow each other; the ratios to quote come from
``python -m fastcnn bench --fit``, which runs each side in its own process, alternating.
"""

import pytest

import fastcnn
from fastcnn.tools.bench import fit_nets
from fastcnn.tools.bench.timing import pinned_threads
from fastcnn.tools.bench.torch_ref import torch_available

SAMPLES = 2560
PREDICT_BATCH = 128


def pytest_generate_tests(metafunc):
    if "net_name" in metafunc.fixturenames:
        quick = metafunc.config.getoption("--bench-quick")
        metafunc.parametrize("net_name", ["mnist", "digits"] if quick else list(fit_nets.FIT_NETS))


def _data(net_name):
    spec = fit_nets.get_net(net_name)
    return fit_nets.make_data(net_name, min(SAMPLES, spec.samples))


def _fastcnn_epoch(net_name, backend):
    x, y = _data(net_name)
    batch = fit_nets.get_net(net_name).batch
    with fastcnn.use_backend(backend):
        model = fit_nets.build_model(net_name)
        model.fit(x[:2 * batch], y[:2 * batch], batch_size=batch, verbose=0)   # warm-up

    def epoch():
        with fastcnn.use_backend(backend):
            model.fit(x, y, batch_size=batch, epochs=1, verbose=0, shuffle=True)

    def predict():
        with fastcnn.use_backend(backend):
            model.predict(x, batch_size=PREDICT_BATCH)
    return epoch, predict


def _torch_epoch(net_name):
    x, y = _data(net_name)
    train_epoch, predict = fit_nets.torch_training(net_name, x, y)
    return train_epoch, (lambda: predict(x, PREDICT_BATCH))


def _sides(net_name, backend):
    if backend == "torch":
        if not torch_available():
            pytest.skip("PyTorch is not installed (optional: pip install torch==2.13.0)")
        return _torch_epoch(net_name)
    if backend not in fastcnn.available_backends():
        pytest.skip(f"backend {backend!r} is not available here")
    if backend == "numpy" and net_name != "digits":
        pytest.skip("the NumPy reference trains the large nets too slowly to benchmark")
    return _fastcnn_epoch(net_name, backend)


@pytest.mark.parametrize("what", ["fit epoch", "predict"])
def test_fit(benchmark, request, net_name, backend, threads, what):
    rounds = min(request.config.getoption("--bench-rounds"), 3)
    with pinned_threads(threads):
        epoch, predict = _sides(net_name, backend)
        fn = epoch if what == "fit epoch" else predict
        samples = len(_data(net_name)[0])
        benchmark.group = f"{what} {net_name} {threads}t"
        benchmark.extra_info.update(backend=backend, threads=threads, samples=samples,
                                    batch=fit_nets.get_net(net_name).batch)
        benchmark.pedantic(fn, rounds=rounds, iterations=1, warmup_rounds=1)
