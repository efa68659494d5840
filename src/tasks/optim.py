"""Optimizer parameter groups shared by every task module."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

NO_DECAY_NAME_PARTS = ("norm", "bias", "embedding", "A_log", ".D")


def _decays(name: str, param: torch.Tensor) -> bool:
    """Weight decay applies to matrices only: never to norms, biases, embeddings or SSM A/D."""
    if param.ndim < 2:
        return False
    return not any(part in name for part in NO_DECAY_NAME_PARTS)


def build_param_groups(
    named_params: Iterable[tuple[str, nn.Parameter]],
    weight_decay: float,
    lr: float | None = None,
) -> list[dict]:
    """Split parameters into a decayed and a non-decayed AdamW group (frozen ones skipped)."""
    decay, no_decay = [], []
    for name, param in named_params:
        if not param.requires_grad:
            continue
        (decay if _decays(name, param) else no_decay).append(param)
    extra = {} if lr is None else {"lr": lr}
    groups = [
        {"params": decay, "weight_decay": weight_decay, **extra},
        {"params": no_decay, "weight_decay": 0.0, **extra},
    ]
    return [g for g in groups if g["params"]]
