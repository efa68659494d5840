"""A floor trained by the same machinery as our model: a small one-hot CNN as a sequence-task backbone.

``backbone=cnn`` puts it under `tasks.sequence.SequenceTask` (same data, head, pooling, loss,
metrics, checkpoints and results.json), so the only difference from a PlantBiMoE run is the
backbone: a one-hot A/C/G/T input, one convolution to `d_model` channels, then residual blocks
of dilated convolutions (dilation doubling per block).

    python train.py experiment=finetune_arabidopsis backbone=cnn task.run_label=cnn
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from plantbimoe.tokenizer import A_ID, T_ID


@dataclass(frozen=True)
class CNNConfig:
    """What the task module reads from a backbone's ``config``."""

    d_model: int


@dataclass
class CNNOutput:
    """Hidden states (B, L, d); no MoE router, so no auxiliary loss."""

    last_hidden_state: torch.Tensor
    aux_loss: None = None


class ResidualConv(nn.Module):
    """x + dropout(GELU(conv(norm(x)))): a 'same'-padded dilated convolution over channels-first x."""

    def __init__(self, channels: int, kernel_size: int, dilation: int, dropout: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(channels)
        padding = dilation * (kernel_size - 1) // 2
        self.conv = nn.Conv1d(channels, channels, kernel_size, dilation=dilation, padding=padding)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return (x + self.dropout(F.gelu(self.conv(self._norm(x, mask))))) * mask

    def _norm(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Layer norm over the channels of each position (statistics never mix in padding)."""
        return self.norm(x.transpose(1, 2)).transpose(1, 2) * mask


class CNNBackbone(nn.Module):
    """One-hot CNN with the PlantBiMoEModel interface: ``forward(input_ids, attention_mask)`` gives
    an output with ``last_hidden_state`` (B, L, d_model) and ``aux_loss`` None.

    Special tokens, N and padding are all-zero inputs, and padded positions are zeroed after every
    layer, so a real position sees exactly what zero padding at the sequence end would give: the
    outputs at real positions do not depend on how much right padding a batch has. There is no
    summary token, so ``cls`` pooling is refused (`has_cls_token`). Receptive field:
    1 + (kernel_size - 1) * (1 + 2 + ... + 2^(n_layer - 1)) positions.
    """

    has_cls_token = False

    def __init__(
        self, d_model: int = 128, n_layer: int = 4, kernel_size: int = 9, dropout: float = 0.1
    ) -> None:
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError(f"backbone.kernel_size must be odd (a centred convolution), got {kernel_size}")
        if n_layer < 1:
            raise ValueError(f"backbone.n_layer must be >= 1, got {n_layer}")
        self.config = CNNConfig(d_model)
        self.stem = nn.Conv1d(4, d_model, kernel_size, padding=(kernel_size - 1) // 2)
        self.blocks = nn.ModuleList(
            ResidualConv(d_model, kernel_size, 2**i, dropout) for i in range(n_layer - 1)
        )
        self.init_args = {
            "_target_": f"{type(self).__module__}.{type(self).__name__}",
            "d_model": d_model,
            "n_layer": n_layer,
            "kernel_size": kernel_size,
            "dropout": dropout,
        }

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> CNNOutput:
        is_base = (input_ids >= A_ID) & (input_ids <= T_ID)
        if attention_mask is not None:
            is_base = is_base & attention_mask.to(torch.bool)
        one_hot = F.one_hot((input_ids - A_ID).clamp(0, 3), 4).to(torch.float32) * is_base[..., None]
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        mask = attention_mask.to(torch.float32)[:, None, :]
        x = F.gelu(self.stem(one_hot.transpose(1, 2))) * mask
        for block in self.blocks:
            x = block(x, mask)
        return CNNOutput(x.transpose(1, 2))
