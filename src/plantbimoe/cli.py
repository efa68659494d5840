"""The ``plantbimoe`` console script: one argparse subcommand per module in `plantbimoe.commands`.

A subcommand module defines ``add_arguments(parser)`` and ``run(args) -> int``; register it with
its one-line help in `SUBCOMMANDS`. A module is imported only when its subcommand is parsed (so
``plantbimoe --help`` and every other subcommand do not pay for it).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Any

# name -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "info": ("plantbimoe.commands.info",
             "Show layers, experts and parameter counts of a config.json or a preset (tiny, base); "
             "this CPU's bf16."),
    "embed": ("plantbimoe.commands.embed",
              "Per-sequence embeddings (pooled, optionally per layer / strand-averaged) "
              "to .npy or .parquet."),
    "predict": ("plantbimoe.commands.predict",
                "Predictions and probabilities of a fine-tuned model on FASTA/CSV/TSV sequences, as TSV."),
    "vep": ("plantbimoe.commands.vep",
            "Zero-shot variant effects (masked LLR, both strands; indels by allele likelihoods): VCF + TSV."),
    "score-windows": ("plantbimoe.commands.score_windows",
                      "Per-base masked-LM scores (or embeddings) of long sequences, tiled and stitched: "
                      "bedGraph/npz."),
    "faidx": ("plantbimoe.commands.faidx",
              "Index a genome FASTA for random access (.fai, .gzi); a plain gzip is copied to bgzip first."),
    "export": ("plantbimoe.commands.export",
               "Export a checkpoint (ours or released) as config.json + model.safetensors (+ task.json)."),
    "data": ("plantbimoe.commands.data",
             "List the embedded genomes usable as embedded:NAME in place of a FASTA path "
             "(paths, contigs, sizes)."),
}


class _CommandParser(argparse.ArgumentParser):
    """A subcommand's parser: imports its module (arguments and ``run``) when it first parses."""

    module_name: str | None = None

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        if self.module_name is not None:
            module = importlib.import_module(self.module_name)
            self.module_name = None
            module.add_arguments(self)
            self.set_defaults(run=module.run)
        return super().parse_known_args(args, namespace)


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser; subcommand modules are imported only when their command is parsed."""
    parser = argparse.ArgumentParser(prog="plantbimoe", description="PlantBiMoE DNA language model tools.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_CommandParser)
    for name, (module_name, help_line) in SUBCOMMANDS.items():
        sub.add_parser(name, help=help_line, description=help_line).module_name = module_name
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default: sys.argv[1:]) and run the chosen subcommand; returns the exit code."""
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
