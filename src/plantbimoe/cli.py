"""The ``plantbimoe`` console script: one argparse subcommand per module in `plantbimoe.commands`.

A subcommand module defines ``HELP`` (one line), ``add_arguments(parser)`` and ``run(args) -> int``;
register it in `SUBCOMMANDS`. Modules are imported only when their subcommand runs.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

SUBCOMMANDS: dict[str, str] = {
    "info": "plantbimoe.commands.info",
    "embed": "plantbimoe.commands.embed",
    "predict": "plantbimoe.commands.predict",
    "vep": "plantbimoe.commands.vep",
    "score-windows": "plantbimoe.commands.score_windows",
    "export": "plantbimoe.commands.export",
    "data": "plantbimoe.commands.data",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="plantbimoe", description="PlantBiMoE DNA language model tools.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module_name in SUBCOMMANDS.items():
        module = importlib.import_module(module_name)
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default: sys.argv[1:]) and run the chosen subcommand; returns the exit code."""
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
