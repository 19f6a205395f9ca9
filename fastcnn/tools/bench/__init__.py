"""``python -m fastcnn bench``: the speed instrument.

Prints markdown tables of every kernel (conv2d fwd / bwd / fwd+bwd, maxpool2d,
batch norm) per backend, named shape preset and thread count, as time, GFLOP/s or
effective GB/s, as a fraction of this machine's float32 GEMM rate and memory bandwidth
measured in the same run, and as ratios to the NumPy reference, to the same GEMMs
alone and to PyTorch CPU; then the docs/benchmarks.md targets met or missed, optionally a
breakdown of where a convolution's time goes, the peak memory of a convolution at two
batch sizes, and any registered training-step benchmarks.

``--fit`` instead times what users run: whole ``model.fit`` epochs and ``predict`` of
real nets against a PyTorch training loop, each side in its own process (:mod:`.fit`).

Modules: :mod:`.cases` (presets, work counts, callables), :mod:`.timing`,
:mod:`.machine`, :mod:`.torch_ref`, :mod:`.targets`, :mod:`.breakdown`,
:mod:`.memory`, :mod:`.steps` + :mod:`.step_nets`, :mod:`.report` (+
:mod:`.report_sections`, :mod:`.report_steps`, :mod:`.tables`), :mod:`.fit` (+
:mod:`.fit_nets`, :mod:`.fit_worker`). The pytest-benchmark suites in ``benchmarks/``
use the same presets and callables.
"""

from __future__ import annotations

import shlex
import sys

from fastcnn.kernels._dispatch import get_backend
from fastcnn.tools.bench import cases
from fastcnn.tools.bench.fit import FitOptions, run_fit_bench
from fastcnn.tools.bench.report import Options, run_report
from fastcnn.tools.bench.steps import load_step_benchmarks
from fastcnn.tools.bench.torch_ref import torch_available

__all__ = ["add_arguments", "run"]


def _names(values):
    """``["a,b", "c"]`` -> ``["a", "b", "c"]`` (accept commas and/or spaces)."""
    return [v for item in values for v in item.split(",") if v]


def _ints(text):
    return [int(v) for v in text.split(",") if v]


