"""``plantbimoe faidx FASTA [-o OUT]``: make a genome FASTA readable at any position.

A plain or bgzip FASTA gets its samtools index (.fai, and .gzi for bgzip) built or refreshed. A
plain gzip FASTA (or, with -o, a plain one) is first copied to a bgzip FASTA (default: the name
without .gz, plus .bgz, beside it), which is then indexed. The same files that
``gzip -dc x.fa.gz | bgzip > x.fa.bgz && samtools faidx x.fa.bgz`` writes.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import guarded, note


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("fasta", help="genome FASTA (plain, gzip or bgzip), or embedded:NAME")
    parser.add_argument("-o", "--output", default=None,
                        help="bgzip FASTA to write (default for a gzip input: its name without .gz + .bgz)")


def _run(args: argparse.Namespace) -> int:
    from ..bgzf import bgzip_file, gzip_kind
    from ..embedded import resolve_fasta
    from ..genome import bgzip_name, build_index

    source = Path(resolve_fasta(args.fasta))
    if not source.is_file():
        raise FileNotFoundError(f"FASTA file not found: {source}")
    kind = gzip_kind(source)
    target = source
    if kind == "gzip" or args.output:
        if kind == "bgzf":
            raise ValueError(f"{source} is bgzip-compressed already; index it in place (no -o)")
        target = bgzip_file(source, Path(args.output) if args.output else bgzip_name(source))
        note(f"wrote {target} (bgzip)")
    fai, gzi = build_index(target)
    note(f"indexed {target}: {fai}" + (f", {gzi}" if gzi else ""))
    return 0


def run(args: argparse.Namespace) -> int:
    return guarded("faidx", _run, args)
