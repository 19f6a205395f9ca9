"""``python -m fastcnn verify``: check every fast backend against the NumPy reference.

For each backend (all available fast ones, or those named with ``--backend``),
each kernel (conv2d, im2col/col2im, max, average and adaptive average pooling,
batchnorm), forward and backward,
float32 and float64, it runs ``--cases`` randomized valid geometries (drawn by
:func:`fastcnn.testing.random_cases` from ``--seed``) through
:func:`fastcnn.testing.check_kernel` and prints one line per combination::

    backend  kernel           dtype    max abs err  max rel err  result
    numba    conv2d forward   float32     4.77e-07     2.16e-06  pass

Tolerances are those of :data:`fastcnn.testing.TOLERANCES`. The exit status is 1
if anything failed (or a backend named on the command line is missing), else 0.
Missing backends are listed with the reason.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import numpy as np

from fastcnn.kernels import _dispatch as _backend
from fastcnn.tools.testing import KERNELS, check_kernel, kernel_functions, random_cases

__all__ = ["add_arguments", "run", "verify", "VerifyRow"]

DTYPES = ("float32", "float64")


@dataclass
class VerifyRow:
    """One line of the table: the worst errors over all cases of one combination."""

    backend: str
    kernel: str
    direction: str      # "forward" or "backward"
    dtype: str
    max_abs: float
    max_rel: float
    passed: bool
    checks: int
    first_failure: str = ""


def _direction(quantity: str) -> str:
    """Which pass a check of :func:`check_kernel` belongs to."""
    if quantity.startswith(("backward", "col2im")):
        return "backward"
    return "forward"   # forward out, im2col cols, running stats, inputs left unchanged


def verify(backends=None, seed: int = 0, cases: int = 8) -> tuple[list[VerifyRow], dict]:
    """Run the checks; returns ``(rows, missing)`` where ``missing`` maps each
    unavailable backend considered to the reason it is unavailable."""
    if backends is None:
        considered = [name for name in _backend.BACKENDS if name != "numpy"]
    else:
        considered = list(dict.fromkeys(backends))
    missing = {}
    rows = []
    for name in considered:
        if not _backend.is_available(name):
            missing[name] = str(_backend._import_errors.get(name, "does not import"))
            continue
        for k, kernel in enumerate(KERNELS):
            # One stream per kernel, so `--cases` and the kernel list do not shift
            # each other's cases: the same seed gives the same geometries.
            chosen = random_cases(kernel, np.random.default_rng([seed, k]), cases)
            forward, backward = kernel_functions(kernel, name)
            report = check_kernel(kernel, forward, backward, dtypes=DTYPES, cases=chosen,
                                  gradcheck=False, seed=seed, raise_on_failure=False)
            for dtype in DTYPES:
                for direction in ("forward", "backward"):
                    results = [r for r in report.results
                               if r.dtype == dtype and _direction(r.quantity) == direction]
                    failures = [r for r in results if not r.passed]
                    rows.append(VerifyRow(
                        name, kernel, direction, dtype,
                        max((r.max_abs for r in results), default=0.0),
                        max((r.max_rel for r in results), default=0.0),
                        not failures, len(results),
                        failures[0].message if failures else ""))
    return rows, missing


def format_table(rows: list[VerifyRow]) -> str:
    header = (f"{'backend':8s} {'kernel':18s} {'direction':9s} {'dtype':8s} "
              f"{'max abs err':>12s} {'max rel err':>12s}  result")
    lines = [header, "-" * len(header)]
    for r in rows:
        lines.append(f"{r.backend:8s} {r.kernel:18s} {r.direction:9s} {r.dtype:8s} "
                     f"{r.max_abs:12.3g} {r.max_rel:12.3g}  {'pass' if r.passed else 'FAIL'}")
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", action="append", choices=list(_backend.BACKENDS),
                        metavar="NAME", help="backend to check (repeatable; default: every "
                        "fast backend; 'numpy' checks the reference against itself)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random cases (0)")
    parser.add_argument("--cases", type=_positive_int, default=8, metavar="N",
                        help="random cases per kernel, each in both dtypes (8)")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"--cases must be a positive int; got {text!r}")
    return value


def run(args) -> int:
    start = time.perf_counter()
    rows, missing = verify(args.backend, seed=args.seed, cases=args.cases)
    print(f"fastcnn verify: every backend against the NumPy reference, {args.cases} random "
          f"cases per kernel, seed {args.seed}\n")
    if rows:
        print(format_table(rows))
    for name, reason in missing.items():
        print(f"{name}: missing ({reason}); hint: {_backend._HINTS.get(name, '')}")
    if not rows and not missing:
        print("no backend to check")
    failed = [r for r in rows if not r.passed]
    for r in failed:
        print(f"\nFAIL {r.backend} {r.kernel} {r.direction} {r.dtype}: {r.first_failure}")
    named_missing = [n for n in missing if args.backend]
    elapsed = time.perf_counter() - start
    checks = sum(r.checks for r in rows)
    if failed or named_missing:
        why = []
        if failed:
            why.append(f"{len(failed)} of {len(rows)} combinations failed")
        if named_missing:
            why.append(f"requested backend(s) missing: {', '.join(named_missing)}")
        print(f"\nFAILED: {'; '.join(why)} ({checks} checks, {elapsed:.1f} s)")
        return 1
    print(f"\nOK: {len(rows)} combinations, {checks} checks passed ({elapsed:.1f} s)")
    return 0
