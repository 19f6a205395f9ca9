"""The course networks of docs/benchmarks.md as timed training steps, three ways.

For each network (``NETS``) this module builds, outside any timed region:

* :func:`fastcnn_step`: the ``fastcnn.models`` network compiled with ``Adam`` and a
  sparse softmax cross-entropy; one call = :func:`fastcnn.training.train_step`
  (forward, loss, backward, one Adam update) on a fixed batch, on the active backend.
* :func:`torch_step`: its PyTorch twin (:func:`torch_twin`: ``torch.nn`` modules,
  NCHW, the same padding -- TensorFlow's asymmetric "same" of the strided MNIST convs
  through ``F.pad`` -- and the fastcnn model's weights copied in), ``torch.optim.Adam``
  and ``F.cross_entropy`` on the logits; one call = ``zero_grad``, forward, loss,
  ``backward``, ``step`` (what a PyTorch user writes).
* :func:`gemms_step`: the step's matrix products alone (:func:`step_gemms`), each an
  ``np.matmul`` with ``out=`` on preallocated arrays: the floor of an im2col engine.

:func:`check_first_loss` runs one step of the first two from the same weights and
batch and compares the losses (the benchmark's correctness check: both compute the
same function).

The batch is ``x ~ N(0, 1)`` of shape ``(N, *input_shape)`` float32 and uniform labels,
drawn from ``numpy.random.default_rng(seed)``; weights are drawn after
``fastcnn.random.seed(seed)``, so every builder sees the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Callable

import numpy as np

from fastcnn.common import random as _random
from fastcnn.nn.layers import (BatchNormalization, Conv2D, Dense, Dropout, Flatten,
                               MaxPooling2D, ReLU)
from fastcnn.optim.optimizers import Adam
from fastcnn.train.loop import train_step
from fastcnn.zoo import cifar10_net, mnist_net
from fastcnn.tools.bench import steps as _steps
from fastcnn.tools.bench.steps import StepBenchmark, register_step

__all__ = ["StepNet", "NETS", "make_batch", "build_model", "fastcnn_step", "torch_twin",
           "torch_step", "step_gemms", "gemms_step", "check_first_loss"]


@dataclass(frozen=True)
class StepNet:
    """A network to time: ``factory()`` returns a built ``Sequential``."""

    factory: Callable
    input_shape: tuple
    batch: int
    classes: int = 10


def _cifar10():
    return cifar10_net(batch_norm=False)


def _cifar10_bn():
    return cifar10_net(batch_norm=True)


def _mnist():
    return mnist_net()


#: docs/benchmarks.md's course nets (names as in :mod:`fastcnn.bench.steps`).
NETS: dict[str, StepNet] = {
    "cifar10_b256": StepNet(_cifar10, (3, 32, 32), 256),
    "cifar10_bn_b256": StepNet(_cifar10_bn, (3, 32, 32), 256),
    "mnist_b100": StepNet(_mnist, (1, 28, 28), 100),
}


def _net(name: str) -> StepNet:
    if name not in NETS:
        raise ValueError(f"step_nets: name must be one of {sorted(NETS)}; got {name!r}.")
    return NETS[name]


def make_batch(name: str, batch: int | None = None, seed: int = 0):
    """``(x, y)``: float32 ``(N, C, H, W)`` from N(0, 1) and int64 labels in ``[0, 10)``."""
    net = _net(name)
    n = net.batch if batch is None else batch
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n,) + net.input_shape, dtype=np.float32)
    y = rng.integers(0, net.classes, size=n).astype(np.int64)
    return x, y


def build_model(name: str, seed: int = 0):
    """The fastcnn model, weights drawn after ``fastcnn.random.seed(seed)``, compiled
    with ``Adam()`` (Keras defaults) and sparse categorical cross-entropy, no metrics."""
    _random.seed(seed)
    model = _net(name).factory()
    model.compile(optimizer=Adam(), loss="sparse_categorical_crossentropy", metrics=())
    return model


def fastcnn_step(name: str, batch: int | None = None, seed: int = 0):
    """``step()`` -> loss: one fastcnn training step on a fixed batch (active backend)."""
    model = build_model(name, seed)
    x, y = make_batch(name, batch, seed)

    def step():
        return train_step(model, x, y)[0]
    step.model = model
    return step


# --------------------------------------------------------------------------- PyTorch


def _tensor(a):
    import torch  # optional: only the PyTorch twin needs it
    return torch.from_numpy(np.ascontiguousarray(a)).clone()


def _twin_activation(layer, last) -> list:
    """The torch module of a layer's fused activation ([] for none or a final softmax,
    which ``F.cross_entropy`` applies to the logits)."""
    from torch import nn  # optional: only the PyTorch twin needs it
    name = getattr(layer, "activation", None)
    if name in (None, "linear") or (name == "softmax" and last):
        return []
    if name == "relu":
        return [nn.ReLU()]
    raise ValueError(f"torch_twin: activation {name!r} of layer {layer.name!r} is not "
                     f"supported; expected None, 'relu' or a final 'softmax'.")


def _twin_conv(layer, last) -> list:
    """``nn.Conv2d`` (after ``nn.ZeroPad2d`` for Keras' asymmetric "same") + activation."""
    import torch  # optional: only the PyTorch twin needs it
    from torch import nn  # optional: only the PyTorch twin needs it
    (pt, pb), (pl, pr) = layer._pads
    f, c, kh, kw = layer.kernel.shape
    symmetric = pt == pb and pl == pr
    # Keras' "same" with an odd total puts the extra row/column at the bottom/right;
    # nn.Conv2d pads both sides equally, so pad first.
    mods = [] if symmetric else [nn.ZeroPad2d((pl, pr, pt, pb))]
    conv = nn.Conv2d(c, f, (kh, kw), stride=layer.strides,
                     padding=(pt, pl) if symmetric else 0, bias=layer.use_bias)
    with torch.no_grad():
        conv.weight.copy_(_tensor(layer.kernel.data))
        if layer.use_bias:
            conv.bias.copy_(_tensor(layer.bias.data))
    return mods + [conv] + _twin_activation(layer, last)


def _twin_dense(layer, last) -> list:
    import torch  # optional: only the PyTorch twin needs it
    from torch import nn  # optional: only the PyTorch twin needs it
    d_in, d_out = layer.kernel.shape
    lin = nn.Linear(d_in, d_out, bias=layer.use_bias)
    with torch.no_grad():
        lin.weight.copy_(_tensor(layer.kernel.data.T))
        if layer.use_bias:
            lin.bias.copy_(_tensor(layer.bias.data))
    return [lin] + _twin_activation(layer, last)


def _twin_batchnorm(layer) -> list:
    import torch  # optional: only the PyTorch twin needs it
    from torch import nn  # optional: only the PyTorch twin needs it
    c = layer.input_shape[0]
    cls = nn.BatchNorm2d if len(layer.input_shape) == 3 else nn.BatchNorm1d
    # Keras' momentum weighs the old statistic; PyTorch's the new one.
    bn = cls(c, eps=layer.epsilon, momentum=1.0 - layer.momentum)
    with torch.no_grad():
        bn.weight.copy_(_tensor(layer.gamma.data))
        bn.bias.copy_(_tensor(layer.beta.data))
        bn.running_mean.copy_(_tensor(layer.state["moving_mean"]))
        bn.running_var.copy_(_tensor(layer.state["moving_variance"]))
    return [bn]


def torch_twin(model):
    """A ``torch.nn.Sequential`` computing the same function as the fastcnn ``model``
    up to its logits (a final softmax is left to ``F.cross_entropy``), with the model's
    current weights copied in. Handles the layers of the course nets: Conv2D (+relu),
    MaxPooling2D ("valid"), BatchNormalization, ReLU, Flatten, Dropout, Dense (+relu)."""
    from torch import nn  # optional: only the PyTorch twin needs it

    mods = []
    layers = model.layers
    for i, layer in enumerate(layers):
        last = i == len(layers) - 1
        if isinstance(layer, Conv2D):
            mods += _twin_conv(layer, last)
        elif isinstance(layer, Dense):
            mods += _twin_dense(layer, last)
        elif isinstance(layer, MaxPooling2D):
            if layer.padding != "valid":
                raise ValueError(f"torch_twin: MaxPooling2D {layer.name!r} must use "
                                 f"padding='valid'; got {layer.padding!r}.")
            mods.append(nn.MaxPool2d(layer.pool_size, layer.strides))
        elif isinstance(layer, BatchNormalization):
            mods += _twin_batchnorm(layer)
        elif isinstance(layer, ReLU):
            mods.append(nn.ReLU())
        elif isinstance(layer, Flatten):
            mods.append(nn.Flatten())
        elif isinstance(layer, Dropout):
            mods.append(nn.Dropout(layer.rate))
        else:
            raise ValueError(f"torch_twin: layer {type(layer).__name__} {layer.name!r} has no "
                             f"PyTorch twin here.")
    return nn.Sequential(*mods)


def torch_step(name: str, batch: int | None = None, seed: int = 0):
    """``step()`` -> loss: one PyTorch training step of the twin of the fastcnn net
    (same weights, batch and Adam hyper-parameters; Keras' ``epsilon=1e-7``)."""
    import torch  # optional: only the PyTorch twin needs it
    import torch.nn.functional as F  # (the same)

    net = torch_twin(build_model(name, seed)).train()
    x, y = make_batch(name, batch, seed)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-7)

    def step():
        opt.zero_grad()
        loss = F.cross_entropy(net(xt), yt)
        loss.backward()
        opt.step()
        return float(loss.detach())
    step.net = net
    return step