def add_arguments(parser) -> None:
    parser.add_argument("--quick", action="store_true",
                        help="a small subset (small batches, fwd+bwd only) that runs well "
                             "under a minute")
    parser.add_argument("--json", metavar="PATH", help="save every measurement and the "
                        "machine info to PATH")
    parser.add_argument("--threads", default="1,2", metavar="1,2",
                        help="thread counts to measure (default: 1,2)")
    parser.add_argument("--backends", nargs="+", metavar="NAME",
                        help="fastcnn backends to time (default: every available one)")
    parser.add_argument("--cases", nargs="+", metavar="NAME",
                        help="named shape presets (default: all targets; see --list-cases)")
    parser.add_argument("--directions", nargs="+", metavar="DIR",
                        help="fwd, bwd and/or fwd+bwd (default: all; --quick: fwd+bwd)")
    parser.add_argument("--list-cases", action="store_true", help="print the presets and exit")
    parser.add_argument("--breakdown", action="store_true",
                        help="show where each convolution's time goes (im2col, GEMM, ...)")
    parser.add_argument("--plot", metavar="PATH", help="save the breakdown as stacked bars in "
                        "a PNG (implies --breakdown)")
    parser.add_argument("--repeats", type=int, default=5,
                        help="timed rounds per measurement; the median is reported (default 5)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed calls first (default 2)")
    parser.add_argument("--no-torch", action="store_true", help="do not compare with PyTorch")
    parser.add_argument("--no-memory", action="store_true",
                        help="skip the peak-memory section (subprocesses)")
    parser.add_argument("--memory-batches", default=None, metavar="64,512",
                        help="batch sizes of the peak-memory section (default 64,512; "
                             "--quick: 8,32)")
    parser.add_argument("--gemm-size", type=int, default=2048,
                        help="size of the square float32 GEMM measuring the machine's rate")
    parser.add_argument("--bandwidth-mb", type=int, default=256,
                        help="MB copied to measure memory bandwidth")
    parser.add_argument("--steps", nargs="+", metavar="NAME",
                        help="training-step benchmarks to run (default: all; --quick: the "
                             "MNIST net only; 'none' for no step benchmarks)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    fit = parser.add_argument_group("whole training epochs (--fit)")
    fit.add_argument("--fit", action="store_true",
                     help="time whole model.fit epochs and predict against a PyTorch training "
                          "loop, each side in its own process, alternating (instead of the "
                          "kernel tables)")
    fit.add_argument("--fit-nets", nargs="+", metavar="NAME",
                     help="nets: mnist, cifar10, cifar10_bn, digits (default: all; --quick: "
                          "mnist, digits)")
    fit.add_argument("--fit-samples", type=int, metavar="N",
                     help="training images per epoch (default: the real data set's size: "
                          "60,000 MNIST, 50,000 CIFAR-10, 1,437 digits; --quick: 1,280)")
    fit.add_argument("--fit-epochs", type=int, default=2,
                     help="timed epochs per process (default 2; --quick: 1)")
    fit.add_argument("--fit-rounds", type=int, default=2,
                     help="A B rounds: processes per side and thread count (default 2)")


def run(args) -> int:
    if args.list_cases:
        for name, case in cases.CASES.items():
            print(f"{name:22s} {case.kernel:10s} {case.shape_text:40s} {case.note}")
        return 0
    if args.repeats < 1 or args.warmup < 0:
        print("bench: --repeats must be >= 1 and --warmup >= 0; "
              f"got {args.repeats} and {args.warmup}.", file=sys.stderr)
        return 2
    try:
        threads = _ints(args.threads)
        if not threads or min(threads) < 1:
            raise ValueError
    except ValueError:
        print(f"bench: --threads must be comma-separated positive ints; got {args.threads!r}.",
              file=sys.stderr)
        return 2
    command = ("python -m fastcnn bench " + shlex.join(sys.argv[2:])
               if sys.argv[1:2] == ["bench"] else "")
    if args.fit:
        return _run_fit(args, threads, command)
    opts = Options(threads=threads, repeats=args.repeats, warmup=args.warmup,
                   torch=not args.no_torch, breakdown=args.breakdown or bool(args.plot),
                   plot=args.plot,
                   memory=not args.no_memory, gemm_size=args.gemm_size,
                   bandwidth_mb=args.bandwidth_mb, progress=not args.no_progress,
                   json_path=args.json, command=command)
    if args.quick:
        opts.cases = list(cases.QUICK_CASES)
        opts.directions = ("fwd+bwd",)
        opts.memory_batches = (8, 32)
        opts.memory_backends = [get_backend()]
        opts.steps = [n for n, b in load_step_benchmarks()[0].items() if b.quick]
    if args.cases:
        opts.cases = _names(args.cases)
    if args.backends:
        opts.backends = _names(args.backends)
    if args.directions:
        opts.directions = tuple(_names(args.directions))
    if args.steps:
        opts.steps = [] if _names(args.steps) == ["none"] else _names(args.steps)
    if args.memory_batches:
        opts.memory_batches = tuple(_ints(args.memory_batches))
    try:
        run_report(opts)
    except ValueError as err:
        print(str(err), file=sys.stderr)
        return 2
    return 0


def _run_fit(args, threads, command) -> int:
    """``bench --fit``: whole epochs, fastcnn vs PyTorch (see :mod:`.fit`)."""
    quick = args.quick
    try:
        opts = FitOptions(
            nets=_names(args.fit_nets) if args.fit_nets else (
                ["mnist", "digits"] if quick else None),
            threads=threads, backends=_names(args.backends) if args.backends else [get_backend()],
            samples=args.fit_samples or (1280 if quick else None),
            epochs=1 if quick and args.fit_epochs == 2 else args.fit_epochs,
            rounds=args.fit_rounds, torch=not args.no_torch and torch_available(),
            json_path=args.json, command=command)
    except ValueError as err:
        print(str(err), file=sys.stderr)
        return 2
    run_fit_bench(opts, progress=None if not args.no_progress else (lambda text: None))
    return 0
