"""PlantBiMoE backbone: embeddings, n_layer (BiMamba + FFN) blocks, final RMSNorm."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from .bimamba import BiMamba
from .config import PlantBiMoEConfig
from .ffn import SwiGLU
from .init import init_weights
from .moe import RouterOutput, SparseMoE


class RMSNorm(nn.Module):
    """x / sqrt(mean(x^2) + eps) * weight, computed in float32, returned in the weight's dtype."""

    def __init__(self, d: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float()
        y = x * torch.rsqrt(x.square().mean(dim=-1, keepdim=True) + self.eps)
        return (y * self.weight.float()).to(self.weight.dtype)


def make_norm(config: PlantBiMoEConfig) -> nn.Module:
    """RMSNorm (released) or LayerNorm when ``rms_norm`` is false."""
    if config.rms_norm:
        return RMSNorm(config.d_model, config.norm_epsilon)
    return nn.LayerNorm(config.d_model, eps=config.norm_epsilon)


@dataclass
class BackboneOutput:
    """Backbone result; see docs/CONTRACTS.md."""

    last_hidden_state: torch.Tensor  # (b, L, d) after norm_f
    hidden_states: tuple[torch.Tensor, ...] | None  # residual stream after each layer (n_layer entries)
    routing: tuple[RouterOutput, ...]  # one per MoE layer, in layer order
    aux_loss: torch.Tensor  # load_balance_loss_weight * lb + router_z_loss_weight * z
    load_balance_loss: torch.Tensor  # summed over MoE layers
    z_loss: torch.Tensor  # summed over MoE layers


class PlantBiMoEBlock(nn.Module):
    """x = x + BiMamba(norm(x)); x = x + FFN(norm(x)), FFN = SparseMoE or SwiGLU."""

    def __init__(self, config: PlantBiMoEConfig, layer_idx: int) -> None:
        super().__init__()
        self.layer_idx = layer_idx
        self.is_moe = config.is_moe_layer(layer_idx)
        self.residual_in_fp32 = config.residual_in_fp32
        self.mixer_norm = make_norm(config)
        self.mixer = BiMamba.from_config(config)
        self.ffn_norm = make_norm(config)
        self.ffn: nn.Module = (
            SparseMoE(
                config.d_model,
                config.intermediate_size,
                config.num_experts,
                config.num_experts_per_tok,
                config.router_renormalize,
            )
            if self.is_moe
            else SwiGLU(config.d_model, config.intermediate_size)
        )

    def forward(
        self, x: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, RouterOutput | None]:
        """x: residual stream (b, L, d) -> (updated stream, routing or None)."""
        x = x + self.mixer(self.mixer_norm(x), attention_mask)
        h = self.ffn_norm(x)
        routing = None
        if self.is_moe:
            h, routing = self.ffn(h, attention_mask)
        else:
            h = self.ffn(h)
        x = x + h
        return (x.float() if self.residual_in_fp32 else x), routing


class PlantBiMoEModel(nn.Module):
    """Embeddings (padded vocabulary) -> blocks -> norm_f."""

    def __init__(self, config: PlantBiMoEConfig, initialize: bool = True) -> None:
        super().__init__()
        self.config = config
        self.gradient_checkpointing = config.gradient_checkpointing
        self.embeddings = nn.Embedding(config.padded_vocab_size, config.d_model)
        self.layers = nn.ModuleList(PlantBiMoEBlock(config, i) for i in range(config.n_layer))
        self.norm_f = make_norm(config)
        if initialize:
            init_weights(self, config)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        output_hidden_states: bool = False,
    ) -> BackboneOutput:
        """input_ids (b, L) long; attention_mask (b, L), True/1 = real token, right padding."""
        mask = None if attention_mask is None else attention_mask.to(torch.bool)
        x = self.embeddings(input_ids)
        if self.config.residual_in_fp32:
            x = x.float()
        hidden: list[torch.Tensor] = []
        routing: list[RouterOutput] = []
        use_ckpt = self.gradient_checkpointing and self.training and torch.is_grad_enabled()
        for layer in self.layers:
            if use_ckpt:
                x, r = checkpoint(layer, x, mask, use_reentrant=False)
            else:
                x, r = layer(x, mask)
            if r is not None:
                routing.append(r)
            if output_hidden_states:
                hidden.append(x)
        zero = x.new_zeros((), dtype=torch.float32)
        lb = sum((r.load_balance_loss for r in routing), zero)
        z = sum((r.z_loss for r in routing), zero)
        aux = self.config.load_balance_loss_weight * lb + self.config.router_z_loss_weight * z
        return BackboneOutput(
            last_hidden_state=self.norm_f(x),
            hidden_states=tuple(hidden) if output_hidden_states else None,
            routing=tuple(routing),
            aux_loss=aux,
            load_balance_loss=lb,
            z_loss=z,
        )
