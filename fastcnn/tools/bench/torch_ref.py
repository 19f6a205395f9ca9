"""PyTorch CPU on the same cases: the outside reference point (optional).

Layout NCHW (as fastcnn's), float32, ``torch.set_num_threads`` pinned by
:func:`fastcnn.bench.timing.pinned_threads`. The arrays are the very same NumPy
inputs, shared with torch through ``torch.from_numpy`` (no copy).

What is timed, per direction:

* ``fwd``: ``torch.nn.functional.{conv2d, max_pool2d, avg_pool2d, batch_norm}`` under
  ``torch.no_grad()`` (no autograd graph is built, as in inference).
* ``fwd+bwd``: the forward with autograd on, then ``torch.autograd.grad(out, inputs,
  dout)`` (gradients are returned, not accumulated into ``.grad``).
* ``bwd`` (convolution): one forward made outside the timed region keeps its graph
  (``retain_graph=True``) and each call runs ``torch.autograd.grad`` on it.

Keras "same" padding with stride 2 is asymmetric, which ``F.conv2d`` does not take:
there the input goes through ``F.pad`` first, as a PyTorch user would have to write.
"""

from __future__ import annotations

import importlib.util

import numpy as np

__all__ = ["torch_available", "torch_callable", "torch_outputs"]


def torch_available() -> bool:
    """True when ``import torch`` would succeed (checked without importing it)."""
    return importlib.util.find_spec("torch") is not None


def _graph(case, inp, requires_grad: bool):
    """Build tensors and a function ``forward() -> out``; return ``(forward, leaves)``
    where ``leaves`` are the tensors gradients are taken for, in fastcnn's order."""
    import torch  # optional: only the PyTorch comparison needs it
    import torch.nn.functional as F  # (the same)

    def tensor(name):
        return torch.from_numpy(inp[name]).requires_grad_(requires_grad)

    if case.kernel == "conv2d":
        x, w, b = tensor("x"), tensor("w"), tensor("b")
        g = case.geometry
        spread = dict(stride=(g.sh, g.sw), dilation=(g.dh, g.dw), groups=case.groups)
        if g.is_symmetric:
            def forward():
                return F.conv2d(x, w, b, padding=(g.pad_top, g.pad_left), **spread)
        else:
            pads = (g.pad_left, g.pad_right, g.pad_top, g.pad_bottom)

            def forward():
                return F.conv2d(F.pad(x, pads), w, b, **spread)
        return forward, (x, w, b)
    if case.kernel == "maxpool2d":
        x = tensor("x")

        def forward():
            return F.max_pool2d(x, case.size, case.stride, case.padding)
        return forward, (x,)
    if case.kernel == "avgpool2d":
        x = tensor("x")

        def forward():
            return F.avg_pool2d(x, case.size, case.stride, case.padding)
        return forward, (x,)
    x, gamma, beta = tensor("x"), tensor("gamma"), tensor("beta")
    # Running statistics are buffers, never differentiated; copies so that ours stay intact.
    rm = torch.from_numpy(inp["running_mean"].copy())
    rv = torch.from_numpy(inp["running_var"].copy())

    def forward():
        return F.batch_norm(x, rm, rv, gamma, beta, training=True, momentum=0.1, eps=1e-5)
    return forward, (x, gamma, beta)


def torch_callable(case, direction: str, inp: dict):
    """A no-argument function running ``direction`` of ``case`` in PyTorch."""
    import torch  # optional: only the PyTorch comparison needs it

    dout = torch.from_numpy(inp["dout"])
    if direction == "fwd":
        forward, _ = _graph(case, inp, requires_grad=False)

        def run():
            with torch.no_grad():
                forward()
        return run
    forward, leaves = _graph(case, inp, requires_grad=True)
    if direction == "bwd":
        out = forward()

        def run():
            torch.autograd.grad(out, leaves, dout, retain_graph=True)
        return run

    def run():
        torch.autograd.grad(forward(), leaves, dout)
    return run


def torch_outputs(case, direction: str, inp: dict) -> tuple:
    """What ``direction`` produces in PyTorch, as NumPy arrays in fastcnn's order."""
    import torch  # optional: only the PyTorch comparison needs it

    forward, leaves = _graph(case, inp, requires_grad=direction != "fwd")
    if direction == "fwd":
        with torch.no_grad():
            return (forward().numpy(),)
    out = forward()
    grads = torch.autograd.grad(out, leaves, torch.from_numpy(inp["dout"]))
    grads = tuple(np.asarray(g.numpy()) for g in grads)
    return grads if direction == "bwd" else (out.detach().numpy(), *grads)
