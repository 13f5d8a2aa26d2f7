"""The ``bioviz`` command line: one subcommand per module in ``bioviz/commands``."""
from __future__ import annotations

import argparse
import importlib
import sys

from . import __version__
from .errors import BiovizError

# Order is the order shown in --help: the steps of an analysis.
COMMANDS = ("demo", "import", "info", "embed", "train", "map", "umap", "benchmark", "recall", "report",
            "app")
# A command whose name is a Python keyword lives in a module with a trailing underscore.
MODULES = {"import": "import_"}

DESCRIPTION = """\
bioviz shows what a microscopy model has learned: its embeddings of a Cell Painting screen
next to simple baselines (pixel statistics, cell counts, untrained networks, plate layout),
scored on known gene-gene relationships, with the confounders that drive each score.

Typical session:
  bioviz demo --preset default --out data/demo      # a simulated screen with known answers
  bioviz info --dataset data/demo                   # check a dataset folder
  bioviz embed --dataset data/demo --embedders all  # compute embeddings (cached)
  bioviz benchmark --dataset data/demo              # recall, probes, confounders
  bioviz app                                        # open the dashboard
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bioviz", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"bioviz {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"bioviz.commands.{MODULES.get(name, name)}")
        except ModuleNotFoundError as exc:
            if exc.name != f"bioviz.commands.{MODULES.get(name, name)}":
                raise
            continue  # subcommand not built yet
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except BiovizError as exc:
        print(f"bioviz {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"bioviz {args.command}: interrupted; finished results are kept", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
