"""Masked-language-model head and loss on top of the PlantBiMoE backbone."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .backbone import BackboneOutput, PlantBiMoEModel
from .config import PlantBiMoEConfig

IGNORE_INDEX = -100


@dataclass
class MaskedLMOutput:
    """Masked-LM result; see docs/CONTRACTS.md."""

    logits: torch.Tensor  # (b, L, padded vocab) float32
    loss: torch.Tensor | None  # mlm_loss + aux_loss; None without labels
    mlm_loss: torch.Tensor | None  # None without labels
    aux_loss: torch.Tensor  # MoE load-balance + z-loss (weighted)
    backbone: BackboneOutput


def masked_lm_loss(
    logits: torch.Tensor, labels: torch.Tensor, loss_weights: torch.Tensor | None = None
) -> torch.Tensor:
    """Weighted mean cross-entropy over positions with label != -100.

    ``loss_weights`` (same shape as labels, >= 0) weights each target; the mean divides by the
    summed weights of the targets. With no target (or zero total weight) the loss is exactly 0.0,
    still connected to the graph, never NaN. The caller's tensors are not modified.
    """
    logits = logits.reshape(-1, logits.shape[-1]).float()
    labels = labels.reshape(-1)
    ce = F.cross_entropy(logits, labels, ignore_index=IGNORE_INDEX, reduction="none")
    w = (labels != IGNORE_INDEX).to(ce.dtype)
    if loss_weights is not None:
        w = w * loss_weights.reshape(-1).to(ce.dtype)
    total = w.sum()
    return (ce * w).sum() / torch.where(total > 0, total, torch.ones_like(total))


class PlantBiMoEForMaskedLM(nn.Module):
    """Backbone + lm_head tied to the word embeddings."""

    def __init__(self, config: PlantBiMoEConfig, initialize: bool = True) -> None:
        super().__init__()
        self.config = config
        self.backbone = PlantBiMoEModel(config, initialize=initialize)
        self.lm_head = nn.Linear(config.d_model, config.padded_vocab_size, bias=False)
        self.lm_head.weight = self.backbone.embeddings.weight

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        loss_weights: torch.Tensor | None = None,
        output_hidden_states: bool = False,
    ) -> MaskedLMOutput:
        """input_ids/attention_mask/labels/loss_weights are (b, L); labels use -100 for no target."""
        out = self.backbone(input_ids, attention_mask, output_hidden_states=output_hidden_states)
        logits = self.lm_head(out.last_hidden_state).float()
        mlm = None if labels is None else masked_lm_loss(logits, labels, loss_weights)
        return MaskedLMOutput(
            logits=logits,
            loss=None if mlm is None else mlm + out.aux_loss,
            mlm_loss=mlm,
            aux_loss=out.aux_loss,
            backbone=out,
        )
