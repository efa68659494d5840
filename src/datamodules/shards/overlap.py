"""Which bases of one species a pretraining run reads, and how much of an annotation benchmark's
blocks they cover: the transductive overlap between pretraining and a downstream test split.

Computed from the shard index, the first epoch's plan (`composition.first_steps`) and the coordinates
each window records in its JSON member. Whole stored windows are counted, an upper bound when
the run trains on shorter crops of them (a sequence-length curriculum).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable

import numpy as np

from datamodules.annotation.regions import SPLITS, BlockSplit
from datamodules.shards.composition import first_steps
from datamodules.shards.dataset import read_shard
from datamodules.shards.index import ShardIndex

Interval = tuple[str, int, int]  # contig, start, end (0-based, end exclusive)


def windows_read(index: ShardIndex, batch_size: int, steps: int, seed: int, interleave: int,
                 species: str) -> tuple[list[Interval], list[Interval]]:
    """(windows of `species` read in the first `steps` steps, all its training windows)."""
    shards = index.shards("train")
    if species not in {shard.species for shard in shards}:
        raise ValueError(f"species {species!r} has no training shards; the corpus has {index.species}")
    wanted: dict[int, set[int]] = {}
    for _, ref in first_steps(index, batch_size, steps, seed, interleave):
        if shards[ref.shard].species == species:
            wanted.setdefault(ref.shard, set()).add(ref.local)
    read: list[Interval] = []
    every: list[Interval] = []
    for i, shard in enumerate(shards):
        if shard.species != species:
            continue
        for local, sample in enumerate(read_shard(shard.url)):
            meta = json.loads(sample["json"])
            interval = (str(meta["contig"]), int(meta["start"]), int(meta["end"]))
            every.append(interval)
            if local in wanted.get(i, ()):
                read.append(interval)
    return read, every


def merge(intervals: Iterable[Interval]) -> dict[str, list[tuple[int, int]]]:
    """Per contig, the union of the intervals as sorted, disjoint (start, end) pairs."""
    by_contig: dict[str, list[tuple[int, int]]] = {}
    for contig, start, end in sorted(intervals):
        spans = by_contig.setdefault(contig, [])
        if spans and start <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(spans[-1][1], end))
        else:
            spans.append((start, end))
    return by_contig


def bases_by_split(intervals: Iterable[Interval], split: BlockSplit) -> Counter[str]:
    """Bases of the intervals' union in the train, val and test blocks of `split`."""
    counts: Counter[str] = Counter()
    size = split.block_size
    for spans in merge(intervals).values():
        for start, end in spans:
            cuts = np.arange((start // size + 1) * size, end, size, dtype=np.int64)
            starts = np.concatenate([[start], cuts])
            ends = np.concatenate([cuts, [end]])
            for name_id, length in zip(split.split_ids(starts, ends), ends - starts, strict=True):
                counts[SPLITS[int(name_id)]] += int(length)
    return counts


def render(species: str, steps: int, read: list[Interval], every: list[Interval], split: BlockSplit) -> str:
    """A Markdown summary: windows read, then bases read per split of the benchmark's blocks."""
    seen, total = bases_by_split(read, split), bases_by_split(every, split)
    lines = [f"{species}: {len(read):,} of its {len(every):,} training windows read in the first {steps:,} "
             f"steps (whole windows: an upper bound under a length curriculum)", "",
             f"| benchmark blocks ({split.block_size:,} bp; val slot {split.val_slot}, test slot "
             f"{split.test_slot} of {split.cycle}) | bases read | bases in training windows | share |",
             "|---|---|---|---|"]
    for name in SPLITS:
        share = seen[name] / total[name] if total[name] else 0.0
        lines.append(f"| {name} | {seen[name]:,} | {total[name]:,} | {share:.0%} |")
    return "\n".join(lines)
