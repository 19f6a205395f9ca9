"""Where a convolution's forward + backward time goes: im2col, GEMM, col2im, bias, other.

A backend's conv is one opaque call, so its phases are timed by running the same
pieces *separately* on the same shapes, at the same thread count, and comparing
their sum with the whole (``total``, measured as in the report):

* ``im2col``: ``fastcnn.kernels.im2col`` on the backend, on a chunk of ``n_chunk``
  images (the backend's own chunk when it says, else one whose column matrix fits
  its workspace budget, as a bounded-workspace conv does), scaled by
  ``N / n_chunk``. Counted twice (forward, and again in the backward for ``dW``)
  unless the forward cache holds the whole column matrix, then once.
* ``gemm``: the three products of one chunk with NumPy/OpenBLAS —
  ``W2 @ cols``, ``dout2 @ cols.T``, ``W2.T @ dout2`` — scaled by ``N / n_chunk``.
* ``col2im``: ``fastcnn.kernels.col2im`` on the backend on one chunk, scaled.
* ``bias``: NumPy adding ``b`` to the whole output plus ``db = dout.sum((0, 2, 3))``.
* ``other``: ``total`` minus the rest: layout changes between ``(F, N*OH*OW)`` and
  ``(N, F, OH, OW)``, allocation and page faults, Python overhead. Negative means
  the backend does better than its pieces run one by one (e.g. fused loops).
"""

from __future__ import annotations

import numpy as np

from fastcnn import kernels
from fastcnn.kernels._dispatch import backend_module, use_backend
from fastcnn.tools.bench.cases import ConvCase, kernel_callable, make_inputs
from fastcnn.tools.bench.timing import median, pinned_threads, time_call

__all__ = ["conv_breakdown", "PHASES", "plot_breakdown", "DEFAULT_CHUNK_BYTES"]

PHASES = ("im2col", "gemm", "col2im", "bias", "other")
DEFAULT_CHUNK_BYTES = 8 * 2 ** 20


def _holds_full_cols(data, cols_shape) -> bool:
    """True if a backend's opaque cache contains an array of the whole column matrix."""
    items = data if isinstance(data, (tuple, list)) else (data,)
    size = cols_shape[0] * cols_shape[1]
    return any(isinstance(a, np.ndarray) and a.ndim == 2 and a.size == size
               and a.shape[0] == cols_shape[0] for a in items)


def _algorithm(module, case: ConvCase) -> str:
    """Which algorithm the backend runs for ``case``: the compiled one may run Winograd
    F(2x2, 3x3) for forward and dx; then the im2col phases are what im2col would cost,
    and "other" goes negative by what Winograd saves."""
    if hasattr(module, "conv_algorithm"):
        return module.conv_algorithm(case.geometry, case.f, case.groups)
    return "im2col"


def conv_breakdown(case: ConvCase, backend: str, threads: int, repeats: int = 5,
                   chunk_bytes: int | None = None) -> dict:
    """Phase times in ms of ``case``'s forward + backward on ``backend`` (see module doc).

    The chunk is the backend's own when it says (``conv_chunk_images(geometry, F,
    itemsize)``), else sized by ``chunk_bytes`` (default :data:`DEFAULT_CHUNK_BYTES`).
    """
    if case.groups != 1 or case.dilation != 1:
        raise ValueError(f"conv_breakdown: the phases are those of one im2col + GEMM "
                         f"convolution; got groups={case.groups}, dilation={case.dilation}.")
    module = backend_module(backend)
    g = case.geometry
    inp = make_inputs(case)
    itemsize = inp["x"].itemsize
    k, per_image = g.c * g.kh * g.kw, g.oh * g.ow
    if chunk_bytes is None and hasattr(module, "conv_chunk_images"):
        n_chunk = int(module.conv_chunk_images(g, case.f, itemsize))
    else:
        if chunk_bytes is None:
            chunk_bytes = DEFAULT_CHUNK_BYTES
        n_chunk = chunk_bytes // (k * per_image * itemsize)
    n_chunk = int(max(1, min(g.n, n_chunk)))
    scale = g.n / n_chunk
    x_chunk = np.ascontiguousarray(inp["x"][:n_chunk])
    chunk_shape = (n_chunk, g.c, g.h, g.w)
    f = case.f
    w2 = inp["w"].reshape(f, k)
    dout2 = np.ascontiguousarray(inp["dout"][:n_chunk].transpose(1, 0, 2, 3)).reshape(f, -1)
    out4 = np.zeros((g.n, f, g.oh, g.ow), inp["x"].dtype)
    ms = 1e3

    def timed(fn):
        return median(time_call(fn, repeats=repeats, warmup=2)) * ms

    with pinned_threads(threads), use_backend(backend):
        total = timed(kernel_callable(case, "fwd+bwd", backend, inp))
        _, cache = kernels.conv2d_forward(inp["x"], inp["w"], inp["b"], case.stride, case.padding)
        im2col_count = 1 if _holds_full_cols(cache.data, g.cols_shape) else 2
        del cache
        cols = kernels.im2col(x_chunk, g.kh, g.kw, case.stride, case.padding)
        dcols = np.empty_like(cols)
        out2, dw2 = np.empty((f, cols.shape[1]), cols.dtype), np.empty_like(w2)
        phases = {
            "im2col": im2col_count * scale * timed(
                lambda: kernels.im2col(x_chunk, g.kh, g.kw, case.stride, case.padding)),
            "gemm": scale * timed(lambda: (np.matmul(w2, cols, out=out2),
                                           np.matmul(dout2, cols.T, out=dw2),
                                           np.matmul(w2.T, dout2, out=dcols))),
            "col2im": scale * timed(
                lambda: kernels.col2im(dcols, chunk_shape, g.kh, g.kw, case.stride,
                                       case.padding)),
            "bias": timed(lambda: (np.add(out4, inp["b"][None, :, None, None], out=out4),
                                   inp["dout"].sum(axis=(0, 2, 3)))),
        }
    phases["other"] = total - sum(phases.values())
    return {"case": case.name, "shape": case.shape_text, "backend": backend,
            "algorithm": _algorithm(module, case),
            "threads": threads, "total_ms": total, "n_chunk": n_chunk,
            "im2col_count": im2col_count, "phases_ms": phases}


def plot_breakdown(rows: list[dict], path: str) -> None:
    """Stacked horizontal bars, one per (case, backend, threads), saved as a PNG."""
    import matplotlib  # optional and heavy: only --plot needs it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # (after choosing the file-only Agg backend)

    labels = [f"{r['case']} {r['backend']} {r['threads']}t" for r in rows]
    fig, ax = plt.subplots(figsize=(10, 0.45 * len(rows) + 1.5))
    left = np.zeros(len(rows))
    for phase in PHASES:
        values = np.array([max(r["phases_ms"][phase], 0.0) for r in rows])
        ax.barh(labels, values, left=left, label=phase)
        left += values
    ax.set_xlabel("ms per conv2d forward + backward (negative 'other' not drawn)")
    ax.invert_yaxis()
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
