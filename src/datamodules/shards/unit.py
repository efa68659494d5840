"""One unit of build work: every window of one FASTA file of one species, into its shard series."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from datamodules.shards.splits import BLOCKS, SPLITS, HeldOutBlocks
from datamodules.shards.streaming import stream_windows
from datamodules.shards.writer import ShardSeries, encode_sample


@dataclass(frozen=True)
class BuildParams:
    """Parameters that determine the shards (recorded in the index)."""

    window_length: int = 32768
    overlap: int = 128
    max_n_fraction: float = 0.02
    shard_size: int = 256 * 1024 * 1024
    val_fraction: float = 0.025
    test_fraction: float = 0.025
    min_holdout_length: int = 1_000_000
    seed: int = 0

    def check(self) -> None:
        if self.window_length < 1 or not 0 <= self.overlap < self.window_length:
            raise ValueError(f"need window_length >= 1 and 0 <= overlap < window_length; got "
                             f"{self.window_length}, {self.overlap}")
        if not 0 <= self.max_n_fraction <= 1:
            raise ValueError(f"max_n_fraction must be in [0, 1], got {self.max_n_fraction}")
        if self.shard_size < 1:
            raise ValueError(f"shard_size must be positive, got {self.shard_size}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Unit:
    """Work item: `path` is file number `file_index` of `species`; `splits` maps its contigs (a
    contig mapped to BLOCKS is split by position through `blocks`)."""

    species: str
    accession: str | None
    file_index: int
    path: str
    lengths: Mapping[str, int]
    splits: Mapping[str, str]
    blocks: HeldOutBlocks | None = None

    @property
    def name(self) -> str:
        return f"{self.species}-{self.file_index:02d}"


def _empty_stats() -> dict[str, Any]:
    return {"windows": 0, "window_bases": 0, "contigs": 0, "contig_bases": 0, "dropped_n_windows": 0,
            "dropped_n_bases": 0, "base_counts": [0, 0, 0, 0, 0]}


def build_unit(unit: Unit, params: BuildParams, out_dir: Path, chunk_size: int,
               on_bases: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Write (or finish) the shards of one unit; returns its statistics and shard records."""
    length = params.window_length
    stats = {split: _empty_stats() for split in SPLITS}
    short = {"count": 0, "bases": 0}
    for contig, size in unit.lengths.items():
        if size < length:
            short["count"] += 1
            short["bases"] += size
        else:  # a contig split in blocks counts as a training contig
            split = "train" if unit.splits[contig] == BLOCKS else unit.splits[contig]
            stats[split]["contigs"] += 1
            stats[split]["contig_bases"] += size
    series = {split: ShardSeries(out_dir, split, unit.name, params.shard_size) for split in SPLITS}
    ordinal = dict.fromkeys(SPLITS, 0)
    base_counts = {split: np.zeros(5, dtype=np.int64) for split in SPLITS}
    max_n = params.max_n_fraction * length
    crossing = 0
    try:
        for window in stream_windows(unit.path, unit.lengths, length, params.overlap, chunk_size,
                                     on_bases=on_bases):
            split = unit.splits[window.contig]
            if split == BLOCKS:
                split = unit.blocks.split_of(window.start, window.end)
                if split is None:
                    crossing += 1
                    continue
            split_stats = stats[split]
            if window.n_count > max_n:
                split_stats["dropped_n_windows"] += 1
                split_stats["dropped_n_bases"] += length
                continue
            meta = {"species": unit.species, "accession": unit.accession, "contig": window.contig,
                    "start": window.start, "end": window.end}
            key = f"{unit.name.replace('.', '_')}-{split}-{ordinal[split]:010d}"  # no '.' in keys
            series[split].write(encode_sample(key, window.tokens, window.softmask, meta), length)
            ordinal[split] += 1
            split_stats["windows"] += 1
            split_stats["window_bases"] += length
            base_counts[split] += np.bincount(window.tokens, minlength=12)[7:12]
    except BaseException:
        for writer in series.values():
            writer.abort()
        raise
    shards = []
    for split, writer in series.items():
        stats[split]["base_counts"] = base_counts[split].tolist()
        shards += [{"split": split, "species": unit.species, **asdict(r)} for r in writer.close()]
    return {"unit": unit.name, "species": unit.species, "file": unit.path, "splits": stats,
            "short_contigs": short, "shards": shards, "block_crossing_windows": crossing}
