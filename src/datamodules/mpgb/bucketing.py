"""Length-bucketed batches for variable-length sequence sets (lncRNA runs 101-6,000 bp).

Training: shuffle, cut into pools of ``pool_batches`` batches, sort each pool by length, batch,
shuffle the batches. Evaluation: sort everything by length. With ``max_tokens`` a batch is closed
once ``len(batch) * longest`` would exceed it, so long sequences come in smaller batches.
Batches are split across data-parallel ranks without duplicates.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from torch.utils.data import Sampler


class BucketBatchSampler(Sampler[list[int]]):
    """Batches of indices of similar length; call `set_epoch` for a new training order."""

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
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
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
        self.epoch = 0
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

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self._mine())

    def __len__(self) -> int:
        return len(self._mine())
