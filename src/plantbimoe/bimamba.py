"""Bidirectional Mamba: a forward mixer plus a mixer over the reversed sequence."""

from __future__ import annotations

import torch
from torch import nn

from .config import PlantBiMoEConfig
from .mamba import Mamba


class BiMamba(nn.Module):
    """``mamba_fwd`` over the sequence and ``mamba_rev`` over the reversed one (reversed back),
    combined by "add" or "ew_multiply".

    With ``weight_tie`` the two directions share the ``in_proj`` and ``out_proj`` modules (the
    same Parameter objects); conv1d, x_proj, dt_proj, A_log and D stay per direction. A per-token
    linear map commutes with reversal, so tied projections run once: in_proj on the input (its
    output is reversed for mamba_rev) and, with "add", out_proj on the sum of both directions.
    This is the original computation, up to float rounding, at about half the projection cost.

    Padding: the mixers make masked positions transparent (zero conv input, dt = 0, so the state
    passes through unchanged), so a plain flip serves the reverse direction: after it, right
    padding leads the sequence, yet the real tokens see exactly what they would see alone. Real
    positions of a right- or left-padded batch thus equal each sequence run alone, in both
    directions, without a per-row gather.
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
        """hidden (b, L, d) -> (b, L, d); attention_mask (b, L) bool, True = real token."""
        fwd, rev = self.mamba_fwd, self.mamba_rev
        if rev is None:
            return fwd(hidden, attention_mask)
        mask_rev = None if attention_mask is None else attention_mask.flip(1)
        if rev.in_proj is fwd.in_proj and rev.out_proj is fwd.out_proj:  # tied: project once
            xz = fwd.in_proj(hidden)
            y_fwd = fwd.mix(xz, attention_mask)
            y_rev = rev.mix(xz.flip(1), mask_rev).flip(1)
            if self.strategy == "add":
                out = fwd.out_proj(y_fwd + y_rev)
                return out if fwd.out_proj.bias is None else out + fwd.out_proj.bias  # bias counted twice
            out, out_rev = fwd.out_proj(y_fwd), fwd.out_proj(y_rev)
        else:
            out = fwd(hidden, attention_mask)
            out_rev = rev(hidden.flip(1), mask_rev).flip(1)
        return out + out_rev if self.strategy == "add" else out * out_rev
