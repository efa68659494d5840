"""What a training run reads: the species mix of each span of steps of the first epoch's stream.

Computed from the shard index and the epoch plan alone (no window is read), for one data slot
(a single process without dataloader workers), before the shuffle buffer (which only reorders
windows within `shuffle_buffer` of each other).
"""

from __future__ import annotations

from collections import Counter

from datamodules.shards.dataset import ShardWindowDataset
from datamodules.shards.index import ShardIndex


def species_per_span(index: ShardIndex, batch_size: int, steps: int, seed: int, interleave: int,
                     span: int, shard_shuffle: bool = True) -> list[dict[str, int]]:
    """Training windows per species in each `span` steps of the first `steps` (batch_size windows
    a step), with the shards of the training split read `interleave` at a time."""
    if min(batch_size, steps, span) < 1:
        raise ValueError(f"batch size, steps and span must be positive; got {batch_size}, {steps}, {span}")
    shards = index.shards("train")
    dataset = ShardWindowDataset(shards, index.window_length, batch_size, collator=None, seed=seed,
                                 shard_shuffle=shard_shuffle, shard_interleave=interleave)
    spans: list[Counter[str]] = [Counter() for _ in range(-(-steps // span))]
    for ref in dataset.epoch_plan(slot=0, epoch=0):
        step = ref.position // batch_size
        if step >= steps:
            break
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