# --------------------------------------------------------------------------- GEMMs alone


def step_gemms(model, batch: int, input_grad: bool = False) -> list[dict]:
    """The matrix products of one training step of ``model`` at batch size ``batch``.

    Conv2D (im2col, ``K = C*KH*KW``, ``P = N*OH*OW``): forward ``(F,K) @ (K,P)``,
    dW ``(F,P) @ (P,K)``, dX ``(K,F) @ (F,P)``. Dense (``D_in -> D_out``): forward
    ``(N,D_in) @ (D_in,D_out)``, dW ``(D_in,N) @ (N,D_out)``, dX ``(N,D_out) @ (D_out,D_in)``.
    The first layer's dX is left out unless ``input_grad`` (no step needs the gradient
    of the data; PyTorch and fastcnn both skip it). Returns ``[{"layer", "what", "m",
    "k", "n", "transposed", "flops"}]`` for ``(m, k) @ (k, n)``, ``transposed`` naming
    the operand that is a transposed view in a real step (``cols.T``, ``W.T``, ``x.T``).
    """
    out = []
    first = True
    for layer in model.layers:
        if isinstance(layer, Conv2D):
            f, c, kh, kw = layer.kernel.shape
            _, oh, ow = layer.output_shape
            k, p = c * kh * kw, batch * oh * ow
            # (what, m, k, n, which operand is a transposed view: "a", "b" or "")
            shapes = [("fwd", f, k, p, ""), ("dW", f, p, k, "b"), ("dX", k, f, p, "a")]
        elif isinstance(layer, Dense):
            d_in, d_out = layer.kernel.shape
            shapes = [("fwd", batch, d_in, d_out, ""), ("dW", d_in, batch, d_out, "a"),
                      ("dX", batch, d_out, d_in, "b")]
        else:
            continue
        if first and not input_grad:
            shapes = shapes[:2]
        first = False
        out += [{"layer": layer.name, "what": w, "m": m, "k": kk, "n": n, "transposed": t,
                 "flops": 2 * m * kk * n} for w, m, kk, n, t in shapes]
    return out


