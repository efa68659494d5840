"""Sequence pooling of hidden states (b, L, d) -> (b, d), honouring right padding."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def masked_mean_pool(
    hidden: torch.Tensor,
    attention_mask: torch.Tensor | None = None,
    input_ids: torch.Tensor | None = None,
    exclude_token_ids: Sequence[int] = (),
) -> torch.Tensor:
    """Mean over real positions; optionally also leaving out tokens such as [CLS]/[SEP] (ids 0, 1).

    A row with no position left pools to zeros. Accumulates in float32, returns hidden's dtype.
    """
    b, length = hidden.shape[:2]
    keep = torch.ones(b, length, dtype=torch.bool, device=hidden.device)
    if attention_mask is not None:
        keep = keep & attention_mask.to(torch.bool)
    if exclude_token_ids:
        if input_ids is None:
            raise ValueError("masked_mean_pool: exclude_token_ids needs input_ids")
        excluded = torch.tensor(list(exclude_token_ids), device=input_ids.device)
        keep = keep & ~torch.isin(input_ids, excluded)
    w = keep.to(torch.float32)[..., None]
    total = (hidden.float() * w).sum(1) / w.sum(1).clamp(min=1.0)
    return total.to(hidden.dtype)


def cls_pool(hidden: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Hidden state of the first position ([CLS] when special tokens were added); the mask is
    accepted for a signature shared with the other poolings (right padding keeps position 0 real)."""
    return hidden[:, 0]


def center_pool(hidden: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Hidden state at position n // 2 of each row, n = its real length (right padding)."""
    b, length = hidden.shape[:2]
    if attention_mask is None:
        n = torch.full((b,), length, device=hidden.device, dtype=torch.long)
    else:
        n = attention_mask.to(torch.long).sum(1)
    idx = (n // 2).clamp(max=length - 1)
    return hidden[torch.arange(b, device=hidden.device), idx]
