"""``plantbimoe vep MODEL VCF FASTA -o OUT.vcf``: zero-shot variant-effect scores.

Scores are defined in plantbimoe.inference.vep; statuses of skipped variants in
plantbimoe.inference.vep_runner. Writes the VCF with the score in INFO (one value per ALT) and a
TSV with one row per ALT (score, both strands, status and a note).
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections import Counter
from pathlib import Path

from .common import guarded, note

TSV_COLUMNS = (
    "chrom", "pos", "id", "ref", "alt", "kind", "score", "score_fwd", "score_rev", "status", "note",
)
SHOWN_PER_KIND = 5


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..inference.runtime import add_runtime_arguments

    parser.add_argument("model", help="released-layout folder, exported folder or our .ckpt")
    parser.add_argument("vcf", help="variants (VCF, plain or gzip); multi-allelic records are split")
    parser.add_argument("fasta", help="reference genome FASTA (plain or gzip) with the VCF's contig names, "
                                      "or embedded:NAME (plantbimoe data)")
    parser.add_argument("-o", "--output", required=True, help="scored VCF to write (.vcf or .vcf.gz)")
    parser.add_argument("--tsv", default=None, help="TSV to write (default: OUTPUT with .tsv for .vcf[.gz])")
    parser.add_argument("--window", type=int, default=512,
                        help="bases around the variant (rounded down to odd: the site is central; "
                             "default 512 -> 255 + 1 + 255)")
    parser.add_argument("--indel-flank", type=int, default=5,
                        help="bases on each side of an indel/MNV whose likelihoods are compared (default 5)")
    parser.add_argument("--max-indel-length", type=int, default=50,
                        help="longer changed segments are skipped as too_long (default 50)")
    parser.add_argument("--info-tag", default="PlantBiMoE_LLR", help="INFO key of the score")
    add_runtime_arguments(parser)


def _tsv_path(output: str) -> Path:
    name = Path(output).name
    for suffix in (".vcf.gz", ".vcf", ".gz"):
        if name.endswith(suffix):
            return Path(output).with_name(name[: -len(suffix)] + ".tsv")
    return Path(output).with_name(name + ".tsv")


def _fmt(value: float | None) -> str:
    return "NA" if value is None else f"{value:.6f}"


def _report(results, contents) -> None:
    shown: Counter = Counter()
    for line, message in contents.malformed:
        if shown["malformed"] < SHOWN_PER_KIND:
            print(f"  malformed VCF line {line}: {message} (skipped)", file=sys.stderr)
        shown["malformed"] += 1
    for r in results:
        if r.status != "ok":
            if shown[r.status] < SHOWN_PER_KIND:
                print(f"  {r.status}: VCF line {r.variant.line}: {r.message} (skipped)", file=sys.stderr)
            shown[r.status] += 1
    for kind, count in shown.items():
        if count > SHOWN_PER_KIND:
            print(f"  ... {count - SHOWN_PER_KIND} more {kind}", file=sys.stderr)


def _run(args: argparse.Namespace) -> int:
    from ..atomic import atomic_text
    from ..embedded import resolve_fasta
    from ..inference.runtime import runtime_from_args
    from ..inference.vcf import write_vcf
    from ..inference.vep import VepSettings
    from ..inference.vep_runner import run_vep
    from ..pretrained import load_pretrained

    fasta = resolve_fasta(args.fasta)
    settings = VepSettings(args.window, args.indel_flank, args.max_indel_length)
    runtime = runtime_from_args(args)
    model = load_pretrained(args.model, runtime.device)
    results, contents = run_vep(model, args.vcf, fasta, settings, runtime)
    scores = {(r.variant.line, r.variant.alt_index): r.scores[0] for r in results if r.scores}
    w, k = 2 * settings.flank + 1, settings.indel_flank
    description = (f"PlantBiMoE zero-shot score: SNV log p(ALT) - log p(REF) with the site masked in a "
                   f"{w} bp window; indel/MNV PLL(ALT) - PLL(REF) over the changed bases +-{k} bp; "
                   "mean of both strands; > 0 favours ALT")
    meta = [f"##plantbimoe_vep=<model={args.model},window={w},indel_flank={k},strands=both>"]
    malformed = frozenset(line for line, _ in contents.malformed)
    write_vcf(args.vcf, args.output, scores, args.info_tag, description, meta, malformed)
    tsv = Path(args.tsv) if args.tsv else _tsv_path(args.output)
    with atomic_text(tsv) as handle:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow(TSV_COLUMNS)
        for r in results:
            v, s = r.variant, r.scores or (None, None, None)
            writer.writerow([v.chrom, v.pos, v.vid, v.ref, v.alt, r.kind, *map(_fmt, s), r.status, r.message])
    counts = Counter(r.status for r in results)
    skipped = ", ".join(f"{k} {n}" for k, n in sorted(counts.items()) if k != "ok") or "none"
    note(f"scored {counts['ok']} of {len(results)} alleles; skipped: {skipped}; "
         f"malformed lines: {len(contents.malformed)} -> {args.output}, {tsv}")
    _report(results, contents)
    return 1 if results and not counts["ok"] else 0


def run(args: argparse.Namespace) -> int:
    return guarded("vep", _run, args)
