"""Bidirectional Mamba: a forward mixer plus a mixer over the reversed sequence."""

from __future__ import annotations

import torch
from torch import nn

from .config import PlantBiMoEConfig
from .mamba import Mamba


def reverse_index(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions (b, L) that reverse each right-padded row within its own length; pads stay put.

    Position t < n_b maps to n_b - 1 - t and t >= n_b to itself (n_b = real tokens of row b), so
    the map is its own inverse. The mask must be right-padded (a prefix of True per row).
    """
    length = attention_mask.shape[1]
    n = attention_mask.sum(dim=1, keepdim=True)
    t = torch.arange(length, device=attention_mask.device)
    return torch.where(t < n, n - 1 - t, t)


def reverse_sequences(x: torch.Tensor, index: torch.Tensor | None) -> torch.Tensor:
    """Reverse (b, L, d) along L, within each row's length when ``index`` (from `reverse_index`)."""
    if index is None:
        return x.flip(1)
    return x.gather(1, index[..., None].expand_as(x))


class BiMamba(nn.Module):
    """``mamba_fwd`` over the sequence and ``mamba_rev`` over the reversed one (reversed back),
    combined by "add" or "ew_multiply".

    With ``weight_tie`` the two directions share the ``in_proj`` and ``out_proj`` modules (the
    same Parameter objects); conv1d, x_proj, dt_proj, A_log and D stay per direction. With an
    attention mask, each right-padded row is reversed within its own length, so padding stays at
    the end in both directions and never flows into real tokens.
    """

    def __init__(
        self,
        d_model: int,
        bidirectional: bool = True,
        strategy: str = "add",
        weight_tie: bool = True,
        **mamba_kwargs: object,
    ) -> None:
        super().__init__()
        if strategy not in ("add", "ew_multiply"):
            raise ValueError(f"bidirectional strategy must be 'add' or 'ew_multiply', got {strategy!r}")
        self.strategy = strategy
        self.mamba_fwd = Mamba(d_model, **mamba_kwargs)
        self.mamba_rev = Mamba(d_model, **mamba_kwargs) if bidirectional else None
        if self.mamba_rev is not None and weight_tie:
            self.mamba_rev.in_proj = self.mamba_fwd.in_proj
            self.mamba_rev.out_proj = self.mamba_fwd.out_proj

    @classmethod
    def from_config(cls, config: PlantBiMoEConfig) -> BiMamba:
        s = config.ssm_cfg
        return cls(
            config.d_model,
            config.bidirectional,
            config.bidirectional_strategy,
            config.bidirectional_weight_tie,
            d_state=s.d_state,
            d_conv=s.d_conv,
            expand=s.expand,
            dt_rank=config.dt_rank,
            dt_min=s.dt_min,
            dt_max=s.dt_max,
            dt_init=s.dt_init,
            dt_scale=s.dt_scale,
            dt_init_floor=s.dt_init_floor,
            conv_bias=s.conv_bias,
            bias=s.bias,
            scan_backend=config.scan_backend,
        )

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """hidden (b, L, d) -> (b, L, d); attention_mask (b, L) bool, right padding."""
        out = self.mamba_fwd(hidden, attention_mask)
        if self.mamba_rev is None:
            return out
        index = None if attention_mask is None else reverse_index(attention_mask)
        out_rev = self.mamba_rev(reverse_sequences(hidden, index), attention_mask)
        out_rev = reverse_sequences(out_rev, index)
        return out + out_rev if self.strategy == "add" else out * out_rev
