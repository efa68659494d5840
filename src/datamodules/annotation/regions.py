"""Positional train/validation/test split of a genome into blocks, and transcript-oriented windows.

Coordinates are 0-based. A site is a *boundary* b between bases b-1 and b on a strand; its window
holds `upstream` bases before the boundary and `downstream` after it, in transcript orientation
(reverse-complemented on the minus strand).
"""

from __future__ import annotations

import numpy as np

from plantbimoe.tokenizer import N_ID, encode, reverse_complement

SPLITS = ("train", "val", "test")


class BlockSplit:
    """Blocks of `block_size` bp; block i goes to test if i % cycle == test_slot, to validation if
    i % cycle == val_slot, else to train. An interval belongs to a split only when it lies inside one
    block, so intervals of different splits never overlap."""

    def __init__(
        self, block_size: int = 1_000_000, cycle: int = 10, val_slot: int = 4, test_slot: int = 9
    ) -> None:
        if block_size < 1 or not (0 <= val_slot < cycle and 0 <= test_slot < cycle) or val_slot == test_slot:
            raise ValueError(
                f"bad block split: block_size={block_size}, cycle={cycle}, "
                f"val_slot={val_slot}, test_slot={test_slot}"
            )
        self.block_size, self.cycle, self.val_slot, self.test_slot = block_size, cycle, val_slot, test_slot

    def split_ids(self, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
        """Per interval [start, end): 0 train, 1 val, 2 test, -1 crossing a block boundary."""
        starts, ends = np.asarray(starts, dtype=np.int64), np.asarray(ends, dtype=np.int64)
        block = starts // self.block_size
        slot = block % self.cycle
        ids = np.where(slot == self.test_slot, 2, np.where(slot == self.val_slot, 1, 0))
        return np.where((ends - 1) // self.block_size == block, ids, -1)

    def split_of(self, start: int, end: int) -> str | None:
        """The split of one interval, or None when it crosses a block boundary."""
        index = int(self.split_ids(np.array([start]), np.array([end]))[0])
        return None if index < 0 else SPLITS[index]


def window_spans(
    boundaries: np.ndarray, strand: str, upstream: int, downstream: int
) -> tuple[np.ndarray, np.ndarray]:
    """Genome intervals [start, end) of the windows around `boundaries` on `strand`."""
    boundaries = np.asarray(boundaries, dtype=np.int64)
    if strand == "+":
        return boundaries - upstream, boundaries + downstream
    return boundaries - downstream, boundaries + upstream


class Genome:
    """Uppercase token ids per chromosome, with transcript-oriented window extraction."""

    def __init__(self, sequences: dict[str, bytes]) -> None:
        self.ids = {name: encode(seq) for name, seq in sequences.items()}
        self.n_positions = {name: np.flatnonzero(ids == N_ID) for name, ids in self.ids.items()}

    def window_ok(self, chrom: str, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
        """Windows inside the chromosome and free of N."""
        n_positions = self.n_positions[chrom]
        inside = (starts >= 0) & (ends <= len(self.ids[chrom]))
        return inside & (np.searchsorted(n_positions, ends) == np.searchsorted(n_positions, starts))

    def motif_at(self, chrom: str, starts: np.ndarray, motif: str) -> np.ndarray:
        """Whether the genome (plus strand) reads `motif` at each 0-based start."""
        ids = self.ids[chrom]
        starts = np.asarray(starts, dtype=np.int64)
        ok = (starts >= 0) & (starts + len(motif) <= len(ids))
        for offset, token in enumerate(encode(motif)):
            ok &= ids[np.clip(starts + offset, 0, len(ids) - 1)] == token
        return ok

    def oriented(self, chrom: str, start: int, end: int, strand: str) -> np.ndarray:
        """Token ids of [start, end) read on `strand`."""
        piece = self.ids[chrom][start:end]
        return piece.copy() if strand == "+" else reverse_complement(piece)
