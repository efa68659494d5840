"""Sequence pooling of hidden states (b, L, d) -> (b, d), honouring right padding."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def real_lengths(hidden: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
    """(B, 1) count of real positions per row (right padding); every position without a mask."""
    if attention_mask is None:
        return torch.full((hidden.shape[0], 1), hidden.shape[1], device=hidden.device, dtype=torch.long)
    return attention_mask.to(torch.long).sum(1, keepdim=True)


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
    idx = (real_lengths(hidden, attention_mask)[:, 0] // 2).clamp(max=length - 1)
    return hidden[torch.arange(b, device=hidden.device), idx]


def center_window_pool(
    hidden: torch.Tensor, attention_mask: torch.Tensor | None = None, window: int = 1
) -> torch.Tensor:
    """Mean over the `window` real positions around each row's centre (n // 2, n = its real length).

    The window starts at n // 2 - window // 2 and is clipped to the real positions, so a row
    shorter than `window` averages all of it; window 1 equals `center_pool`. Padding never counts.
    """
    if window < 1:
        raise ValueError(f"center_window_pool: window must be >= 1, got {window}")
    length = hidden.shape[1]
    n = real_lengths(hidden, attention_mask)
    start = (n // 2 - window // 2).clamp(min=0)
    position = torch.arange(length, device=hidden.device)[None, :]
    keep = (position >= start) & (position < start + window) & (position < n)
    w = keep.to(torch.float32)[..., None]
    total = (hidden.float() * w).sum(1) / w.sum(1).clamp(min=1.0)
    return total.to(hidden.dtype)


class AttentionPool(nn.Module):
    """A learned query attends over the real positions, the heads' weighted means averaged.

    The score of position i is h_i . w / sqrt(d) (content) plus, with `max_offset`, a learned bias
    for its offset from the row's centre (i - n // 2, clipped to +-max_offset): the head can learn
    *where* the label lives (a splice site at the centre, a TSS 50 bp from the end) as well as
    *what* to look for. The bias starts at zero and the query small, so pooling starts close to
    the masked mean. Scores are computed in float32; padding gets zero weight.
    """

    def __init__(self, d_model: int, num_heads: int = 1, max_offset: int | None = None) -> None:
        super().__init__()
        self.score = nn.Linear(d_model, num_heads, bias=False)
        nn.init.normal_(self.score.weight, std=0.02)
        self.scale = d_model**-0.5
        self.max_offset = max_offset
        self.offset_bias = nn.Embedding(2 * max_offset + 1, num_heads) if max_offset else None
        if self.offset_bias is not None:
            nn.init.zeros_(self.offset_bias.weight)

    def weights(self, hidden: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, L, heads) attention weights; each head's weights sum to 1 over the real positions."""
        scores = self.score(hidden.float()) * self.scale
        if self.offset_bias is not None:
            n = real_lengths(hidden, attention_mask)
            offset = torch.arange(hidden.shape[1], device=hidden.device)[None, :] - n // 2
            offset = offset.clamp(-self.max_offset, self.max_offset) + self.max_offset
            scores = scores + self.offset_bias(offset).float()
        if attention_mask is not None:
            real = attention_mask.to(torch.bool)[..., None]
            scores = scores.masked_fill(~real, float("-inf"))
            # a row with no real position would give NaN: it pools to zeros instead
            scores = torch.where(real.any(1, keepdim=True), scores, torch.zeros_like(scores))
        weights = torch.softmax(scores, dim=1)
        if attention_mask is not None:
            weights = weights * attention_mask.to(weights.dtype)[..., None]
        return weights

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        weights = self.weights(hidden, attention_mask)  # (B, L, heads)
        pooled = torch.einsum("blh,bld->bd", weights, hidden.float()) / weights.shape[-1]
        return pooled.to(hidden.dtype)


class PositionalPool(nn.Module):
    """Position-specific features: each of the `window` positions around the row's centre is
    projected to `dim` features (one linear map shared by the positions) and the projections are
    concatenated, (B, L, d) -> (B, window * dim).

    A linear layer on top gives every position its own weights, as a one-hot positional model
    does, but on the backbone's context-aware states instead of bases. The window starts at
    n // 2 - window // 2 (n = the row's real length); positions outside the row (padding, or
    before its start) contribute zeros.
    """

    def __init__(self, d_model: int, window: int, dim: int) -> None:
        super().__init__()
        if window < 1 or dim < 1:
            raise ValueError(f"PositionalPool: window and dim must be >= 1, got {window} and {dim}")
        self.window, self.dim = window, dim
        self.project = nn.Linear(d_model, dim)

    @property
    def out_features(self) -> int:
        return self.window * self.dim

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        length = hidden.shape[1]
        n = real_lengths(hidden, attention_mask)
        index = n // 2 - self.window // 2 + torch.arange(self.window, device=hidden.device)[None, :]
        inside = (index >= 0) & (index < n)
        gathered = hidden.gather(1, index.clamp(0, length - 1)[..., None].expand(-1, -1, hidden.shape[-1]))
        projected = self.project(gathered.float()) * inside[..., None].to(torch.float32)
        return projected.flatten(1).to(hidden.dtype)
