"""The embedded TAIR10 chr1 benchmark: positives on annotated sites, no overlap between splits."""

from __future__ import annotations

import csv
import gzip
import json
from collections import defaultdict
from pathlib import Path

import pytest

from datamodules.annotation.examples import SITE_TASKS
from datamodules.annotation.regions import BlockSplit
from datamodules.annotation_bench import LAYOUT, MANIFEST, BenchParams, build_benchmark, ensure_benchmark
from datamodules.embedded import embedded_annotation
from datamodules.mpgb import read_dataset

PARAMS = BenchParams(seed=3, max_per_class=150)


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bench") / "tair10"
    build_benchmark(out, PARAMS)
    return out


@pytest.fixture(scope="module")
def annotation() -> dict[str, set]:
    """Sites re-derived straight from the GFF text (independently of the builder's parser)."""
    exons, kinds = defaultdict(list), {}
    with gzip.open(embedded_annotation(), "rt") as handle:
        for line in handle:
            f = line.rstrip("\n").split("\t")
            if line.startswith("#") or len(f) != 9:
                continue
            attrs = dict(kv.split("=", 1) for kv in f[8].split(";") if "=" in kv)
            if f[2] in ("mRNA", "lnc_RNA"):
                kinds[attrs["ID"]] = (f[2], f[0], f[6], int(f[3]), int(f[4]))
            elif f[2] == "exon":
                exons[attrs["Parent"]].append((int(f[3]), int(f[4])))
    sites: dict[str, set] = defaultdict(set)
    for tid, (kind, chrom, strand, start, end) in kinds.items():
        if kind == "mRNA":  # boundaries in 0-based coordinates: the transcribed base follows a 5' boundary
            sites["core_promoter"].add((chrom, start - 1 if strand == "+" else end, strand))
            sites["polyadenylation"].add((chrom, end if strand == "+" else start - 1, strand))
        sites[kind].add(tid.removeprefix("rna-"))
        parts = sorted(exons.get(tid, []))
        for (_, left_end), (right_start, _) in zip(parts[:-1], parts[1:], strict=True):
            donor, acceptor = (left_end, right_start - 1) if strand == "+" else (right_start - 1, left_end)
            sites["splice_donor"].add((chrom, donor, strand))
            sites["splice_acceptor"].add((chrom, acceptor, strand))
    return sites


def _rows(bench: Path, task: str) -> dict[str, list[dict]]:
    """Per split: dicts with sequence, label and the genomic interval, from the written files."""
    fmt, files = LAYOUT[task]
    out = {}
    for split, name in files.items():
        path = bench / task / name
        if fmt == "fasta":
            lines = path.read_text().split("\n")
            rows = []
            for header, seq in zip(lines[0:-1:2], lines[1::2], strict=True):
                chrom, site, strand = header[1:].split("|")[0].rsplit(":", 2)
                spec = SITE_TASKS[task]
                up, down = (
                    (spec.upstream, spec.downstream) if strand == "+" else (spec.downstream, spec.upstream)
                )
                rows.append(
                    {
                        "sequence": seq,
                        "label": header.split("|")[1],
                        "chrom": chrom,
                        "site": site,
                        "strand": strand,
                        "start": int(site) - up,
                        "end": int(site) + down,
                    }
                )
        else:
            with open(path, newline="") as handle:
                rows = list(csv.DictReader(handle, delimiter="," if fmt == "csv" else "\t"))
        out[split] = rows
    return out


@pytest.mark.parametrize("task", list(LAYOUT))
def test_splits_do_not_overlap_and_follow_the_blocks(bench: Path, task: str) -> None:
    split = BlockSplit(PARAMS.block_size, PARAMS.cycle, PARAMS.val_slot, PARAMS.test_slot)
    intervals = {}
    for name, rows in _rows(bench, task).items():
        assert rows, f"{task}/{name} is empty"
        positives = sum(r["label"] == "1" for r in rows)
        assert positives == len(rows) - positives  # matched negatives
        spans = sorted((r["chrom"], int(r["start"]), int(r["end"])) for r in rows)
        assert all(split.split_of(start, end) == name for _, start, end in spans)
        intervals[name] = spans
    names = list(intervals)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            for chrom, start, end in intervals[a]:
                assert not any(c == chrom and s < end and start < e for c, s, e in intervals[b]), (task, a, b)


@pytest.mark.parametrize("task", list(SITE_TASKS))
def test_positives_sit_on_annotated_sites_and_negatives_do_not(bench: Path, task: str, annotation) -> None:
    for rows in _rows(bench, task).values():
        for r in rows:
            site = (r["chrom"], int(r["site"]), r["strand"])
            assert (site in annotation[task]) == (r["label"] == "1"), (task, site, r["label"])
            spec = SITE_TASKS[task]
            assert len(r["sequence"]) == spec.upstream + spec.downstream
    rows = [r for split in _rows(bench, task).values() for r in split]
    if task in ("splice_donor", "splice_acceptor"):
        at = slice(199, 201) if task == "splice_donor" else slice(197, 199)
        motif = "GT" if task == "splice_donor" else "AG"
        canonical = [r["sequence"][at] == motif for r in rows if r["label"] == "1"]
        assert (
            sum(canonical) / len(canonical) > 0.95
        )  # a few annotated sites are non-canonical (GC-AG, AT-AC)
        assert all(r["sequence"][at] == motif for r in rows if r["label"] == "0")


def test_lncrna_pairs_annotated_transcripts_of_matched_length(bench: Path, annotation) -> None:
    for rows in _rows(bench, "lncrna").values():
        lnc = [r for r in rows if r["label"] == "1"]
        mrna = [r for r in rows if r["label"] == "0"]
        assert all(r["name"].removeprefix("rna-") in annotation["lnc_RNA"] for r in lnc)
        assert all(r["name"].removeprefix("rna-") in annotation["mRNA"] for r in mrna)
        assert all(101 <= len(r["sequence"]) <= 6000 for r in rows)
        ratio = sum(len(r["sequence"]) for r in mrna) / sum(len(r["sequence"]) for r in lnc)
        assert 0.8 < ratio < 1.25


def test_datamodule_reads_every_dataset_and_build_is_reused(bench: Path) -> None:
    for task, (fmt, files) in LAYOUT.items():
        for split in ("train", "val", "test"):
            data = read_dataset(bench / task / files[split], fmt, "binary", 2, max_length=6000)
            assert set(data.labels.tolist()) == {0, 1}
    manifest = bench / MANIFEST
    stamp = manifest.stat().st_mtime_ns
    ensure_benchmark(bench, **json.loads(manifest.read_text())["params"])
    assert manifest.stat().st_mtime_ns == stamp
