"""``plantbimoe vep MODEL VCF FASTA -o OUT.vcf``: zero-shot variant-effect scores.

Scores are defined in plantbimoe.inference.vep; statuses of skipped variants in
plantbimoe.inference.vep_runner. The VCF is streamed and the reference read through its index
(plantbimoe.genome: plain or bgzip FASTA, .fai/.gzi built when missing). Writes the VCF with the
score in INFO (declared Number=A: one value per ALT) and a TSV with one row per ALT (score, both
strands, status and a note), both as the records are scored.
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
    parser.add_argument("vcf", help="variants (VCF, plain, gzip or bgzip); multi-allelic records are split")
    parser.add_argument("fasta", help="reference genome FASTA, plain or bgzip (indexed: .fai, and .gzi for "
                                      "bgzip, built when missing; convert a plain gzip with `plantbimoe "
                                      "faidx`) with the VCF's contig names, or embedded:NAME (plantbimoe "
                                      "data)")
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
    parser.add_argument("--strict", action="store_true",
                        help="stop at the first malformed VCF line (default: leave it out and report it)")
    add_runtime_arguments(parser)


def _tsv_path(output: str) -> Path:
    name = Path(output).name
    for suffix in (".vcf.gz", ".vcf", ".gz"):
        if name.endswith(suffix):
            return Path(output).with_name(name[: -len(suffix)] + ".tsv")
    return Path(output).with_name(name + ".tsv")


def _fmt(value: float | None) -> str:
    return "NA" if value is None else f"{value:.6f}"


class _Report:
    """Counts of skipped alleles and malformed lines, with the first few messages of each kind."""

    def __init__(self) -> None:
        self.counts: Counter = Counter()
        self.lines: list[str] = []

    def add(self, kind: str, message: str) -> None:
        if self.counts[kind] < SHOWN_PER_KIND:
            self.lines.append(f"  {message} (skipped)")
        self.counts[kind] += 1

    def print(self) -> None:
        for line in self.lines:
            print(line, file=sys.stderr)
        for kind, count in self.counts.items():
            if count > SHOWN_PER_KIND:
                print(f"  ... {count - SHOWN_PER_KIND} more {kind}", file=sys.stderr)


def _run(args: argparse.Namespace) -> int:
    from ..atomic import atomic_text
    from ..embedded import resolve_fasta
    from ..genome import open_genome
    from ..inference.runtime import runtime_from_args
    from ..inference.vcf import InfoField, VcfReader, VcfWriter
    from ..inference.vep import VepSettings
    from ..inference.vep_runner import score_records
    from ..pretrained import load_pretrained

    settings = VepSettings(args.window, args.indel_flank, args.max_indel_length)
    w, k = 2 * settings.flank + 1, settings.indel_flank
    description = (f"PlantBiMoE zero-shot score: SNV log p(ALT) - log p(REF) with the site masked in a "
                   f"{w} bp window; indel/MNV PLL(ALT) - PLL(REF) over the changed bases +-{k} bp; "
                   "mean of both strands; > 0 favours ALT")
    score_field = InfoField(args.info_tag, "A", "Float", description)
    meta = [f"##plantbimoe_vep=<model={args.model},window={w},indel_flank={k},strands=both>"]
    tsv = Path(args.tsv) if args.tsv else _tsv_path(args.output)
    genome = open_genome(resolve_fasta(args.fasta))  # a bad FASTA or VCF header fails before the model loads
    reader = VcfReader(args.vcf, strict=args.strict)
    runtime = runtime_from_args(args)
    model = load_pretrained(args.model, runtime.device)
    statuses: Counter = Counter()
    report = _Report()
    with genome, reader, VcfWriter(args.output, reader.header, [score_field], meta) as out, \
            atomic_text(tsv) as handle, runtime.bar(None, "variants", unit="variant") as bar:
        table = csv.writer(handle, delimiter="\t", lineterminator="\n")
        table.writerow(TSV_COLUMNS)
        for record, results in score_records(model, reader, genome, settings, runtime):
            if record.problem is not None:
                report.add("malformed", f"malformed VCF line {record.line}: {record.problem} ({args.vcf})")
                continue
            out.write(record, {score_field.id: [r.scores[0] if r.scores else None for r in results]})
            for r in results:
                v, s = r.variant, r.scores or (None, None, None)
                table.writerow([v.chrom, v.pos, v.vid, v.ref, v.alt, r.kind, *map(_fmt, s), r.status,
                                r.message])
                statuses[r.status] += 1
                if r.status != "ok":
                    report.add(r.status, f"{r.status}: VCF line {v.line}: {r.message} ({args.vcf})")
            bar.update(len(results))
    total = sum(statuses.values())
    skipped = ", ".join(f"{k} {n}" for k, n in sorted(statuses.items()) if k != "ok") or "none"
    note(f"scored {statuses['ok']} of {total} alleles; skipped: {skipped}; "
         f"malformed lines: {report.counts['malformed']} -> {args.output}, {tsv}")
    report.print()
    return 1 if total and not statuses["ok"] else 0


def run(args: argparse.Namespace) -> int:
    return guarded("vep", _run, args)
