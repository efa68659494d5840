"""Sharding helpers: which modules FSDP wraps (and checkpoints) as one unit."""

from __future__ import annotations

from torch import nn

from .backbone import PlantBiMoEBlock


def block_wrap_policy() -> set[type[nn.Module]]:
    """Wrap each PlantBiMoE block (BiMamba + FFN) as one FSDP unit / activation-checkpoint unit."""
    return {PlantBiMoEBlock}
