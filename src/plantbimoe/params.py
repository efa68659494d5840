"""Parameter counting: total (tied parameters once) and active per token."""

from __future__ import annotations

from torch import nn

from .moe import SparseMoE


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(total, active): active leaves out, in every MoE layer, the (E - top_k) experts a token skips."""
    total = sum(p.numel() for p in model.parameters())  # parameters() yields shared tensors once
    inactive = 0
    for m in model.modules():
        if isinstance(m, SparseMoE):
            per_expert = sum(p.numel() for p in m.experts.parameters()) // m.num_experts
            inactive += (m.num_experts - m.top_k) * per_expert
    return total, total - inactive
