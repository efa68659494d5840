"""The epoch plan's shard interleaving (`interleaved_range`): one group is the shards one after
the other; larger groups merge their shards' windows in proportion to their sizes."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from datamodules.shards.dataset import ShardWindowDataset, interleaved_range
from datamodules.shards.index import ShardRef

COUNTS = [7, 30, 1, 12, 19]
ORDER = [3, 0, 4, 1, 2]


def plan(group: int, start: int = 0, stop: int = sum(COUNTS), seed: int = 5) -> list[tuple[int, int]]:
    return list(interleaved_range(COUNTS, ORDER, group, start, stop, np.random.default_rng(seed)))


def test_group_of_one_reads_the_shards_one_after_the_other() -> None:
    assert plan(1) == [(s, i) for s in ORDER for i in range(COUNTS[s])]


@pytest.mark.parametrize("group", [1, 2, 3, 5, 16])
def test_every_window_once_each_shard_in_order_and_any_range_a_slice(group: int) -> None:
    full = plan(group)
    assert sorted(full) == sorted((s, i) for s in range(len(COUNTS)) for i in range(COUNTS[s]))
    for shard in range(len(COUNTS)):
        assert [i for s, i in full if s == shard] == list(range(COUNTS[shard]))  # readers only go forward
    for start, stop in [(0, 1), (3, 40), (40, 69), (68, 69), (10, 10)]:
        assert plan(group, start, stop) == full[start:stop]


def test_a_group_mixes_its_shards_in_proportion_everywhere() -> None:
    full = plan(16)  # all five shards in one group
    total = sum(COUNTS)
    for m in (10, 23, 35, 50):
        seen = Counter(s for s, _ in full[:m])
        for shard, n in enumerate(COUNTS):
            assert abs(seen[shard] - m * n / total) <= 1.0, (m, shard, seen)


def test_groups_follow_the_shuffled_order() -> None:
    first_group = {s for s, _ in plan(2)[: COUNTS[3] + COUNTS[0]]}
    assert first_group == {3, 0}


def test_interleave_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="shard_interleave must be >= 1"):
        ShardWindowDataset([ShardRef("x.tar", 4, "sp")], 16, 2, collator=None, shard_interleave=0)
