"""Training-step benchmarks: a registry the layer API fills in.

docs/benchmarks.md sets targets for whole training steps (forward, loss, backward, one
optimizer update) of three course networks:

========================  =====================================================
name (suggested)          network
========================  =====================================================
``cifar10_b256``          Conv(3->64, 3x3 same)+ReLU, MaxPool 2, Conv(64->128, 3x3 same)
                          +ReLU, MaxPool 2, Flatten, Dense(8192->10), softmax CE, Adam;
                          batch 256. Target <= 0.7x PyTorch, <= 1.3x its GEMMs alone.
``cifar10_bn_b256``       the same with BatchNormalization after each conv. <= 0.7x PyTorch.
``mnist_b100``            Conv(1->4, 5x5 same)+ReLU, Conv(4->8, 5x5, s2, same)+ReLU,
                          Conv(8->12, 4x4, s2, same)+ReLU, Flatten, Dense(588->200)+ReLU,
                          Dense(200->10), Adam; batch 100. Target <= 0.6x PyTorch.
========================  =====================================================

The three above are registered by :mod:`fastcnn.tools.bench.step_nets` (listed in
:data:`STEP_MODULES` and imported by :func:`load_step_benchmarks`; it imports this
module, never the other way round), which also holds their PyTorch twins and GEMMs-alone
baselines.
This module defines how a step benchmark plugs into the report. To add one::

    from fastcnn.bench.steps import StepBenchmark, register_step

    def build_cifar_step():
        model = ...; x, y = ...          # everything made here, outside the timing
        def step():                      # one full training step on the ACTIVE backend
            ...
        return step

    register_step(StepBenchmark(
        "cifar10_b256", "course CIFAR-10 net, batch 256, one Adam step",
        build=build_cifar_step,
        build_torch=build_cifar_step_torch,   # optional: the same step in PyTorch
        build_gemms=build_cifar_gemms,        # optional: its GEMMs alone, preallocated
        check=check_cifar_step,               # optional: -> {"ok": bool, "rel_error": ...}
        max_vs_torch=0.7, max_vs_gemms=1.3))

``python -m fastcnn bench`` then times each registered step per backend (``build`` is
called inside ``use_backend``, and so is every call of its step) and thread count like
a kernel (warm-up, median of repeats, threads pinned, the rounds of every backend,
``torch`` and ``gemms`` interleaved), runs ``check`` once, and judges the targets at 2
threads. Registration is by import: put the ``register_step``
calls in a module listed in :data:`STEP_MODULES` (imported lazily by the report, so a
missing layer API only means no step rows).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable

__all__ = ["StepBenchmark", "STEP_BENCHMARKS", "STEP_MODULES", "register_step",
           "load_step_benchmarks"]


@dataclass(frozen=True)
class StepBenchmark:
    """One training step to time. Each ``build*`` returns a no-argument function that
    performs one step; building (model, data, optimizer state) is not timed."""

    name: str
    description: str
    build: Callable[[], Callable[[], object]]
    build_torch: Callable[[], Callable[[], object]] | None = None
    build_gemms: Callable[[], Callable[[], object]] | None = None
    max_vs_torch: float | None = None
    max_vs_gemms: float | None = None
    check: Callable[[], dict] | None = None
    quick: bool = False          # run by ``python -m fastcnn bench --quick``


#: name -> StepBenchmark; filled by :func:`register_step`.
STEP_BENCHMARKS: dict[str, StepBenchmark] = {}

#: Modules whose import registers step benchmarks (missing ones are skipped).
STEP_MODULES: list[str] = ["fastcnn.tools.bench.step_nets"]


def register_step(bench: StepBenchmark) -> StepBenchmark:
    """Add ``bench`` to :data:`STEP_BENCHMARKS` (a second one with the same name is an error)."""
    if bench.name in STEP_BENCHMARKS:
        raise ValueError(f"register_step: name must be unique; got {bench.name!r} twice.")
    STEP_BENCHMARKS[bench.name] = bench
    return bench


def load_step_benchmarks() -> tuple[dict[str, StepBenchmark], list[str]]:
    """Import :data:`STEP_MODULES`; returns the registry and the import errors seen."""
    errors = []
    for module in STEP_MODULES:
        try:
            importlib.import_module(module)
        except ImportError as err:
            errors.append(f"{module}: {err}")
    return STEP_BENCHMARKS, errors

