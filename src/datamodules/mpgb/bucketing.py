"""Length-bucketed batches for variable-length sequence sets (lncRNA runs 101-6,000 bp).

Training: shuffle, cut into pools of ``pool_batches`` batches, sort each pool by length, batch,
shuffle the batches. Evaluation: sort everything by length. With ``max_tokens`` a batch is closed
once ``len(batch) * longest`` would exceed it, so long sequences come in smaller batches.
Batches are split across data-parallel ranks without duplicates.

The sampler is resumable: `state_dict` holds the epoch, the batches of it delivered so far
(`position`, advanced by the consumer: datamodules.mpgb.loader) and the seed; after
`load_state_dict` the next pass of that epoch continues with the batch that comes next.
With `rc_prob` > 0 each index comes with a reverse-complement flag drawn from (seed, epoch,
batch), and with `crop_draws` with a uniform draw in [0, 1) that places its random training crop
(datamodules.mpgb.dataset), so augmentation replays exactly too.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
from torch.utils.data import Sampler

from datamodules.resume import same_stream

Batch = list[int] | list[tuple[int, bool]] | list[tuple[int, bool, float]]


class BucketBatchSampler(Sampler[Batch]):
    """Batches of indices of similar length; call `set_epoch` for a new training order.

    With `rc_prob` > 0 the batches hold (index, reverse-complement) pairs; with `crop_draws`
    (index, reverse-complement, crop position in [0, 1)) triples. `lengths` are the lengths
    the items will have (after any crop).
    """

    def __init__(
        self,
        lengths: np.ndarray,
        batch_size: int,
        shuffle: bool,
        seed: int = 0,
        pool_batches: int = 50,
        max_tokens: int | None = None,
        num_replicas: int = 1,
        rank: int = 0,
        rc_prob: float = 0.0,
        crop_draws: bool = False,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not 0.0 <= rc_prob <= 1.0:
            raise ValueError(f"rc_prob must lie in [0, 1], got {rc_prob}")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} outside 0..{num_replicas - 1}")
        self.lengths = np.asarray(lengths, dtype=np.int64)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.pool_batches = pool_batches
        self.max_tokens = max_tokens
        self.num_replicas = num_replicas
        self.rank = rank
        self.rc_prob = rc_prob
        self.crop_draws = crop_draws
        self.epoch, self.position = 0, 0
        self._resume: tuple[int, int] | None = None
        self._cache: tuple[int, list[list[int]]] | None = None

    def set_epoch(self, epoch: int) -> None:
        """Use a new shuffling order (training only)."""
        self.epoch = epoch

    def _batches(self) -> list[list[int]]:
        if not self.shuffle:
            order = np.argsort(self.lengths, kind="stable")
            return self._cut(order)
        rng = np.random.default_rng((self.seed, self.epoch))
        order = rng.permutation(len(self.lengths))
        pool = self.batch_size * self.pool_batches
        batches: list[list[int]] = []
        for start in range(0, len(order), pool):
            chunk = order[start : start + pool]
            batches += self._cut(chunk[np.argsort(self.lengths[chunk], kind="stable")])
        return [batches[i] for i in rng.permutation(len(batches))]

    def _cut(self, order: np.ndarray) -> list[list[int]]:
        batches, current, longest = [], [], 0
        for index in order.tolist():
            longer = max(longest, int(self.lengths[index]))
            full = len(current) >= self.batch_size
            over = self.max_tokens is not None and current and longer * (len(current) + 1) > self.max_tokens
            if full or over:
                batches.append(current)
                current, longer = [], int(self.lengths[index])
            current.append(index)
            longest = longer
        if current:
            batches.append(current)
        return batches

    def _mine(self) -> list[list[int]]:
        if self._cache is not None and self._cache[0] == self.epoch:
            return self._cache[1]
        batches = self._batches()
        if self.num_replicas > 1:
            if self.shuffle:  # every rank must run the same number of training steps
                batches = batches[: len(batches) - len(batches) % self.num_replicas]
            batches = batches[self.rank :: self.num_replicas]
        self._cache = (self.epoch, batches)
        return batches

    def __iter__(self) -> Iterator[Batch]:
        resume, self._resume = self._resume, None
        start = resume[1] if resume is not None and resume[0] == self.epoch else 0
        return self._from(start)

    def _from(self, start: int) -> Iterator[Batch]:
        batches = self._mine()
        self.position = start
        for position in range(start, len(batches)):
            yield self._augmented(batches[position], position)

    def _augmented(self, batch: list[int], position: int) -> Batch:
        """`batch` with each index's strand flag and, with `crop_draws`, its crop position."""
        if self.rc_prob <= 0.0 and not self.crop_draws:
            return batch
        global_position = self.rank + position * self.num_replicas
        rng = np.random.default_rng((self.seed, self.epoch, global_position))
        flips = [False] * len(batch)
        if self.rc_prob > 0.0:  # drawn first, so crops leave the strands of a seed as they were
            flips = (rng.random(len(batch)) < self.rc_prob).tolist()
        if not self.crop_draws:
            return list(zip(batch, flips, strict=True))
        return list(zip(batch, flips, rng.random(len(batch)).tolist(), strict=True))

    def __len__(self) -> int:
        return len(self._mine())

    def identity(self) -> dict[str, Any]:
        """What must match for a saved position to mean the same batches."""
        return {"seed": self.seed, "samples": len(self.lengths), "num_replicas": self.num_replicas,
                "batch_size": self.batch_size, "max_tokens": self.max_tokens, "rc_prob": self.rc_prob,
                **({"crop_draws": True} if self.crop_draws else {})}  # states saved before it: False

    def state_dict(self) -> dict[str, Any]:
        """Epoch, batches of it delivered (`position`), and the sampler's identity (seed, ...)."""
        return {"epoch": self.epoch, "position": self.position, **self.identity()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue epoch `state["epoch"]` after its first `position` batches on the next pass;
        a state of another seed, dataset size or batching restarts that epoch, with a warning."""
        if not same_stream(state, self.identity(), "batch order"):
            return
        self.epoch = int(state["epoch"])
        self._resume = (self.epoch, int(state["position"]))
