"""`plantbimoe-shards`: build and inspect pretraining shards.

    plantbimoe-shards build conf/manifests/arabidopsis.yaml data/shards/arabidopsis
    plantbimoe-shards build MANIFEST OUT --window-length 32768 --overlap 128 --processes 16
    plantbimoe-shards info data/shards/arabidopsis        # or an s3:// / https:// / pipe: location
    plantbimoe-shards plan data/shards/arabidopsis --batch-size 16 --steps 1800 --seed 42
    plantbimoe-shards plan data/shards/arabidopsis --batch-size 16 --steps 1800 --seed 42 \
        --overlap A_thaliana_TAIR10   # and the bases of it read per split of the benchmark's blocks

Parameters not given on the command line come from the manifest's `build:` section, then from
the defaults (32,768-bp windows, 128-bp overlap, <= 2% N, 256 MiB shards, 2.5% + 2.5% held out).
An interrupted build resumes when run again with the same arguments.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import fields

from datamodules.annotation_bench import BenchParams
from datamodules.shards import overlap
from datamodules.shards.builder import build_shards
from datamodules.shards.composition import render, species_per_span
from datamodules.shards.index import ShardIndex
from datamodules.shards.manifest import ManifestError, load_manifest, parse_size
from datamodules.shards.splits import SPLITS, SplitError
from datamodules.shards.unit import BuildParams
from plantbimoe.fasta import FastaFormatError

_TYPES = {f.name: f.type for f in fields(BuildParams)}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="plantbimoe-shards", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="FASTA assemblies of a manifest -> webdataset shards")
    build.add_argument("manifest", help="species manifest YAML (see conf/manifests/)")
    build.add_argument("out", help="output folder (resumes an interrupted build of the same parameters)")
    build.add_argument("--genomes-root", help="folder for relative FASTA paths (overrides the root key)")
    build.add_argument("--processes", type=int, help="worker processes (default: all cores)")
    build.add_argument("--quiet", action="store_true", help="no progress bars")
    for name in _TYPES:
        kind = str if name == "shard_size" else (float if _TYPES[name] in (float, "float") else int)
        build.add_argument(f"--{name.replace('_', '-')}", dest=name, type=kind, default=None)
    info = commands.add_parser("info", help="summarise a shard index")
    info.add_argument("location", help="shard folder or URL")
    plan = commands.add_parser("plan", help="species mix of each span of steps of a training stream")
    plan.add_argument("location", help="shard folder or URL")
    plan.add_argument("--batch-size", type=int, required=True, help="windows per step (data.batch_size)")
    plan.add_argument("--steps", type=int, required=True, help="optimizer steps (trainer.max_steps)")
    plan.add_argument("--seed", type=int, required=True, help="the run's seed")
    plan.add_argument("--interleave", type=int, default=16, help="data.shard_interleave (default 16)")
    plan.add_argument("--span", type=int, default=100, help="steps per row (default 100)")
    plan.add_argument("--overlap", metavar="SPECIES",
                      help="also the bases of SPECIES read, per split of the annotation benchmark's blocks")
    return parser


def _summary(index: ShardIndex) -> str:
    lines = [f"corpus {index.data['corpus']} at {index.location}",
             f"parameters {json.dumps(index.parameters, sort_keys=True)}"]
    for split in SPLITS:
        stats = index.data["splits"][split]
        lines.append(f"{split:>5}: {stats['windows']:,} windows ({stats['window_bases']:,} bp) in "
                     f"{len(stats['shards'])} shards; dropped for N: {stats['dropped_n_windows']:,}")
    short = sum(s["short_contigs"]["count"] for s in index.data["species"].values())
    lines.append(f"{len(index.species)} species; {short} contigs shorter than a window skipped")
    for record in index.data["species"].values():
        if blocks := record.get("held_out_blocks"):
            lines.append(f"held out by position: {blocks['description']} "
                         f"({blocks['crossing_windows_dropped']:,} crossing windows dropped)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        if args.command == "info":
            print(_summary(ShardIndex.load(args.location)))
            return 0
        if args.command == "plan":
            index = ShardIndex.load(args.location)
            spans = species_per_span(index, args.batch_size, args.steps, args.seed, args.interleave,
                                     args.span)
            print(render(spans, args.span))
            if args.overlap:
                read, every = overlap.windows_read(index, args.batch_size, args.steps, args.seed,
                                                   args.interleave, args.overlap)
                print("\n" + overlap.render(args.overlap, args.steps, read, every, BenchParams().blocks()))
            return 0
        manifest = load_manifest(args.manifest, args.genomes_root)
        values = {**manifest.build, **{k: getattr(args, k) for k in _TYPES if getattr(args, k) is not None}}
        if "shard_size" in values:
            values["shard_size"] = parse_size(values["shard_size"])
        index = build_shards(manifest, args.out, BuildParams(**values), args.processes, not args.quiet)
        print(_summary(ShardIndex(index, args.out)))
        return 0
    except (ManifestError, SplitError, FastaFormatError, FileNotFoundError, ValueError) as err:
        print(f"plantbimoe-shards: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
