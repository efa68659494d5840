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


def fully_shard_blocks(roots: list[nn.Module], mesh: DeviceMesh, reshard_after_forward: bool = True) -> None:
    """FSDP2: shard every PlantBiMoE block inside ``roots`` as its own unit, then each root (the
    rest: embeddings, final norm, heads).

    ``mesh`` is a 1-d mesh over the data-parallel ranks (a 2-d one gives hybrid sharding:
    replicated along the first dimension, sharded along the second). ``reshard_after_forward``
    applies to the blocks; the roots keep their parameters gathered from forward to backward (they
    are small, and the backward starts with them). Modules already sharded are left as they are,
    so calling it again (fit, then test) is a no-op.
    """
    try:
        from torch.distributed.fsdp import FSDPModule, fully_shard
    except ImportError:  # torch < 2.6
        from torch.distributed._composable.fsdp import FSDPModule, fully_shard

    units = tuple(block_wrap_policy())  # the same units as FSDP1's auto-wrap policy
    blocks = [m for root in roots for m in root.modules() if isinstance(m, units)]
    for module in (*blocks, *roots):
        if not isinstance(module, FSDPModule):  # idempotent: Lightning calls configure_model again for test
            fully_shard(module, mesh=mesh, reshard_after_forward=reshard_after_forward and module in blocks)
