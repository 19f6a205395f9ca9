"""One training step (forward, loss, backward, Adam update) of the course nets of
docs/benchmarks.md: every backend x net x threads, beside PyTorch and the step's GEMMs alone.

Nets, twins and baselines come from :mod:`fastcnn.bench.step_nets`:
``cifar10_b256``, ``cifar10_bn_b256`` (batch 256) and ``mnist_b100`` (batch 100;
the only one with ``--bench-quick``). ``torch`` is the PyTorch twin (same weights,
``torch.optim.Adam``); ``gemms`` is the step's im2col / dense matrix products alone on
preallocated arrays. Before timing, the first-step loss of fastcnn and of the twin
are compared once per net (relative 1e-4).

pytest-benchmark cannot interleave rounds; for ratios measured back to back use
``python -m fastcnn bench --steps ...`` (the report's "Training steps" section).
"""

import pytest

import fastcnn
from fastcnn.tools.bench import step_nets as S
from fastcnn.tools.bench.timing import pinned_threads
from fastcnn.tools.bench.torch_ref import torch_available

EXTRA_BACKENDS = ["gemms"]
_CHECKED: dict = {}


def pytest_generate_tests(metafunc):
    if "step_name" in metafunc.fixturenames:
        quick = metafunc.config.getoption("--bench-quick")
        metafunc.parametrize("step_name", ["mnist_b100"] if quick else list(S.NETS))


def _build(step_name, backend):
    if backend == "gemms":
        return S.gemms_step(step_name)
    if backend == "torch":
        return S.torch_step(step_name)
    with fastcnn.use_backend(backend):
        step = S.fastcnn_step(step_name)

    def run():
        with fastcnn.use_backend(backend):
            return step()
    return run


def test_train_step(benchmark, request, step_name, backend, threads):
    if backend == "torch" and not torch_available():
        pytest.skip("PyTorch is not installed (optional: pip install torch==2.13.0)")
    if backend not in ("torch", "gemms") and backend not in fastcnn.available_backends():
        pytest.skip(f"backend {backend!r} is not available here")
    rounds = request.config.getoption("--bench-rounds")
    with pinned_threads(threads):
        if torch_available() and step_name not in _CHECKED:
            _CHECKED[step_name] = S.check_first_loss(step_name)
        if step_name in _CHECKED:
            assert _CHECKED[step_name]["ok"], _CHECKED[step_name]
        fn = _build(step_name, backend)
        benchmark.group = f"train step {step_name} {threads}t"
        benchmark.extra_info.update(backend=backend, threads=threads, dtype="float32",
                                    batch=S.NETS[step_name].batch)
        benchmark.pedantic(fn, rounds=rounds, iterations=1, warmup_rounds=2)
