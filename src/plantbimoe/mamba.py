"""Mamba-1 mixer (selective state-space layer) with mamba-ssm parameter names.

in_proj -> (x, z); x -> depthwise causal conv1d -> SiLU -> x_proj -> (dt, B, C); dt -> dt_proj;
y = selective_scan(x, dt, A=-exp(A_log), B, C, D, z) (the silu(z) gate is fused into the scan);
out_proj(y). Activations stay token-major (batch, length, channels) between the projections; the
conv+SiLU and the scan follow ``scan_backend`` (fused numba kernels on CPU, see ``conv``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .conv import causal_conv1d_silu
from .init import init_mamba_A_log_, init_mamba_dt_
from .scan import selective_scan


class Mamba(nn.Module):
    """One Mamba-1 mixer over (batch, length, d_model).

    With ``attention_mask`` (batch, length; True = real token) the conv input is zeroed at padded
    positions and their step size dt is set to 0, so the state passes through them unchanged:
    whatever a padded position holds never reaches any real position.
    """

    def __init__(
        self,
        d_model: int,
        d_state: int = 16,
        d_conv: int = 4,
        expand: int = 2,
        dt_rank: int | None = None,
        dt_min: float = 0.001,
        dt_max: float = 0.1,
        dt_init: str = "random",
        dt_scale: float = 1.0,
        dt_init_floor: float = 1e-4,
        conv_bias: bool = True,
        bias: bool = False,
        scan_backend: str = "auto",
    ) -> None:
        super().__init__()
        self.d_inner = expand * d_model
        self.d_state = d_state
        self.dt_rank = dt_rank if dt_rank is not None else -(-d_model // 16)
        self.scan_backend = scan_backend
        self.in_proj = nn.Linear(d_model, 2 * self.d_inner, bias=bias)
        self.conv1d = nn.Conv1d(
            self.d_inner, self.d_inner, d_conv, groups=self.d_inner, padding=d_conv - 1, bias=conv_bias
        )
        self.x_proj = nn.Linear(self.d_inner, self.dt_rank + 2 * d_state, bias=False)
        self.dt_proj = nn.Linear(self.dt_rank, self.d_inner, bias=True)
        self.A_log = nn.Parameter(torch.empty(self.d_inner, d_state))
        self.D = nn.Parameter(torch.ones(self.d_inner))
        self.out_proj = nn.Linear(self.d_inner, d_model, bias=bias)
        init_mamba_dt_(self.dt_proj, self.dt_rank, dt_min, dt_max, dt_init, dt_scale, dt_init_floor)
        init_mamba_A_log_(self.A_log)
        self.A_log._no_weight_decay = True  # mamba-ssm convention, read by optimiser set-ups
        self.D._no_weight_decay = True

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """hidden (b, L, d_model) -> (b, L, d_model)."""
        return self.out_proj(self.mix(self.in_proj(hidden), attention_mask))

    def mix(self, xz: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Everything between the projections: in_proj output (b, L, 2 d_inner) -> gated scan
        output (b, L, d_inner), ready for out_proj."""
        x, z = xz.chunk(2, dim=-1)  # (b, L, d_inner) each, views of xz
        keep = None if attention_mask is None else attention_mask[:, :, None].to(x.dtype)
        if keep is not None:
            x = x * keep
        weight = self.conv1d.weight[:, 0]  # (d_inner, K)
        x = causal_conv1d_silu(x, weight, self.conv1d.bias, self.scan_backend)  # (b, L, d_inner)
        x_dbl = self.x_proj(x)  # (b, L, dt_rank + 2 d_state)
        dt, B, C = x_dbl.split([self.dt_rank, self.d_state, self.d_state], dim=-1)
        delta = F.linear(dt, self.dt_proj.weight).transpose(1, 2)  # bias goes in as delta_bias
        A = -torch.exp(self.A_log.float())
        delta_bias = self.dt_proj.bias.float()
        softplus = True
        if keep is not None:  # dt = 0 at padding: exp(0 * A) = 1 and no input drive
            delta = F.softplus(delta.float() + delta_bias[:, None]) * keep.transpose(1, 2)
            delta_bias, softplus = None, False
        y = selective_scan(
            x.transpose(1, 2),
            delta,
            A,
            B.transpose(1, 2),
            C.transpose(1, 2),
            self.D.float(),
            z=z.transpose(1, 2),
            delta_bias=delta_bias,
            delta_softplus=softplus,
            backend=self.scan_backend,
        )
        return y.to(x.dtype).transpose(1, 2)
