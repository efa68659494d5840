"""A slot's training stream as positions: a plan of window references, a seeded shuffle order
over their positions, and a reader that fetches the windows in that order.

The shuffle buffer decides its output order from positions alone (never from window contents),
so the stream's state after k emitted windows is rebuilt by replaying k integer draws: the
positions still in the buffer plus every position not yet read. Resuming reads only those.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from datamodules.shards.index import ShardRef


@dataclass(frozen=True)
class Ref:
    """Input position `position` of a slot's stream: window `local` of shard `shard`, mask key `key`."""

    position: int
    key: int
    shard: int
    local: int


class ShuffleOrder:
    """Positions 0..n-1 through a shuffle buffer of `size`: the buffer is kept full from the input,
    and each output is a uniformly drawn buffered position. `size` <= 1 keeps the input order."""

    def __init__(self, n: int, size: int, seed: int) -> None:
        self.n, self.size = n, max(1, size)
        self.rng = random.Random(seed)
        self.buffer: list[int] = []
        self.next_input = 0

    def __iter__(self) -> ShuffleOrder:
        return self

    def __next__(self) -> int:
        while self.next_input < self.n and len(self.buffer) < self.size:
            self.buffer.append(self.next_input)
            self.next_input += 1
        if not self.buffer:
            raise StopIteration
        if self.size > 1:
            j = self.rng.randrange(len(self.buffer))
            self.buffer[j], self.buffer[-1] = self.buffer[-1], self.buffer[j]
            return self.buffer.pop()
        return self.buffer.pop()

    def skip(self, k: int) -> set[int]:
        """Advance past `k` outputs (integer work only); returns the positions still to come that
        were already taken from the input (the buffer)."""
        for _ in range(k):
            if next(self, None) is None:
                break
        return set(self.buffer)


def read_refs(refs: Iterable[Ref], shards: Sequence[ShardRef],
              read_shard: Any) -> Iterator[tuple[Ref, dict[str, Any]]]:
    """(ref, raw sample) for `refs`, whose windows ascend within each shard between re-reads.

    One open reader per shard; a reference behind a shard's reader reopens it.
    """
    cursors: dict[int, tuple[Iterator[dict[str, Any]], int]] = {}
    try:
        for ref in refs:
            reader, at = cursors.get(ref.shard, (None, -1))
            if reader is None or at > ref.local:
                if reader is not None:
                    reader.close()
                reader, at = read_shard(shards[ref.shard].url, ref.local), ref.local
            for _ in range(ref.local - at + 1):
                sample = next(reader, None)
                if sample is None:
                    raise ValueError(f"{shards[ref.shard].url}: the shard ends before window {ref.local}; "
                                     f"its index lists {shards[ref.shard].windows} windows (rebuild it)")
            at = ref.local + 1
            if at >= shards[ref.shard].windows:
                reader.close()
                cursors.pop(ref.shard, None)
            else:
                cursors[ref.shard] = (reader, at)
            yield ref, sample
    finally:
        for reader, _ in cursors.values():
            reader.close()


def shuffled(refs: Iterable[Ref], n: int, buffer: int, seed: int, skip: int, shards: Sequence[ShardRef],
             read_shard: Any) -> Iterator[tuple[int, dict[str, Any]]]:
    """(key, raw sample) of the n-position plan `refs` in shuffle order, after the first `skip`.

    Only windows still to be emitted are read; read-ahead windows wait (at most `buffer` of them).
    """
    order = ShuffleOrder(n, buffer, seed)
    pending = order.skip(skip)
    first_unread = order.next_input
    wanted = (r for r in refs if r.position >= first_unread or r.position in pending)
    items = read_refs(wanted, shards, read_shard)
    held: dict[int, tuple[int, dict[str, Any]]] = {}
    for position in order:
        while position not in held:
            ref, sample = next(items)
            held[ref.position] = (ref.key, sample)
        yield held.pop(position)
