"""Prediction head of the sequence tasks: pooling over real tokens, then dropout and a linear map."""

from __future__ import annotations

import torch
from torch import nn

from plantbimoe.pooling import center_pool, cls_pool, masked_mean_pool

POOLINGS = ("mean", "cls", "center")


class SequenceHead(nn.Module):
    """Pool the backbone's hidden states (mean over the attention mask, [CLS], or centre token),
    then an optional hidden layer (GELU) and a linear layer to `out_features`."""

    def __init__(
        self,
        d_model: int,
        out_features: int,
        pooling: str = "mean",
        hidden_size: int | None = None,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"unknown pooling {pooling!r}; expected one of {POOLINGS}")
        self.pooling = pooling
        layers: list[nn.Module] = [nn.Dropout(dropout)]
        if hidden_size:
            layers += [nn.Linear(d_model, hidden_size), nn.GELU(), nn.Dropout(dropout)]
            d_model = hidden_size
        layers.append(nn.Linear(d_model, out_features))
        self.mlp = nn.Sequential(*layers)

    def pool(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(B, L, d) hidden states and (B, L) mask -> (B, d); padding never contributes."""
        if self.pooling == "mean":
            return masked_mean_pool(hidden, attention_mask)
        if self.pooling == "cls":
            return cls_pool(hidden, attention_mask)
        return center_pool(hidden, attention_mask)

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.pool(hidden, attention_mask).float())
