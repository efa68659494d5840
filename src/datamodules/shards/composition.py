"""What a training run reads: the species mix of each span of steps of the first epoch's stream.

Computed from the shard index and the epoch plan alone (no window is read), for one data slot
(a single process without dataloader workers), before the shuffle buffer (which only reorders
windows within `shuffle_buffer` of each other).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from datamodules.shards.dataset import ShardWindowDataset
from datamodules.shards.index import ShardIndex
from datamodules.shards.stream import Ref


def first_steps(index: ShardIndex, batch_size: int, steps: int, seed: int, interleave: int,
                shard_shuffle: bool = True) -> Iterator[tuple[int, Ref]]:
    """(step, window reference) of every training window of the first `steps` steps (batch_size
    windows a step), the shards of the training split read `interleave` at a time; ``ref.shard``
    indexes ``index.shards("train")``."""
    if min(batch_size, steps) < 1:
        raise ValueError(f"batch size and steps must be positive; got {batch_size}, {steps}")
    dataset = ShardWindowDataset(index.shards("train"), index.window_length, batch_size, collator=None,
                                 seed=seed, shard_shuffle=shard_shuffle, shard_interleave=interleave)
    for ref in dataset.epoch_plan(slot=0, epoch=0):
        step = ref.position // batch_size
        if step >= steps:
            return
        yield step, ref


def species_per_span(index: ShardIndex, batch_size: int, steps: int, seed: int, interleave: int,
                     span: int, shard_shuffle: bool = True) -> list[dict[str, int]]:
    """Training windows per species in each `span` steps of the first `steps`."""
    if min(batch_size, steps, span) < 1:
        raise ValueError(f"batch size, steps and span must be positive; got {batch_size}, {steps}, {span}")
    shards = index.shards("train")
    spans: list[Counter[str]] = [Counter() for _ in range(-(-steps // span))]
    for step, ref in first_steps(index, batch_size, steps, seed, interleave, shard_shuffle):
        spans[step // span][shards[ref.shard].species] += 1
    return [dict(counts) for counts in spans]


def render(spans: list[dict[str, int]], span: int) -> str:
    """A Markdown table: one row per span, the share of each species."""
    species = sorted({name for counts in spans for name in counts})
    lines = ["| steps | " + " | ".join(species) + " |", "|---|" + "---|" * len(species)]
    for i, counts in enumerate(spans):
        total = sum(counts.values()) or 1
        cells = [f"{counts.get(name, 0) / total:.0%}" for name in species]
        lines.append(f"| {i * span}-{(i + 1) * span - 1} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
