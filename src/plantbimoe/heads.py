"""Prediction head of the sequence tasks: pooling over real tokens, then dropout and a linear map."""

from __future__ import annotations

import torch
from torch import nn

from .pooling import (
    AttentionPool,
    PositionalPool,
    center_pool,
    center_window_pool,
    cls_pool,
    masked_mean_pool,
)

# mean: every real token; cls: the first token; center: the token at n // 2; center_window: mean
# of the `window` tokens around it; attention: a learned query over the real tokens, with a learned
# bias per offset from the centre (up to ATTENTION_MAX_OFFSET positions either side); positional:
# the `window` tokens around the centre, each projected to POSITIONAL_DIM features, concatenated
POOLINGS = ("mean", "cls", "center", "center_window", "attention", "positional")
WINDOWED = ("center_window", "positional")
ATTENTION_MAX_OFFSET = 1024
POSITIONAL_DIM = 8


def check_pooling(
    pooling: str, window: int | None = None, max_length: int | None = None, has_cls: bool = True
) -> None:
    """Refuse a pooling that cannot work, naming the option and the allowed values.

    `max_length` is the longest sequence the data yields (without special tokens), `has_cls`
    whether position 0 holds a [CLS] summary token.
    """
    if pooling not in POOLINGS:
        raise ValueError(f"task.pooling={pooling!r} is not a pooling; allowed: {', '.join(POOLINGS)}")
    if pooling in WINDOWED:
        if window is None or int(window) < 1:
            raise ValueError(
                f"task.pooling={pooling} needs task.pooling_window >= 1 (positions), got {window}"
            )
        if max_length is not None and int(window) > int(max_length):
            raise ValueError(
                f"task.pooling_window={window} is wider than the sequences (data.max_length="
                f"{max_length}); choose a window of at most {max_length} or task.pooling=mean"
            )
    if pooling == "cls" and not has_cls:
        raise ValueError(
            "task.pooling=cls needs a [CLS] token at position 0, and this backbone/data has none "
            "(data.add_special_tokens=false, or a backbone without a summary token such as cnn); "
            f"allowed here: {', '.join(p for p in POOLINGS if p != 'cls')}"
        )


class SequenceHead(nn.Module):
    """Pool the backbone's hidden states (see POOLINGS), then an optional hidden layer (GELU)
    and a linear layer to `out_features`."""

    def __init__(
        self,
        d_model: int,
        out_features: int,
        pooling: str = "mean",
        hidden_size: int | None = None,
        dropout: float = 0.1,
        window: int | None = None,
    ) -> None:
        super().__init__()
        check_pooling(pooling, window)
        self.pooling, self.window = pooling, window
        self.attention = self.positional = None
        if pooling == "attention":
            self.attention = AttentionPool(d_model, max_offset=ATTENTION_MAX_OFFSET)
        elif pooling == "positional":
            self.positional = PositionalPool(d_model, int(window), POSITIONAL_DIM)
            d_model = self.positional.out_features
        layers: list[nn.Module] = [nn.Dropout(dropout)]
        if hidden_size:
            layers += [nn.Linear(d_model, hidden_size), nn.GELU(), nn.Dropout(dropout)]
            d_model = hidden_size
        layers.append(nn.Linear(d_model, out_features))
        self.mlp = nn.Sequential(*layers)

    def pool(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(B, L, d) hidden states and (B, L) mask -> (B, d), (B, window * POSITIONAL_DIM) for
        positional; padding never contributes."""
        if self.attention is not None:
            return self.attention(hidden, attention_mask)
        if self.positional is not None:
            return self.positional(hidden, attention_mask)
        if self.pooling == "mean":
            return masked_mean_pool(hidden, attention_mask)
        if self.pooling == "cls":
            return cls_pool(hidden, attention_mask)
        if self.pooling == "center_window":
            return center_window_pool(hidden, attention_mask, int(self.window))
        return center_pool(hidden, attention_mask)

    @property
    def output_layer(self) -> nn.Linear:
        """The last linear layer, which `features` feed."""
        return self.mlp[-1]

    def features(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """What the output layer reads: the pooled states after the dropout and hidden layer."""
        return self.mlp[:-1](self.pool(hidden, attention_mask).float())

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.output_layer(self.features(hidden, attention_mask))
