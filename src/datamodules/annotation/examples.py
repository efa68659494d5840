"""Labelled windows from annotated sites, with matched negatives, per positional split.

Site tasks (window centred on a boundary, transcript orientation):
- ``splice_donor``: exon|intron boundaries; negatives: genic GT (intron-side) that are no donor;
- ``splice_acceptor``: intron|exon boundaries; negatives: genic AG that are no acceptor;
- ``polyadenylation``: mRNA 3' ends; negatives: genic positions >= 200 bp from any 3' end;
- ``core_promoter``: mRNA starts (-250..+50); negatives: genic positions >= 500 bp from any start.
Transcript task ``lncrna``: spliced lncRNAs (label 1) against mRNAs of the nearest length (label 0).
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from datamodules.annotation.gff import Transcript
from datamodules.annotation.regions import SPLITS, BlockSplit, Genome, window_spans
from plantbimoe.tokenizer import reverse_complement

Key = tuple[str, str]  # (chromosome, strand)


@dataclass(frozen=True)
class SiteTask:
    name: str
    upstream: int
    downstream: int
    motif: str | None = None  # negatives must read this at `motif_offset` from the boundary
    motif_offset: int = 0
    min_distance: int = 1  # negatives lie at least this far from every positive boundary


SITE_TASKS = {
    "splice_donor": SiteTask("splice_donor", 199, 199, "GT", 0),
    "splice_acceptor": SiteTask("splice_acceptor", 199, 199, "AG", -2),
    "polyadenylation": SiteTask("polyadenylation", 200, 200, min_distance=200),
    "core_promoter": SiteTask("core_promoter", 250, 50, min_distance=500),
}


@dataclass(frozen=True)
class Example:
    """One labelled sequence; `boundary` is the site (site tasks) or None (transcripts)."""

    name: str
    chrom: str
    strand: str
    start: int
    end: int
    label: int
    tokens: np.ndarray
    boundary: int | None = None


def positive_sites(task: str, transcripts: list[Transcript]) -> dict[Key, np.ndarray]:
    """Sorted unique boundaries of the annotated sites of `task` per (chromosome, strand)."""
    sites: dict[Key, set[int]] = defaultdict(set)
    for t in transcripts:
        key = (t.chrom, t.strand)
        if task in ("splice_donor", "splice_acceptor"):
            for left, right in t.introns():
                donor = (t.strand == "+") == (task == "splice_donor")
                sites[key].add(left if donor else right)
        elif t.kind == "mRNA":
            sites[key].add(t.three_prime if task == "polyadenylation" else t.five_prime)
    return {key: np.array(sorted(values), dtype=np.int64) for key, values in sites.items()}


def _motif_ok(genome: Genome, chrom: str, strand: str, b: np.ndarray, task: SiteTask) -> np.ndarray:
    if task.motif is None:
        return np.ones(len(b), dtype=bool)
    if strand == "+":
        return genome.motif_at(chrom, b + task.motif_offset, task.motif)
    rc_motif = task.motif[::-1].translate(str.maketrans("ACGT", "TGCA"))
    return genome.motif_at(chrom, b - task.motif_offset - len(task.motif), rc_motif)


def _distance_ok(b: np.ndarray, sites: np.ndarray, min_distance: int) -> np.ndarray:
    if len(sites) == 0:
        return np.ones(len(b), dtype=bool)
    right = np.clip(np.searchsorted(sites, b), 0, len(sites) - 1)
    left = np.clip(right - 1, 0, len(sites) - 1)
    nearest = np.minimum(np.abs(sites[right] - b), np.abs(sites[left] - b))
    return nearest >= min_distance


def _usable(genome: Genome, split: BlockSplit, key: Key, b: np.ndarray, task: SiteTask) -> np.ndarray:
    """Split id per boundary (-1: window off the chromosome, with N, or across a block edge)."""
    starts, ends = window_spans(b, key[1], task.upstream, task.downstream)
    ids = split.split_ids(starts, ends)
    return np.where(genome.window_ok(key[0], starts, ends), ids, -1)


def _example(genome: Genome, key: Key, b: int, task: SiteTask, label: int) -> Example:
    start, end = (int(x[0]) for x in window_spans(np.array([b]), key[1], task.upstream, task.downstream))
    name = f"{key[0]}:{b}:{key[1]}"
    return Example(name, key[0], key[1], start, end, label, genome.oriented(key[0], start, end, key[1]), b)


def site_examples(
    task: SiteTask,
    transcripts: list[Transcript],
    genome: Genome,
    split: BlockSplit,
    rng: np.random.Generator,
    max_per_class: int | None,
) -> dict[str, list[Example]]:
    """Positives (capped at `max_per_class` per split) and as many negatives, per split."""
    positives = positive_sites(task.name, transcripts)
    pos_by_split: dict[int, list[tuple[Key, int]]] = defaultdict(list)
    for key, b in positives.items():
        for boundary, sid in zip(b.tolist(), _usable(genome, split, key, b, task).tolist(), strict=True):
            if sid >= 0:
                pos_by_split[sid].append((key, boundary))
    out: dict[str, list[Example]] = {}
    for sid, name in enumerate(SPLITS):
        chosen = pos_by_split[sid]
        if max_per_class is not None and len(chosen) > max_per_class:
            chosen = [chosen[i] for i in sorted(rng.choice(len(chosen), max_per_class, replace=False))]
        negatives = _sample_negatives(task, transcripts, positives, genome, split, sid, len(chosen), rng)
        out[name] = [_example(genome, k, b, task, 1) for k, b in chosen]
        out[name] += [_example(genome, k, b, task, 0) for k, b in negatives]
    return out


def _sample_negatives(
    task: SiteTask,
    transcripts: list[Transcript],
    positives: dict[Key, np.ndarray],
    genome: Genome,
    split: BlockSplit,
    sid: int,
    count: int,
    rng: np.random.Generator,
    rounds: int = 60,
) -> list[tuple[Key, int]]:
    """`count` random genic boundaries of split `sid` that pass the task's motif and distance rules."""
    keys = sorted({(t.chrom, t.strand) for t in transcripts})
    key_of = np.array([keys.index((t.chrom, t.strand)) for t in transcripts])
    starts = np.array([t.start for t in transcripts], dtype=np.int64)
    lengths = np.array([t.end - t.start for t in transcripts], dtype=np.int64)
    cumulative = np.cumsum(lengths)
    found: dict[tuple[Key, int], None] = {}
    for _ in range(rounds):
        if len(found) >= count:
            break
        draws = rng.integers(0, cumulative[-1], size=max(1000, 20 * count))
        which = np.searchsorted(cumulative, draws, side="right")
        boundary = starts[which] + draws - (cumulative[which] - lengths[which])
        for k, key in enumerate(keys):
            b = boundary[key_of[which] == k]
            keep = _usable(genome, split, key, b, task) == sid
            keep &= _motif_ok(genome, key[0], key[1], b, task)
            keep &= _distance_ok(b, positives.get(key, np.empty(0, np.int64)), task.min_distance)
            for value in b[keep].tolist():
                found.setdefault((key, value), None)
    picked = list(found)[:count]
    if len(picked) < count:
        raise RuntimeError(
            f"{task.name}: found only {len(picked)} of {count} negatives for split {SPLITS[sid]}"
        )
    return picked


