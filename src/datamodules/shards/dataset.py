"""Streaming MLM batches from webdataset shards, split across DDP ranks and dataloader workers.

Every (rank, worker) pair is a "slot"; there are world_size * num_workers of them.

- `epoch` sampling (default): the shards are put in a seeded order that changes every epoch and
  read `shard_interleave` at a time: the windows of each group of that many shards are merged
  in proportion to the shards' sizes (each shard's windows in order, all shards of the group
  advancing together), so a batch mixes the group's species and regions instead of walking one
  shard of one genome after another (1: the shards one after the other). The groups' windows
  form one sequence which is cut into equal contiguous ranges, one per slot (a range may start
  or end inside a group). Slots never share a window; together they cover the epoch except the
  remainder of the division (fewer windows than slots, a different few every epoch). Every
  slot yields the same number of batches, so DDP ranks stay in step. `windows_per_epoch`, if
  set, shortens an epoch to the first windows of that sequence.
- `resampled` sampling: an endless stream per slot; each window first draws a species by its
  weight, then comes from that species' shards drawn with replacement. An epoch is
  `windows_per_epoch` windows.
- held-out splits: an evenly spaced, fixed subset of the split's windows, cut by slot, no
  augmentation, masks seeded by window: every evaluation sees the same batches.

Training windows pass a seeded shuffle buffer (stream.py), are cropped at a random offset to the
current length (shared memory: a callback may change it while workers run), reverse-complemented
with probability `rc_prob` and collated with the MLM collator of the FASTA datamodule. Crop, strand
and masks are drawn from seeds of the window's key, so no random state runs along the stream: a
slot resumed after k batches (`set_resume`) yields exactly the batches an uninterrupted one would.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
import webdataset as wds
from torch.utils.data import IterableDataset, get_worker_info

from datamodules.masking import MLMCollator
from datamodules.shards.index import ShardRef, open_url
from datamodules.shards.stream import Ref, shuffled
from plantbimoe.tokenizer import add_special_tokens, reverse_complement


def interleaved_range(counts: Sequence[int], order: Sequence[int], group: int, start: int, stop: int,
                      rng: np.random.Generator) -> Iterator[tuple[int, int]]:
    """(shard, window) at positions [start, stop) of the shards in `order`, taken `group` at a time,
    each group's windows merged in proportion to the shards' sizes: window i of a shard of n
    windows sits at (i + u) / n, u uniform per shard from `rng`, so every shard of a group is read
    in order and all of them advance together (group 1: the shards one after the other). Only the
    groups that overlap the range are built."""
    position = 0
    for g in range(0, len(order), group):
        members = np.asarray(order[g:g + group], dtype=np.int64)
        sizes = np.asarray([counts[m] for m in members], dtype=np.int64)
        offsets = rng.random(len(members))  # drawn for every group: the same draws whatever the range
        lo, hi = max(start, position), min(stop, position + int(sizes.sum()))
        if lo < hi:
            local = np.concatenate([np.arange(n, dtype=np.int64) for n in sizes])
            key = (local + np.repeat(offsets, sizes)) / np.repeat(sizes, sizes)
            merged = np.argsort(key, kind="stable")[lo - position:hi - position]
            yield from zip(np.repeat(members, sizes)[merged].tolist(), local[merged].tolist(), strict=True)
        position += int(sizes.sum())
        if position >= stop:
            return


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
                 shard_interleave: int = 1, resampled: bool = False, windows_per_epoch: int | None = None,
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
        if shard_interleave < 1:
            raise ValueError(f"shard_interleave must be >= 1 (shards read at a time), got {shard_interleave}")
        self.shuffle_buffer, self.shard_shuffle = shuffle_buffer, shard_shuffle
        self.shard_interleave = shard_interleave
        self.resampled, self.windows_per_epoch = resampled, windows_per_epoch
        if resampled and not windows_per_epoch:
            raise ValueError("resampled sampling needs windows_per_epoch")
        self.species_weights = species_weights
        self.max_windows = max_windows
        self.rank, self.world_size, self.num_workers = 0, 1, 0
        # [epoch, crop length, batches this rank already consumed this epoch] in shared memory:
        # seen by running dataloader workers
        self.state = torch.tensor([0, crop_length or window_length, 0], dtype=torch.int64).share_memory_()
        self.set_crop_length(crop_length or window_length)

    def set_epoch(self, epoch: int) -> None:
        self.state[0] = epoch

    def set_resume(self, batches: int) -> None:
        """Start the next pass after the first `batches` batches of this rank (0: from the start)."""
        self.state[2] = batches

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

    def _worker(self) -> tuple[int, int]:
        """(stream of this worker, workers of the rank). The loader polls workers round-robin from
        worker 0, so a pass resumed after k batches hands stream (id + k) % workers to worker id:
        the stream due next is polled first."""
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        return (worker + int(self.state[2])) % workers, workers

    def _slot(self) -> int:
        return self.rank * max(1, self.num_workers) + self._worker()[0]

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

    def stream_identity(self) -> dict[str, Any]:
        """What a saved stream position depends on (compared when a checkpoint is resumed)."""
        return {"slots": self.slots, "seed": self.seed, "shuffle_buffer": self.shuffle_buffer,
                "batch_size": self.batch_size, "windows": self.total, "resampled": self.resampled,
                "epoch_windows": self.epoch_windows, "windows_per_epoch": self.windows_per_epoch,
                "shard_shuffle": self.shard_shuffle, "shard_interleave": self.shard_interleave,
                "species_weights": self.species_weights}

    def _skipped_windows(self) -> int:
        """Windows this slot already delivered: batches go round-robin over the rank's workers."""
        worker, workers = self._worker()
        consumed = int(self.state[2])
        return max(0, (consumed - worker + workers - 1) // workers) * self.batch_size

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        slot, epoch = self._slot(), int(self.state[0])
        if not self.training:
            return self._batches(self._held_out(slot))
        plan = self._resampled(slot, epoch) if self.resampled else self.epoch_plan(slot, epoch)
        seed = int(np.random.SeedSequence([self.seed, epoch, slot, 2]).generate_state(1)[0])
        windows = shuffled(plan, self.slot_windows(slot), self.shuffle_buffer, seed,
                           self._skipped_windows(), self.shards, read_shard)
        return self._batches(windows)

    def epoch_plan(self, slot: int, epoch: int) -> Iterator[Ref]:
        """The window references of `slot` in `epoch`, in read order (before the shuffle buffer)."""
        order = np.arange(len(self.shards))
        if self.shard_shuffle:
            order = np.random.default_rng([self.seed, epoch]).permutation(len(self.shards))
        start, stop = slot_range(self.epoch_windows, slot, self.slots, drop_remainder=True)
        base = epoch * self.total
        rng = np.random.default_rng([self.seed, epoch, 0x494C56])
        pairs = interleaved_range(self.counts, order, self.shard_interleave, start, stop, rng)
        for position, (shard, local) in enumerate(pairs):
            yield Ref(position, base + int(self.first_id[shard]) + local, shard, local)

    def _resampled(self, slot: int, epoch: int) -> Iterator[Ref]:
        """Each window draws a species by weight; each species reads whole shards drawn by size."""
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
        rng = np.random.default_rng([self.seed, epoch, slot])
        current: dict[str, tuple[int, int]] = {}
        base = (epoch * self.slots + slot) << 32
        for i in range(self.slot_windows(slot)):
            name = names[int(rng.choice(len(names), p=p))]
            shard, local = current.get(name, (-1, 0))
            if shard < 0 or local >= self.counts[shard]:
                shards = by_species[name]
                q = np.array([self.counts[j] for j in shards], dtype=np.float64)
                shard, local = shards[int(rng.choice(len(shards), p=q / q.sum()))], 0
            current[name] = (shard, local + 1)
            yield Ref(i, base + i, shard, local)

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

    def _batches(self, windows: Iterator[tuple[int, dict]]) -> Iterator[dict[str, torch.Tensor]]:
        while True:
            chunk = list(itertools.islice(windows, self.batch_size))
            if not chunk:
                return
            length = int(self.state[1])  # read once per batch: rows of a batch share a length
            yield self.collator([self._sample(key, raw, length) for key, raw in chunk])

    def _sample(self, key: int, raw: dict, length: int) -> dict[str, Any]:
        tokens, softmask = decode_window(raw)
        if self.training:
            rng = np.random.default_rng([self.seed, 0x43524F50, key])  # crop and strand of this window
            offset = int(rng.integers(len(tokens) - length + 1)) if length < len(tokens) else 0
            tokens, softmask = tokens[offset:offset + length], softmask[offset:offset + length]
            if self.rc_prob > 0 and rng.random() < self.rc_prob:
                tokens, softmask = reverse_complement(tokens), softmask[::-1]
        else:
            tokens, softmask = tokens[:length], softmask[:length]
        if self.add_special:
            tokens, softmask = add_special_tokens(tokens), np.pad(softmask, 1)
        return {"input_ids": tokens, "softmask": softmask, "key": key}
