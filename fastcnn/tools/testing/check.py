"""``check_kernel``: run a user's forward and backward over the shape grid, compare them
with the NumPy reference and with central differences, and report (part of
:mod:`fastcnn.testing`)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

import numpy as np

from fastcnn import kernels as _kernels
from fastcnn.kernels import _dispatch as _backend
from fastcnn.tools.gradcheck import numeric_gradient, relative_error
from fastcnn.tools.testing.cases import cases_for, check_kernel_name
from fastcnn.tools.testing.compare import GRADCHECK_MAX_REL_ERROR, compare

__all__ = ["kernel_functions", "CheckResult", "KernelReport", "check_kernel"]


# ------------------------------------------------------- functions to compare


def kernel_functions(kernel: str, backend: str = "numpy") -> tuple[Callable, Callable]:
    """``(forward, backward)`` of ``kernel`` running on ``backend``, with the user
    signatures of :func:`check_kernel` (the public ``fastcnn.kernels`` functions
    inside ``use_backend(backend)``; a backward follows its cache's backend)."""
    check_kernel_name(kernel)
    fwd_name, bwd_name = {
        "conv2d": ("conv2d_forward", "conv2d_backward"),
        "maxpool2d": ("maxpool2d_forward", "maxpool2d_backward"),
        "avgpool2d": ("avgpool2d_forward", "avgpool2d_backward"),
        "adaptive_avgpool2d": ("adaptive_avgpool2d_forward", "adaptive_avgpool2d_backward"),
        "batchnorm": ("batchnorm_forward", "batchnorm_backward"),
        "im2col": ("im2col", "col2im"),
    }[kernel]
    fwd, bwd = getattr(_kernels, fwd_name), getattr(_kernels, bwd_name)

    def forward(*args):
        with _backend.use_backend(backend):
            return fwd(*args)

    def backward(*args):
        with _backend.use_backend(backend):
            return bwd(*args)

    forward.__name__ = f"{backend}.{fwd_name}"
    backward.__name__ = f"{backend}.{bwd_name}"
    return forward, backward


# ------------------------------------------------------------------- reports


@dataclass
class CheckResult:
    """One comparison made by :func:`check_kernel`."""

    kernel: str
    case: str
    dtype: str
    quantity: str          # e.g. "forward out", "backward dx", "gradcheck dw"
    max_abs: float
    max_rel: float
    passed: bool
    message: str = ""


@dataclass
class KernelReport:
    """Every comparison of one :func:`check_kernel` call, in the order made."""

    kernel: str
    results: list[CheckResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(r.passed for r in self.results)

    @property
    def failures(self) -> list[CheckResult]:
        return [r for r in self.results if not r.passed]

    @property
    def first_failure(self) -> CheckResult | None:
        failures = self.failures
        return failures[0] if failures else None

    def summary(self) -> str:
        n_cases = len({(r.case, r.dtype) for r in self.results})
        if self.ok:
            return (f"{self.kernel}: all {len(self.results)} checks passed over "
                    f"{n_cases} case x dtype combinations.")
        return (f"{self.kernel}: {len(self.failures)} of {len(self.results)} checks failed; "
                f"first: {self.first_failure.message}")

    __str__ = summary


# ----------------------------------------------------------------- the checks


def _cast(arrays: dict, dtype) -> dict:
    return {k: (v.astype(dtype) if isinstance(v, np.ndarray) else v) for k, v in arrays.items()}


def _copy(arrays: dict) -> dict:
    return {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in arrays.items()}


def _unpack_forward(result, what):
    if isinstance(result, tuple) and len(result) == 2:
        return result
    raise AssertionError(f"{what} must return (out, cache); got {type(result).__name__}"
                         + (f" of length {len(result)}" if isinstance(result, tuple) else "")
                         + ".")


def _as_tuple(result, n, what):
    if n == 1:
        if isinstance(result, tuple):
            raise AssertionError(f"{what} must return one array; got a tuple of {len(result)}.")
        return (result,)
    if not (isinstance(result, tuple) and len(result) == n):
        raise AssertionError(f"{what} must return a tuple of {n} arrays; "
                             f"got {type(result).__name__}.")
    return result


class _Recorder:
    """Collects CheckResults; with ``stop`` set, raises at the first failure."""

    def __init__(self, kernel, stop: bool):
        self.report = KernelReport(kernel)
        self.stop = stop

    def compare(self, case, dtype, quantity, actual, expected, kind):
        what = f"{self.report.kernel} {quantity}"
        cmp = compare(actual, expected, dtype=dtype, kind=kind, what=what,
                      case=case.name)
        message = cmp.message
        if message:
            message = message.replace(f"case {case.name!r}",
                                      f"case {case.name!r} {case.describe()}", 1)
        self.add(CheckResult(self.report.kernel, case.name, np.dtype(dtype).name, quantity,
                             cmp.max_abs, cmp.max_rel, cmp.passed, message))

    def gradcheck(self, case, quantity, analytic, numeric, indices=None):
        if indices is not None:
            idx = tuple(np.array(i) for i in zip(*indices))
            analytic, numeric = np.asarray(analytic)[idx], numeric[idx]
        if np.shape(analytic) != np.shape(numeric):
            err, message = np.inf, (f"{self.report.kernel} {quantity}: case {case.name!r} "
                                    f"{case.describe()}: analytic gradient has shape "
                                    f"{np.shape(analytic)}, expected {np.shape(numeric)}.")
            passed = False
        else:
            err = relative_error(analytic, numeric)
            passed = err < GRADCHECK_MAX_REL_ERROR
            message = "" if passed else (
                f"{self.report.kernel} {quantity}: case {case.name!r} {case.describe()}, dtype "
                f"float64: relative error {err:.3g} between your backward and central "
                f"differences of your forward exceeds {GRADCHECK_MAX_REL_ERROR:g}.")
        abs_err = float(np.max(np.abs(np.asarray(analytic, float) - numeric))) \
            if passed or np.shape(analytic) == np.shape(numeric) else np.inf
        self.add(CheckResult(self.report.kernel, case.name, "float64", quantity,
                             abs_err if np.size(numeric) else 0.0, err, passed, message))

    def add(self, result: CheckResult):
        self.report.results.append(result)
        if self.stop and not result.passed:
            raise AssertionError(result.message)

    def error(self, case, dtype, quantity, exc: Exception):
        """The user's function raised: that is a failed check, with the reason."""
        self.add(CheckResult(self.report.kernel, case.name, np.dtype(dtype).name, quantity,
                             np.inf, np.inf, False,
                             f"{self.report.kernel} {quantity}: case {case.name!r} "
                             f"{case.describe()}, dtype {np.dtype(dtype).name}: raised "
                             f"{type(exc).__name__}: {exc}"))


def _sample_indices(shape, rng, limit):
    """Every index of ``shape`` if there are at most ``limit``, else ``limit`` random ones."""
    total = int(np.prod(shape))
    if total <= limit:
        return list(np.ndindex(*shape))
    flat = rng.choice(total, size=limit, replace=False)
    return [tuple(int(i) for i in np.unravel_index(f, shape)) for f in flat]


#: Central-difference steps. Convolution and im2col are linear and max pooling is
#: piecewise linear (our pool inputs are 0.0625 apart, so no step crosses a kink):
#: for those the difference quotient is exact whatever the step, and a large step
#: keeps the rounding error of the summed loss (about 1e-16 * |L| / h) negligible.
#: Batch norm is smooth but curved: its O(h^2) truncation error (~1e-8 at h = 1e-4)
#: stays well below the 1e-6 limit, and rounding error is smaller than at 1e-5 or 1e-6.
_STEP = {"linear": 1e-3, "smooth": 1e-4}


def _conv_geometry(case) -> tuple:
    """The geometry arguments after ``(x, w, b)``: ``(stride, padding)``, plus ``(dilation,
    groups)`` only for a case that uses them (a kernel without them is still checkable)."""
    if case.dilation == 1 and case.groups == 1:
        return (case.stride, case.padding)
    return (case.stride, case.padding, case.dilation, case.groups)


def _im2col_geometry(case) -> tuple:
    """``(kh, kw, stride, padding)``, plus ``dilation`` for a dilated case."""
    extra = (case.dilation,) if case.dilation != 1 else ()
    return (case.kh, case.kw, case.stride, case.padding) + extra


def _check_conv(rec, fwd, bwd, ref_fwd, ref_bwd, case, dtype, rng, gradcheck, gc_limit):
    inputs = _cast(case.make_inputs(rng, np.float64), dtype)
    geometry = _conv_geometry(case)
    ref_out, ref_cache = ref_fwd(*_cast(inputs, np.float64).values(), *geometry)
    dout = rng.standard_normal(ref_out.shape).astype(dtype)
    ref_grads = ref_bwd(dout.astype(np.float64), ref_cache)
    user_inputs = _copy(inputs)
    with _guard(rec, case, dtype, "forward"):
        out, cache = _unpack_forward(fwd(*user_inputs.values(), *geometry), "forward")
    rec.compare(case, dtype, "forward out", out, ref_out.astype(dtype), "sum")
    for name in inputs:
        rec.compare(case, dtype, f"forward leaves {name} unchanged", user_inputs[name],
                    inputs[name], "exact")
    with _guard(rec, case, dtype, "backward"):
        grads = _as_tuple(bwd(dout.copy(), cache), 3, "backward")
    for name, got, want in zip(("dx", "dw", "db"), grads, ref_grads):
        rec.compare(case, dtype, f"backward {name}", got, want.astype(dtype), "sum")
    if gradcheck and dtype == np.float64 and case.n > 0:
        arrays = _copy(inputs)
        _, cache = fwd(*arrays.values(), *geometry)
        analytic = bwd(dout, cache)

        def f():
            return fwd(*arrays.values(), *geometry)[0]

        for (name, arr), grad in zip(arrays.items(), analytic):
            idx = _sample_indices(arr.shape, rng, gc_limit)
            numeric = numeric_gradient(f, arr, dout, h=_STEP["linear"], indices=idx)
            rec.gradcheck(case, f"gradcheck d{name}", grad, numeric, idx)


def _check_im2col(rec, fwd, bwd, ref_fwd, ref_bwd, case, dtype, rng, gradcheck, gc_limit):
    x = case.make_inputs(rng, np.float64)["x"].astype(dtype)
    geometry = _im2col_geometry(case)
    ref_cols = ref_fwd(x.astype(np.float64), *geometry)
    c = rng.standard_normal(ref_cols.shape).astype(dtype)
    ref_x = ref_bwd(c.astype(np.float64), case.x_shape, *geometry)
    with _guard(rec, case, dtype, "forward"):
        cols = _as_tuple(fwd(x.copy(), *geometry), 1, "forward")[0]
    rec.compare(case, dtype, "im2col cols", cols, ref_cols.astype(dtype), "exact")
    with _guard(rec, case, dtype, "backward"):
        back = _as_tuple(bwd(c.copy(), case.x_shape, *geometry), 1, "backward")[0]
    rec.compare(case, dtype, "col2im x", back, ref_x.astype(dtype), "sum")
    if gradcheck and dtype == np.float64 and case.n > 0:
        # im2col is linear, so d<im2col(x), c>/dx = col2im(c): the adjoint identity.
        xg = x.copy()
        idx = _sample_indices(xg.shape, rng, gc_limit)
        numeric = numeric_gradient(lambda: fwd(xg, *geometry), xg, c, h=_STEP["linear"],
                                   indices=idx)
        rec.gradcheck(case, "gradcheck col2im = d<im2col(x), c>/dx", back, numeric, idx)


def _check_pool(rec, fwd, bwd, ref_fwd, ref_bwd, case, dtype, rng, gradcheck, gc_limit):
    x = case.make_inputs(rng, dtype)["x"]
    geometry = case.args
    ref_out, ref_cache = ref_fwd(x.astype(np.float64), *geometry)
    dout = rng.standard_normal(ref_out.shape).astype(dtype)
    # Small distinct integers: their sums are exact in any order, so dx must match
    # the reference bit for bit, overlap or not; a mis-routed or overwritten (= instead
    # of +=) gradient cannot hide in a tolerance.
    dout_int = (rng.permutation(dout.size).reshape(dout.shape) + 1).astype(dtype)
    with _guard(rec, case, dtype, "forward"):
        out, cache = _unpack_forward(fwd(x.copy(), *geometry), "forward")
    rec.compare(case, dtype, "forward out", out, ref_out.astype(dtype), "exact")
    with _guard(rec, case, dtype, "backward"):
        dx_int = _as_tuple(bwd(dout_int.copy(), cache), 1, "backward")[0]
    ref_dx_int = ref_bwd(dout_int.astype(np.float64), ref_cache)
    rec.compare(case, dtype, "backward dx (integer dout)", dx_int, ref_dx_int.astype(dtype),
                "exact")
    with _guard(rec, case, dtype, "backward"):
        _, cache = fwd(x.copy(), *geometry)
        dx = _as_tuple(bwd(dout.copy(), cache), 1, "backward")[0]
    ref_dx = ref_bwd(dout.astype(np.float64), ref_cache)
    rec.compare(case, dtype, "backward dx", dx, ref_dx.astype(dtype),
                "sum" if case.overlapping else "exact")
    if gradcheck and dtype == np.float64 and case.n > 0:
        xg = x.copy()   # distinct values 0.0625 apart: no step of 1e-6 changes a winner
        idx = _sample_indices(xg.shape, rng, gc_limit)
        numeric = numeric_gradient(lambda: fwd(xg, *geometry)[0], xg, dout,
                                   h=_STEP["linear"], indices=idx)
        rec.gradcheck(case, "gradcheck dx", dx, numeric, idx)


def _check_avgpool(rec, fwd, bwd, ref_fwd, ref_bwd, case, dtype, rng, gradcheck, gc_limit):
    """Average pooling, fixed or adaptive windows: ``forward(x, *case.args)``. Sums and
    divisions: compared with the "sum" tolerance; the backward is linear in ``dout``."""
    x = case.make_inputs(rng, dtype)["x"]
    ref_out, ref_cache = ref_fwd(x.astype(np.float64), *case.args)
    dout = rng.standard_normal(ref_out.shape).astype(dtype)
    with _guard(rec, case, dtype, "forward"):
        out, cache = _unpack_forward(fwd(x.copy(), *case.args), "forward")
    rec.compare(case, dtype, "forward out", out, ref_out.astype(dtype), "sum")
    with _guard(rec, case, dtype, "backward"):
        dx = _as_tuple(bwd(dout.copy(), cache), 1, "backward")[0]
    ref_dx = ref_bwd(dout.astype(np.float64), ref_cache)
    rec.compare(case, dtype, "backward dx", dx, ref_dx.astype(dtype), "sum")
    if gradcheck and dtype == np.float64 and case.n > 0:
        xg = x.copy()
        idx = _sample_indices(xg.shape, rng, gc_limit)
        numeric = numeric_gradient(lambda: fwd(xg, *case.args)[0], xg, dout,
                                   h=_STEP["linear"], indices=idx)
        rec.gradcheck(case, "gradcheck dx", dx, numeric, idx)


def _check_batchnorm(rec, fwd, bwd, ref_fwd, ref_bwd, case, dtype, rng, gradcheck,
                     gc_limit):
    for mode in case.modes:
        training = mode == "train"
        inputs = _cast(case.make_inputs(rng, np.float64), dtype)
        hyper = (training, case.momentum, case.eps)
        ref_in = _cast(inputs, np.float64)
        ref_out, ref_cache = ref_fwd(*ref_in.values(), *hyper)
        dout = rng.standard_normal(case.shape).astype(dtype)
        ref_grads = ref_bwd(dout.astype(np.float64), ref_cache)
        user = _copy(inputs)
        with _guard(rec, case, dtype, f"forward ({mode})"):
            out, cache = _unpack_forward(fwd(*user.values(), *hyper), "forward")
        rec.compare(case, dtype, f"forward out ({mode})", out, ref_out.astype(dtype), "sum")
        for name in ("running_mean", "running_var"):
            if training:
                rec.compare(case, dtype, f"{name} after forward (train)", user[name],
                            ref_in[name].astype(dtype), "sum")
            else:
                rec.compare(case, dtype, f"{name} unchanged (eval)", user[name],
                            inputs[name], "exact")
        with _guard(rec, case, dtype, f"backward ({mode})"):
            grads = _as_tuple(bwd(dout.copy(), cache), 3, "backward")
        for name, got, want in zip(("dx", "dgamma", "dbeta"), grads, ref_grads):
            rec.compare(case, dtype, f"backward {name} ({mode})", got, want.astype(dtype),
                        "sum")
        if gradcheck and dtype == np.float64 and case.shape[0] > 0:
            arrays = _copy(inputs)
            stats = {k: arrays.pop(k) for k in ("running_mean", "running_var")}

            def f():  # fresh running stats each call: training mode updates them
                return fwd(arrays["x"], arrays["gamma"], arrays["beta"],
                           stats["running_mean"].copy(), stats["running_var"].copy(),
                           *hyper)[0]

            _, cache = fwd(arrays["x"], arrays["gamma"], arrays["beta"],
                           stats["running_mean"].copy(), stats["running_var"].copy(), *hyper)
            analytic = bwd(dout, cache)
            for (name, arr), grad in zip(arrays.items(), analytic):
                idx = _sample_indices(arr.shape, rng, gc_limit)
                numeric = numeric_gradient(f, arr, dout, h=_STEP["smooth"], indices=idx)
                rec.gradcheck(case, f"gradcheck d{name} ({mode})", grad, numeric, idx)


@contextlib.contextmanager
def _guard(rec, case, dtype, quantity):
    """Turn an exception from the user's code into a failed check (that stops the
    case: later comparisons would have nothing to compare)."""
    try:
        yield
    except _StopCase:
        raise
    except AssertionError:
        raise
    except Exception as exc:  # noqa: BLE001 - reported, not swallowed
        rec.error(case, dtype, quantity, exc)
        raise _StopCase from exc


class _StopCase(Exception):
    pass


_CHECKERS = {"conv2d": _check_conv, "im2col": _check_im2col, "maxpool2d": _check_pool,
             "avgpool2d": _check_avgpool, "adaptive_avgpool2d": _check_avgpool,
             "batchnorm": _check_batchnorm}


def check_kernel(name: str, forward: Callable | None = None, backward: Callable | None = None,
                 dtypes: Sequence = ("float32", "float64"), cases: Iterable | None = None,
                 gradcheck: bool = True, *, seed: int = 0, raise_on_failure: bool = True,
                 gradcheck_max_elements: int = 48) -> KernelReport:
    """Check a user's kernel against the NumPy reference over the named shape grid.

    Parameters
    ----------
    name : {"conv2d", "maxpool2d", "batchnorm", "im2col"}
    forward, backward : callables with the signatures in this module's docstring.
        A missing one is taken from the NumPy reference, so a forward (or a
        backward) can be checked alone; the backward receives whatever cache the
        forward returned, so give both when your cache differs from ours.
    dtypes : dtypes to run, float32 and float64 by default. Each is compared with the
        reference computed in float64 from the same inputs and cast, using
        :data:`TOLERANCES`; the result must have the input's dtype.
    cases : case ids (e.g. ``["3x3-pad1", "stride2"]``) or case objects; default:
        the whole grid of ``name`` (:func:`cases_for`).
    gradcheck : also compare your backward with central differences of *your*
        forward, in float64 (on at most ``gradcheck_max_elements`` random elements
        of each input), relative error < :data:`GRADCHECK_MAX_REL_ERROR`.
    seed : inputs are drawn from ``np.random.default_rng(seed)``.
    raise_on_failure : raise ``AssertionError`` at the first mismatch (default);
        with False, run everything and return the report.

    Returns
    -------
    KernelReport : ``.ok``, ``.results`` (one :class:`CheckResult` per comparison:
    case, dtype, quantity, max abs/rel error) and ``.first_failure``.

    Raises
    ------
    AssertionError naming the kernel, quantity, case id, shapes, dtype and the
    worst element of the first mismatch.
    """
    check_kernel_name(name)
    chosen = cases_for(name, cases)
    ref_fwd, ref_bwd = kernel_functions(name, "numpy")
    fwd = forward if forward is not None else ref_fwd
    bwd = backward if backward is not None else ref_bwd
    rec = _Recorder(name, stop=raise_on_failure)
    rng = np.random.default_rng(seed)
    for case in chosen:
        for dtype in dtypes:
            dtype = np.dtype(dtype)
            if dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
                raise ValueError(f"check_kernel: dtypes must be float32/float64; got {dtype}.")
            try:
                _CHECKERS[name](rec, fwd, bwd, ref_fwd, ref_bwd, case, dtype.type, rng,
                                gradcheck, gradcheck_max_elements)
            except _StopCase:
                if raise_on_failure:  # pragma: no cover - the recorder raised already
                    raise AssertionError(rec.report.first_failure.message) from None
    return rec.report
