"""Learning-rate schedules."""

from __future__ import annotations

import math

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR


def warmup_cosine(
    optimizer: Optimizer,
    total_steps: int,
    warmup_steps: int = 0,
    warmup_fraction: float | None = None,
    min_lr_ratio: float = 0.0,
) -> LambdaLR:
    """Linear warmup from 0 to each group's lr, then cosine decay to ``min_lr_ratio * lr``.

    ``warmup_fraction`` (of ``total_steps``), when given, overrides ``warmup_steps``.
    """
    if total_steps < 1:
        raise ValueError(f"warmup_cosine: total_steps must be >= 1, got {total_steps}")
    if warmup_fraction is not None:
        warmup_steps = int(round(warmup_fraction * total_steps))
    warmup_steps = max(0, min(warmup_steps, total_steps))

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        cosine = 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
        return min_lr_ratio + (1.0 - min_lr_ratio) * cosine

    return LambdaLR(optimizer, factor)
