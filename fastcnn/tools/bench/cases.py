"""Named shape presets, the work each one does, and how to run it.

A *case* is one kernel on one fixed shape (float32 unless said). A *direction* is what
is timed: ``"fwd"``, ``"bwd"`` (backward only, from a forward cache made outside the
timed region) or ``"fwd+bwd"``. Everything here is shared by the report
(``python -m fastcnn bench``) and the pytest-benchmark suites in ``benchmarks/``.

Work counted (see docs/benchmarks.md):

* convolution FLOPs: ``2*N*F*C*KH*KW*OH*OW`` per forward (one multiply + one add per
  term of every output); the backward does two such products (``dW`` and ``dcols``),
  so it counts 2x forward and ``fwd+bwd`` counts 3x.
* effective bytes: each tensor read or written counted *once* at its own size.
  Pooling forward reads ``x`` and writes ``out``; its backward reads ``dout`` and
  writes ``dx`` (fwd+bwd = 2x forward). Batch norm forward reads ``x`` and writes
  ``out`` (2x input); its backward reads ``dout`` and ``x`` and writes ``dx``, so
  fwd+bwd = 5x input = 2.5x forward. These rules reproduce the GB/s that
  docs/benchmarks.md quotes for PyTorch (2.8 GB/s pooling, 8.9 GB/s batch norm).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fastcnn import kernels
from fastcnn.kernels.geometry import ConvCase, WindowGeometry, same_padding
from fastcnn.kernels._dispatch import use_backend

__all__ = [
    "ConvCase", "PoolCase", "AvgPoolCase", "BatchNormCase", "CASES", "QUICK_CASES", "DIRECTIONS",
    "get_case", "make_inputs", "kernel_callable", "kernel_outputs", "gemm_callable",
    "work", "check_outputs",
]


@dataclass(frozen=True)
class PoolCase:
    """``maxpool2d`` on x ``(N, C, H, W)`` with a ``size x size`` window."""

    name: str
    n: int
    c: int
    h: int
    w: int
    size: int
    stride: int
    padding: int = 0
    note: str = ""
    kernel: str = field(default="maxpool2d", init=False)

    @property
    def geometry(self) -> WindowGeometry:
        p = self.padding
        return WindowGeometry(self.n, self.c, self.h, self.w, self.size, self.size,
                              self.stride, self.stride, p, p, p, p)

    @property
    def shape_text(self) -> str:
        return (f"({self.n},{self.c},{self.h},{self.w}) {self.size}x{self.size}/{self.stride}"
                + (f" pad {self.padding}" if self.padding else ""))


@dataclass(frozen=True)
class AvgPoolCase(PoolCase):
    """``avgpool2d`` (PyTorch's defaults: padding counted in the divisor) on the same
    shapes as :class:`PoolCase`; the same bytes are counted."""

    kernel: str = field(default="avgpool2d", init=False)


@dataclass(frozen=True)
class BatchNormCase:
    """``batchnorm`` in training mode on ``(N, D)`` (dense) or ``(N, C, H, W)`` (spatial)."""

    name: str
    shape: tuple
    note: str = ""
    kernel: str = field(default="batchnorm", init=False)

    @property
    def shape_text(self) -> str:
        kind = "dense" if len(self.shape) == 2 else "spatial"
        return f"{kind} {tuple(self.shape)}"


#: Every named preset, in report order. The first three convolutions, the MNIST
#: layers, the pools and the batch norms are the ones docs/benchmarks.md sets targets for.
CASES = {c.name: c for c in [
    ConvCase("conv3x3_64_32", 64, 64, 32, 32, 64, 3, 3, 1, 1, note="target"),
    ConvCase("conv3x3_128_16", 64, 128, 16, 16, 128, 3, 3, 1, 1, note="target"),
    ConvCase("conv3x3_256_8", 64, 256, 8, 8, 256, 3, 3, 1, 1, note="target"),
    ConvCase("mnist_conv1", 100, 1, 28, 28, 4, 5, 5, 1, 2, note="target (MNIST net layer 1)"),
    ConvCase("mnist_conv2", 100, 4, 28, 28, 8, 5, 5, 2,
             (same_padding(28, 5, 2), same_padding(28, 5, 2)),
             note="target (MNIST net layer 2, 'same' stride 2)"),
    ConvCase("mnist_conv3", 100, 8, 14, 14, 12, 4, 4, 2,
             (same_padding(14, 4, 2), same_padding(14, 4, 2)),
             note="target (MNIST net layer 3, 'same' stride 2)"),
    ConvCase("cifar_conv1", 256, 3, 32, 32, 64, 3, 3, 1, 1, note="CIFAR-10 net layer 1"),
    ConvCase("depthwise3x3_64_32", 64, 64, 32, 32, 64, 3, 3, 1, 1, groups=64,
             note="target (depthwise: groups = C, MobileNet's building block)"),
    ConvCase("keras_mnist_conv1", 128, 1, 28, 28, 32, 3, 3, 1, 1,
             note="Keras course MNIST net layer 1"),
    ConvCase("keras_mnist_conv2", 128, 32, 14, 14, 64, 3, 3, 1, 1,
             note="Keras course MNIST net layer 2"),
    PoolCase("pool2_64x32", 64, 64, 32, 32, 2, 2, 0, "target"),
    PoolCase("pool2_128x16", 64, 128, 16, 16, 2, 2, 0, "target"),
    PoolCase("pool3s2_64x32", 64, 64, 32, 32, 3, 2, 1, "target (overlapping)"),
    AvgPoolCase("avgpool2_64x32", 64, 64, 32, 32, 2, 2, 0, "target (average)"),
    BatchNormCase("bn_spatial_64x32", (64, 64, 32, 32), "target"),
    BatchNormCase("bn_dense_256x512", (256, 512), "target"),
    # Small variants used by --quick (seconds, not minutes, on the NumPy reference).
    ConvCase("conv3x3_64_32_n8", 8, 64, 32, 32, 64, 3, 3, 1, 1, note="quick"),
    PoolCase("pool2_64x32_n8", 8, 64, 32, 32, 2, 2, 0, "quick"),
    AvgPoolCase("avgpool2_64x32_n8", 8, 64, 32, 32, 2, 2, 0, "quick"),
    BatchNormCase("bn_spatial_64x32_n8", (8, 64, 32, 32), "quick"),
]}

#: Presets the full report runs by default (the targets plus the CIFAR first layer).
FULL_CASES = [name for name, c in CASES.items() if c.note != "quick"]
#: A subset that finishes well under a minute on every backend.
QUICK_CASES = ["conv3x3_64_32_n8", "mnist_conv1", "pool2_64x32_n8", "avgpool2_64x32_n8",
               "bn_spatial_64x32_n8", "bn_dense_256x512"]

#: What can be timed for each kernel.
DIRECTIONS = {"conv2d": ("fwd", "bwd", "fwd+bwd"),
              "maxpool2d": ("fwd", "fwd+bwd"),
              "avgpool2d": ("fwd", "fwd+bwd"),
              "batchnorm": ("fwd", "fwd+bwd")}


def get_case(name: str):
    """The preset called ``name`` (a ``ValueError`` lists the known names)."""
    try:
        return CASES[name]
    except KeyError:
        raise ValueError(f"bench: case must be one of {sorted(CASES)}; got {name!r}.") from None


# ----------------------------------------------------------------------------- inputs


def make_inputs(case, dtype=np.float32, seed=0) -> dict:
    """Random inputs for ``case`` (standard normal, He-scaled conv weights), made once
    and reused by every backend so they all see the same numbers."""
    rng = np.random.default_rng(seed)

    def normal(*shape, scale=1.0):
        return (rng.standard_normal(shape) * scale).astype(dtype)

    if case.kernel == "conv2d":
        g = case.geometry
        fan_in = g.c // case.groups * g.kh * g.kw
        return {"x": normal(g.n, g.c, g.h, g.w),
                "w": normal(*case.w_shape, scale=np.sqrt(2.0 / fan_in)),
                "b": normal(case.f, scale=0.1),
                "dout": normal(g.n, case.f, g.oh, g.ow)}
    if case.kernel in ("maxpool2d", "avgpool2d"):
        g = case.geometry
        return {"x": normal(g.n, g.c, g.h, g.w), "dout": normal(g.n, g.c, g.oh, g.ow)}
    c = case.shape[1]
    return {"x": normal(*case.shape), "gamma": 1.0 + normal(c, scale=0.1),
            "beta": normal(c, scale=0.1), "running_mean": np.zeros(c, dtype),
            "running_var": np.ones(c, dtype), "dout": normal(*case.shape)}


def _forward(case, inp):
    if case.kernel == "conv2d":
        return kernels.conv2d_forward(inp["x"], inp["w"], inp["b"], case.stride, case.padding,
                                      case.dilation, case.groups)
    if case.kernel == "maxpool2d":
        return kernels.maxpool2d_forward(inp["x"], case.size, case.stride, case.padding)
    if case.kernel == "avgpool2d":
        return kernels.avgpool2d_forward(inp["x"], case.size, case.stride, case.padding)
    return kernels.batchnorm_forward(inp["x"], inp["gamma"], inp["beta"], inp["running_mean"],
                                     inp["running_var"], training=True)


def _backward(case, dout, cache):
    if case.kernel == "conv2d":
        return kernels.conv2d_backward(dout, cache)
    if case.kernel == "maxpool2d":
        return (kernels.maxpool2d_backward(dout, cache),)
    if case.kernel == "avgpool2d":
        return (kernels.avgpool2d_backward(dout, cache),)
    return kernels.batchnorm_backward(dout, cache)


def kernel_outputs(case, direction: str, backend: str, inp: dict) -> tuple:
    """Run ``case`` once on ``backend`` and return what ``direction`` produces:
    ``(out,)`` for fwd, the gradients for bwd, ``(out, *gradients)`` for fwd+bwd."""
    with use_backend(backend):
        out, cache = _forward(case, inp)
        if direction == "fwd":
            return (out,)
        grads = tuple(g for g in _backward(case, inp["dout"], cache) if g is not None)
        return grads if direction == "bwd" else (out, *grads)


def kernel_callable(case, direction: str, backend: str, inp: dict):
    """A no-argument function that runs ``direction`` of ``case`` on ``backend``.

    For ``"bwd"`` the forward runs here, once, outside whatever times the returned
    function, and every call reuses its cache (backward never mutates it).
    """
    if direction not in DIRECTIONS[case.kernel]:
        raise ValueError(f"bench: direction must be one of {DIRECTIONS[case.kernel]} for "
                         f"{case.kernel}; got {direction!r}.")
    dout = inp["dout"]
    if direction == "bwd":
        with use_backend(backend):
            _, cache = _forward(case, inp)

        def run():
            _backward(case, dout, cache)
        return run

    def run():
        with use_backend(backend):
            out, cache = _forward(case, inp)
            if direction == "fwd+bwd":
                _backward(case, dout, cache)
    return run


def check_outputs(got: tuple, want: tuple, rtol: float = 2e-3) -> tuple[bool, float]:
    """Compare a backend's outputs with the reference's. Returns ``(ok, worst)`` where
    ``worst`` is the largest ``max|got - want| / max(max|want|, 1e-6)`` over outputs: a
    scale-relative error, since float32 sums of thousands of terms differ in the last
    bits depending on the summation order."""
    worst = 0.0
    if len(got) != len(want):
        return False, float("inf")
    for a, b in zip(got, want):
        a = np.asarray(a, dtype=np.float64)
        b = np.asarray(b, dtype=np.float64)
        if a.shape != b.shape:
            return False, float("inf")
        scale = max(float(np.max(np.abs(b))) if b.size else 0.0, 1e-6)
        err = float(np.max(np.abs(a - b))) / scale if b.size else 0.0
        if not np.isfinite(err):
            err = float("inf")
        worst = max(worst, err)
    return worst <= rtol, worst


# ------------------------------------------------------------------------------ work


def _nbytes(shape, itemsize):
    return int(np.prod(shape)) * itemsize


def work(case, direction: str, itemsize: int = 4) -> dict:
    """``{"flops": ..., "bytes": ...}`` done by one call (rules in the module docstring).
    ``flops`` is None for pooling and batch norm (they are memory-bound: GB/s is the
    figure of merit); conv ``bytes`` counts x, w, b, out (+ dout, dx, dw, db)."""
    if case.kernel == "conv2d":
        g = case.geometry
        x = _nbytes(g.input_shape, itemsize)
        wb = _nbytes(case.w_shape, itemsize) + case.f * itemsize
        out = _nbytes((g.n, case.f, g.oh, g.ow), itemsize)
        fwd_bytes, bwd_bytes = x + wb + out, out + x + wb + x + wb
        factor = {"fwd": 1, "bwd": 2, "fwd+bwd": 3}[direction]
        nbytes = {"fwd": fwd_bytes, "bwd": bwd_bytes, "fwd+bwd": fwd_bytes + bwd_bytes}[direction]
        return {"flops": factor * case.forward_flops, "bytes": nbytes}
    if case.kernel in ("maxpool2d", "avgpool2d"):
        g = case.geometry
        fwd = _nbytes(g.input_shape, itemsize) + _nbytes((g.n, g.c, g.oh, g.ow), itemsize)
        return {"flops": None, "bytes": fwd if direction == "fwd" else 2 * fwd}
    x = _nbytes(case.shape, itemsize)
    return {"flops": None, "bytes": 2 * x if direction == "fwd" else 5 * x}


# ------------------------------------------------------------------- GEMMs alone


def gemm_callable(case: ConvCase, direction: str, dtype=np.float32, seed=0):
    """The exact matrix products an im2col convolution does, on preallocated arrays.

    With ``K = C/G*KH*KW`` (``G`` groups), ``P = N*OH*OW`` and, for each group g,
    its ``F/G`` filters and ``K`` column rows::

        forward   out2[g](F/G, P)  = W2[g](F/G, K) @ cols[g](K, P)
        backward  dW2[g](F/G, K)   = dout2[g](F/G, P) @ cols[g](K, P).T
                  dcols[g](K, P)   = W2[g](F/G, K).T @ dout2[g](F/G, P)

    Every output is written with ``out=`` so the timed function allocates nothing;
    this is the floor a conv built on this BLAS cannot beat without other algorithms
    (for a depthwise convolution, ``G = C`` tiny products: the floor of doing it as GEMMs).
    """
    g = case.geometry
    groups, fg = case.groups, case.f // case.groups
    k, p = g.c // groups * g.kh * g.kw, g.n * g.oh * g.ow
    rng = np.random.default_rng(seed)
    w2 = rng.standard_normal((groups, fg, k)).astype(dtype)
    cols = rng.standard_normal((groups, k, p)).astype(dtype)
    dout2 = rng.standard_normal((groups, fg, p)).astype(dtype)
    out2 = np.empty((groups, fg, p), dtype)
    dw2 = np.empty((groups, fg, k), dtype)
    dcols = np.empty((groups, k, p), dtype)

    def forward():
        np.matmul(w2, cols, out=out2)                     # one product per group

    def backward():
        np.matmul(dout2, cols.transpose(0, 2, 1), out=dw2)
        np.matmul(w2.transpose(0, 2, 1), dout2, out=dcols)

    def both():
        forward()
        backward()

    return {"fwd": forward, "bwd": backward, "fwd+bwd": both}[direction]