def transcript_tokens(genome: Genome, t: Transcript) -> np.ndarray:
    """The spliced transcript sequence (exons joined, transcript orientation)."""
    ids = np.concatenate([genome.ids[t.chrom][start:end] for start, end in t.exons])
    return ids if t.strand == "+" else reverse_complement(ids)


def lncrna_examples(
    transcripts: list[Transcript],
    genome: Genome,
    split: BlockSplit,
    rng: np.random.Generator,
    max_per_class: int | None,
    min_length: int = 101,
    max_length: int = 6000,
) -> dict[str, list[Example]]:
    """lncRNAs (1) and, for each, the unused mRNA of the nearest spliced length in the same split (0)."""
    pools: dict[tuple[int, str], list[Transcript]] = defaultdict(list)
    for t in transcripts:
        if t.kind not in ("lnc_RNA", "mRNA") or not min_length <= t.spliced_length <= max_length:
            continue
        sid = split.split_of(t.start, t.end)
        if sid is not None and genome.window_ok(t.chrom, np.array([t.start]), np.array([t.end]))[0]:
            pools[(SPLITS.index(sid), t.kind)].append(t)
    out: dict[str, list[Example]] = {}
    for sid, name in enumerate(SPLITS):
        lnc = pools[(sid, "lnc_RNA")]
        order = rng.permutation(len(lnc))[: max_per_class or len(lnc)]
        mrnas = sorted(pools[(sid, "mRNA")], key=lambda t: t.spliced_length)
        lengths = [t.spliced_length for t in mrnas]
        pairs = []
        for i in sorted(order.tolist()):
            if not mrnas:
                break
            at = bisect.bisect_left(lengths, lnc[i].spliced_length)
            near = min(
                (j for j in (at - 1, at) if 0 <= j < len(mrnas)),
                key=lambda j: abs(lengths[j] - lnc[i].spliced_length),
            )
            pairs += [(lnc[i], 1), (mrnas.pop(near), 0)]
            lengths.pop(near)
        out[name] = [
            Example(t.id, t.chrom, t.strand, t.start, t.end, label, transcript_tokens(genome, t))
            for t, label in pairs
        ]
    return out
