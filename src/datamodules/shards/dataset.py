"""Streaming MLM batches from webdataset shards, split across DDP ranks and dataloader workers.

Every (rank, worker) pair is a "slot"; there are world_size * num_workers of them.

- `epoch` sampling (default): the shards are put in a seeded order that changes every epoch; the
  windows of that order form one sequence which is cut into equal contiguous ranges, one per
  slot (a range may start or end inside a shard). Slots never share a window; together they
  cover the epoch except the remainder of the division (fewer windows than slots, a different
  few every epoch). Every slot yields the same number of batches, so DDP ranks stay in step.
  `windows_per_epoch`, if set, shortens an epoch to the first windows of that order.
- `resampled` sampling: an endless stream per slot; each window first draws a species by its
  weight, then comes from that species' shards drawn with replacement. An epoch is
  `windows_per_epoch` windows.
- held-out splits: an evenly spaced, fixed subset of the split's windows, cut by slot, no
  augmentation, masks seeded by window: every evaluation sees the same batches.

Training windows pass a shuffle buffer, are cropped at a random offset to the current length
(shared memory: a callback may change it while workers run), reverse-complemented with
probability `rc_prob` and collated with the MLM collator of the FASTA datamodule.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import webdataset as wds
from torch.utils.data import IterableDataset, get_worker_info

from datamodules.masking import MLMCollator
from datamodules.shards.index import ShardRef, open_url
from plantbimoe.tokenizer import add_special_tokens, reverse_complement


@dataclass(frozen=True)
class Piece:
    """Windows skip .. skip + take - 1 of shard `shard` (index in the split's shard list)."""

    shard: int
    skip: int
    take: int


def cut_range(counts: Sequence[int], order: Sequence[int], start: int, stop: int) -> list[Piece]:
    """Pieces covering positions [start, stop) of the shards' windows concatenated in `order`."""
    pieces, position = [], 0
    for shard in order:
        n = counts[shard]
        lo, hi = max(start, position), min(stop, position + n)
        if lo < hi:
            pieces.append(Piece(int(shard), lo - position, hi - lo))
        position += n
        if position >= stop:
            break
    return pieces


def slot_range(total: int, slot: int, slots: int, drop_remainder: bool) -> tuple[int, int]:
    """[start, stop) of a slot's share of `total` items: equal shares, or the remainder spread."""
    share, rest = divmod(total, slots)
    if drop_remainder:
        return slot * share, (slot + 1) * share
    start = slot * share + min(slot, rest)
    return start, start + share + (slot < rest)


def read_shard(url: str, skip: int = 0, take: int | None = None) -> Iterator[dict[str, Any]]:
    """Samples skip .. skip + take - 1 of one shard as dicts of raw member bytes."""
    stream = open_url(url)
    try:
        files = wds.tariterators.tar_file_expander([{"url": url, "stream": stream}])
        samples = wds.tariterators.group_by_keys(files)
        yield from itertools.islice(samples, skip, None if take is None else skip + take)
    finally:
        stream.close()


def decode_window(sample: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """(token ids uint8, soft-mask bool) of a raw shard sample."""
    tokens = np.frombuffer(sample["tokens"], dtype=np.uint8)
    packed = np.frombuffer(sample["softmask"], dtype=np.uint8)
    return tokens, np.unpackbits(packed, count=len(tokens)).view(bool)


class ShardWindowDataset(IterableDataset):
    """Iterable of MLM batches (dicts of tensors) from the shards of one split; see module doc."""

    def __init__(self, shards: Sequence[ShardRef], window_length: int, batch_size: int,
                 collator: MLMCollator, training: bool = True, seed: int = 0, rc_prob: float = 0.3,
                 crop_length: int | None = None, shuffle_buffer: int = 1000, shard_shuffle: bool = True,
                 resampled: bool = False, windows_per_epoch: int | None = None,
                 species_weights: dict[str, float] | None = None, max_windows: int | None = None,
                 add_special: bool = True) -> None:
        if not shards:
            raise ValueError("no shard to read: the split is empty")
        self.shards, self.window_length = list(shards), window_length
        self.counts = [s.windows for s in self.shards]
        self.first_id = np.concatenate([[0], np.cumsum(self.counts)]).astype(np.int64)
        self.total = int(self.first_id[-1])
        self.epoch_windows = self.total if resampled or not windows_per_epoch else min(self.total,
                                                                                      windows_per_epoch)
        self.batch_size, self.collator, self.training = batch_size, collator, training
        self.seed, self.rc_prob, self.add_special = seed, rc_prob, add_special
        self.shuffle_buffer, self.shard_shuffle = shuffle_buffer, shard_shuffle
        self.resampled, self.windows_per_epoch = resampled, windows_per_epoch
        if resampled and not windows_per_epoch:
            raise ValueError("resampled sampling needs windows_per_epoch")
        self.species_weights = species_weights
        self.max_windows = max_windows
        self.rank, self.world_size, self.num_workers = 0, 1, 0
        # [epoch, crop length] in shared memory: seen by running dataloader workers
        self.state = torch.tensor([0, crop_length or window_length], dtype=torch.int64).share_memory_()
        self.set_crop_length(crop_length or window_length)

    def set_epoch(self, epoch: int) -> None:
        self.state[0] = epoch

    def set_crop_length(self, length: int) -> None:
        if not 1 <= length <= self.window_length:
            raise ValueError(f"crop length must be in [1, {self.window_length}] (the shards' window "
                             f"length); got {length}")
        self.state[1] = length

    def set_topology(self, rank: int, world_size: int, num_workers: int) -> None:
        self.rank, self.world_size, self.num_workers = rank, world_size, num_workers

    @property
    def slots(self) -> int:
        return self.world_size * max(1, self.num_workers)

    def _slot(self) -> int:
        info = get_worker_info()
        worker = info.id if info is not None else 0
        return self.rank * max(1, self.num_workers) + worker

    def slot_windows(self, slot: int) -> int:
        """Windows a slot yields per epoch."""
        if self.training:
            return (self.windows_per_epoch if self.resampled else self.epoch_windows) // self.slots
        start, stop = slot_range(len(self.held_out_ids()), slot, self.slots, drop_remainder=False)
        return stop - start

    def __len__(self) -> int:
        """Batches this rank yields per epoch."""
        workers = max(1, self.num_workers)
        return sum(-(-self.slot_windows(self.rank * workers + w) // self.batch_size) for w in range(workers))

    def held_out_ids(self) -> np.ndarray:
        """Window ids of a held-out split: all, or `max_windows` evenly spaced ones."""
        if self.max_windows is None or self.max_windows >= self.total:
            return np.arange(self.total)
        return np.unique(np.linspace(0, self.total - 1, self.max_windows).round().astype(np.int64))

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        slot, epoch = self._slot(), int(self.state[0])
        rng = np.random.default_rng([self.seed, epoch, slot])
        if not self.training:
            return self._batches(self._held_out(slot), rng)
        windows = self._resampled(slot, epoch, rng) if self.resampled else self._epoch(slot, epoch)
        if self.shuffle_buffer > 1:
            shuffle_rng = random.Random(int(rng.integers(2**62)))
            windows = wds.shuffle(self.shuffle_buffer, min(self.shuffle_buffer, 100),
                                  rng=shuffle_rng)(windows)
        return self._batches(windows, rng)

    def _epoch(self, slot: int, epoch: int) -> Iterator[tuple[int, dict]]:
        order = np.arange(len(self.shards))
        if self.shard_shuffle:
            order = np.random.default_rng([self.seed, epoch]).permutation(len(self.shards))
        start, stop = slot_range(self.epoch_windows, slot, self.slots, drop_remainder=True)
        for piece in cut_range(self.counts, order, start, stop):
            first = int(self.first_id[piece.shard]) + piece.skip
            for i, sample in enumerate(read_shard(self.shards[piece.shard].url, piece.skip, piece.take)):
                yield epoch * self.total + first + i, sample

    def _resampled(self, slot: int, epoch: int, rng: np.random.Generator) -> Iterator[tuple[int, dict]]:
        by_species: dict[str, list[int]] = {}
        for i, shard in enumerate(self.shards):
            by_species.setdefault(shard.species, []).append(i)
        names = sorted(by_species)
        weights = self.species_weights or {name: float(sum(self.counts[i] for i in by_species[name]))
                                           for name in names}
        p = np.array([weights.get(name, 0.0) for name in names], dtype=np.float64)
        if not p.sum() > 0:
            raise ValueError(f"species weights {weights} give no positive weight to {names}")
        p /= p.sum()
        streams: dict[str, Iterator[dict]] = {}

        def endless(name: str) -> Iterator[dict]:
            shards = by_species[name]
            q = np.array([self.counts[i] for i in shards], dtype=np.float64)
            while True:
                yield from read_shard(self.shards[shards[int(rng.choice(len(shards), p=q / q.sum()))]].url)

        base = (epoch * self.slots + slot) << 32
        for i in range(self.slot_windows(slot)):
            name = names[int(rng.choice(len(names), p=p))]
            if name not in streams:
                streams[name] = endless(name)
            yield base + i, next(streams[name])

    def _held_out(self, slot: int) -> Iterator[tuple[int, dict]]:
        ids = self.held_out_ids()
        start, stop = slot_range(len(ids), slot, self.slots, drop_remainder=False)
        mine = ids[start:stop]
        for shard in np.unique(np.searchsorted(self.first_id, mine, side="right") - 1):
            inside = (mine >= self.first_id[shard]) & (mine < self.first_id[shard + 1])
            local = mine[inside] - self.first_id[shard]
            wanted = set(local.tolist())
            first, span = int(local.min()), int(local.max() - local.min()) + 1
            for i, sample in enumerate(read_shard(self.shards[shard].url, first, span)):
                if first + i in wanted:
                    yield int(self.first_id[shard]) + first + i, sample

    def _batches(self, windows: Iterator[tuple[int, dict]], rng: np.random.Generator
                 ) -> Iterator[dict[str, torch.Tensor]]:
        while True:
            chunk = list(itertools.islice(windows, self.batch_size))
            if not chunk:
                return
            length = int(self.state[1])  # read once per batch: rows of a batch share a length
            yield self.collator([self._sample(key, raw, length, rng) for key, raw in chunk])

    def _sample(self, key: int, raw: dict, length: int, rng: np.random.Generator) -> dict[str, Any]:
        tokens, softmask = decode_window(raw)
        offset = 0
        if self.training and length < len(tokens):
            offset = int(rng.integers(len(tokens) - length + 1))
        tokens, softmask = tokens[offset:offset + length], softmask[offset:offset + length]
        if self.training and self.rc_prob > 0 and rng.random() < self.rc_prob:
            tokens, softmask = reverse_complement(tokens), softmask[::-1]
        if self.add_special:
            tokens, softmask = add_special_tokens(tokens), np.pad(softmask, 1)
        return {"input_ids": tokens, "softmask": softmask, "key": key}
