"""Sharding helpers: which modules FSDP wraps (and checkpoints) as one unit, and FSDP2 sharding."""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import nn

from .backbone import PlantBiMoEBlock

if TYPE_CHECKING:
    from torch.distributed.device_mesh import DeviceMesh


def block_wrap_policy() -> set[type[nn.Module]]:
    """Wrap each PlantBiMoE block (BiMamba + FFN) as one FSDP unit / activation-checkpoint unit."""
    return {PlantBiMoEBlock}


def fully_shard_blocks(roots: list[nn.Module], mesh: DeviceMesh, reshard_after_forward: bool = True) -> int:
    """FSDP2: shard every PlantBiMoE block inside ``roots`` as its own unit, then each root (the
    rest: embeddings, final norm, heads). Returns the number of blocks sharded.

    ``mesh`` is a 1-d mesh over the data-parallel ranks (a 2-d one gives hybrid sharding:
    replicated along the first dimension, sharded along the second).
    """
    try:
        from torch.distributed.fsdp import fully_shard
    except ImportError:  # torch < 2.6
        from torch.distributed._composable.fsdp import fully_shard

    blocks = [m for root in roots for m in root.modules() if isinstance(m, PlantBiMoEBlock)]
    for block in blocks:
        fully_shard(block, mesh=mesh, reshard_after_forward=reshard_after_forward)
    for root in roots:
        fully_shard(root, mesh=mesh, reshard_after_forward=reshard_after_forward)
    return len(blocks)