def gemms_step(name: str, batch: int | None = None, seed: int = 0, input_grad: bool = False):
    """``step()``: the step's GEMMs (:func:`step_gemms`) alone, ``np.matmul(a, b, out=c)``
    on arrays made once (operands in the layout im2col gives them: the transposed
    operands of dW and dX are views, as in a real backward)."""
    net = _net(name)
    n = net.batch if batch is None else batch
    rng = np.random.default_rng(seed)
    calls = []
    for g in step_gemms(build_model(name, seed), n, input_grad):
        m, k, nn, t = g["m"], g["k"], g["n"], g["transposed"]
        a = (rng.standard_normal((k, m), dtype=np.float32).T if t == "a"
             else rng.standard_normal((m, k), dtype=np.float32))
        b = (rng.standard_normal((nn, k), dtype=np.float32).T if t == "b"
             else rng.standard_normal((k, nn), dtype=np.float32))
        calls.append((a, b, np.empty((m, nn), dtype=np.float32)))

    def step():
        for a, b, c in calls:
            np.matmul(a, b, out=c)
    step.gemms = calls
    return step


# --------------------------------------------------------------------------- check


def check_first_loss(name: str, batch: int | None = None, seed: int = 0,
                     rtol: float = 1e-4) -> dict:
    """One fastcnn step and one PyTorch step from the same weights and batch:
    ``{"fastcnn": loss, "torch": loss, "rel_error": ..., "ok": rel_error <= rtol}``."""
    ours = fastcnn_step(name, batch, seed)()
    theirs = torch_step(name, batch, seed)()
    rel = abs(ours - theirs) / max(abs(theirs), 1e-30)
    return {"fastcnn": float(ours), "torch": float(theirs), "rel_error": rel,
            "ok": bool(rel <= rtol)}


# --------------------------------------------------------------------------- registry


def _register() -> None:
    """Put the three nets into :data:`fastcnn.tools.bench.steps.STEP_BENCHMARKS` (once)."""
    specs = {
        "cifar10_b256": ("course CIFAR-10 net, batch 256, one Adam step", 0.7, 1.3, False),
        "cifar10_bn_b256": ("course CIFAR-10 net + BatchNormalization after each conv, "
                            "batch 256, one Adam step", 0.7, None, False),
        "mnist_b100": ("course MNIST net, batch 100, one Adam step", 0.6, None, True),
    }
    for name, (text, vs_torch, vs_gemms, quick) in specs.items():
        if name in _steps.STEP_BENCHMARKS:
            continue
        register_step(StepBenchmark(
            name, text, build=partial(fastcnn_step, name),
            build_torch=partial(torch_step, name), build_gemms=partial(gemms_step, name),
            max_vs_torch=vs_torch, max_vs_gemms=vs_gemms,
            check=partial(check_first_loss, name), quick=quick))


_register()
