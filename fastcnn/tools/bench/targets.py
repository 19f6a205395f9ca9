"""The speed targets of docs/benchmarks.md, as data, and how a measured row is judged.

Every target is a ratio or a rate measured in the same run, at 2 threads, float32,
on ``fwd+bwd`` of a named case (see :mod:`fastcnn.bench.cases`). A row of the report is
judged against the targets for its ``(case, backend)``; the metrics are the row's own
fields: ``vs_gemms`` (time / the same GEMMs alone), ``vs_torch`` (time / PyTorch),
``gbs`` (effective GB/s) and ``vs_cython`` (time / the compiled backend).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Target", "TARGETS", "TARGET_THREADS", "TARGET_DIRECTION", "judge"]

TARGET_THREADS = 2
TARGET_DIRECTION = "fwd+bwd"


@dataclass(frozen=True)
class Target:
    case: str
    backend: str
    metric: str          # a field of a report row
    limit: float
    at_least: bool = False   # True: value >= limit is met; False: value <= limit

    @property
    def text(self) -> str:
        names = {"vs_gemms": "x GEMMs", "vs_torch": "x torch", "gbs": "GB/s",
                 "vs_cython": "x cython"}
        return f"{names[self.metric]} {'>=' if self.at_least else '<='} {self.limit:g}"

    def met(self, value) -> bool | None:
        if value is None:
            return None
        return value >= self.limit if self.at_least else value <= self.limit


_THREE_CONVS = ("conv3x3_64_32", "conv3x3_128_16", "conv3x3_256_8")
_MNIST = ("mnist_conv1", "mnist_conv2", "mnist_conv3")

TARGETS: list[Target] = (
    [Target(c, "cython", "vs_gemms", 1.15) for c in _THREE_CONVS]
    + [Target(c, "cython", "vs_torch", 1.3) for c in _THREE_CONVS]
    + [Target(c, "cython", "vs_torch", 0.5) for c in _MNIST]
    + [Target(c, "cython", "gbs", 10.0, at_least=True) for c in ("pool2_64x32", "pool2_128x16")]
    + [Target(c, "cython", "vs_torch", 0.3) for c in ("pool2_64x32", "pool2_128x16")]
    + [Target("pool3s2_64x32", "cython", "vs_torch", 0.5),
       Target("bn_spatial_64x32", "cython", "gbs", 12.0, at_least=True),
       Target("bn_spatial_64x32", "cython", "vs_torch", 0.6),
       Target("bn_dense_256x512", "cython", "vs_torch", 1.0),
       Target("avgpool2_64x32", "cython", "vs_torch", 1.0)]
    # "Numba backend, every kernel above: <= 2x the compiled backend".
    + [Target(c, "numba", "vs_cython", 2.0) for c in
       (*_THREE_CONVS, *_MNIST, "pool2_64x32", "pool2_128x16", "pool3s2_64x32",
        "avgpool2_64x32", "bn_spatial_64x32", "bn_dense_256x512")]
)


def judge(row: dict) -> list[dict]:
    """The targets that apply to ``row`` with the measured value and whether it is met
    (``None`` when the value could not be measured, e.g. torch or cython missing)."""
    if row["threads"] != TARGET_THREADS or row["direction"] != TARGET_DIRECTION:
        return []
    verdicts = []
    for target in TARGETS:
        if target.case == row["case"] and target.backend == row["backend"]:
            value = row.get(target.metric)
            verdicts.append({"target": target.text, "value": value, "met": target.met(value)})
    return verdicts
