"""``python -m fastcnn COMMAND``: the command-line entry point.

Each command lives in its own module exposing ``add_arguments(parser)`` and
``run(args) -> int`` (the exit status); this file only wires them together.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from fastcnn.tools.config import show_config

# command name -> (module, one-line help). Modules are imported only when used.
COMMANDS = {
    "verify": ("fastcnn.tools.verify", "check every available backend against the NumPy reference"),
    "bench": ("fastcnn.tools.bench", "time the kernels per backend vs the machine, NumPy and PyTorch"),
    "train": ("fastcnn.cli.train", "train a CNN (default: the built-in digits)"),
    "search": ("fastcnn.cli.search", "random search for lr and L2 strength, coarse to fine; "
                                     "ensemble of the best"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m fastcnn",
        description="fastcnn: a fast, readable, trustworthy CNN engine.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        command = sub.add_parser(name, help=help_text, description=help_text)
        importlib.import_module(module_name).add_arguments(command)
    sub.add_parser("config", help="print backends, threads and BLAS in use")
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    if args.command == "config":

        show_config()
        return 0
    module = importlib.import_module(COMMANDS[args.command][0])
    return int(module.run(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
