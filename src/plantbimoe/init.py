"""Weight initialisation.

Mamba internals follow mamba-ssm: ``A_log = log(1..d_state)``, ``D = 1``, ``dt_proj`` weight uniform
(or constant) with std ``dt_rank**-0.5 * dt_scale`` and its bias the inverse softplus of a
log-uniform dt in [dt_min, dt_max]; ``in_proj``, ``x_proj`` and ``conv1d`` keep PyTorch's default.

`init_weights` applies the model-level rules of ``initializer_cfg``: embeddings (hence the tied
lm_head), router and FFN gate/up projections ~ N(0, initializer_range); with
``rescale_prenorm_residual`` the projections that write into the residual stream are scaled by
``1/sqrt(n_residuals_per_layer * n_layer)``: Mamba ``out_proj`` (kaiming-uniform then scaled, as
mamba-ssm does) and, unlike the original code (flaw #26), the dense/expert ``down_proj`` too.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .config import PlantBiMoEConfig


@torch.no_grad()
def init_mamba_A_log_(A_log: torch.Tensor) -> None:
    """S4D-real init: row d of A is -(1, 2, ..., d_state); stored as log."""
    d_state = A_log.shape[-1]
    a = torch.arange(1, d_state + 1, dtype=torch.float32, device=A_log.device)
    A_log.copy_(torch.log(a).expand_as(A_log))


@torch.no_grad()
def init_mamba_dt_(
    dt_proj: nn.Linear,
    dt_rank: int,
    dt_min: float,
    dt_max: float,
    dt_init: str,
    dt_scale: float,
    dt_init_floor: float,
) -> None:
    """mamba-ssm dt init: weight ~ U(-s, s) or constant s, bias = softplus^-1(log-uniform dt)."""
    std = dt_rank**-0.5 * dt_scale
    if dt_init == "constant":
        nn.init.constant_(dt_proj.weight, std)
    else:
        nn.init.uniform_(dt_proj.weight, -std, std)
    d_inner = dt_proj.bias.shape[0]
    u = torch.rand(d_inner, device=dt_proj.bias.device)
    dt = torch.exp(u * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)).clamp(min=dt_init_floor)
    dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))


@torch.no_grad()
def init_weights(model: nn.Module, config: PlantBiMoEConfig) -> None:
    """Apply the model-level initialisation rules (see the module docstring) in place."""
    cfg = config.initializer_cfg
    std = cfg.initializer_range
    scale = 1.0 / math.sqrt(cfg.n_residuals_per_layer * config.n_layer)
    rescale = cfg.rescale_prenorm_residual
    for name, p in model.named_parameters():  # tied parameters are visited once
        if name.endswith(".bias"):
            if name.endswith(("in_proj.bias", "out_proj.bias")):
                nn.init.zeros_(p)
            continue
        kind = name.removesuffix(".weight").rsplit(".", 1)[-1]
        if kind in ("embeddings", "router", "gate_proj", "up_proj"):
            nn.init.normal_(p, std=std)
        elif kind == "down_proj":
            nn.init.normal_(p, std=std * scale if rescale else std)
        elif kind == "out_proj" and rescale:
            nn.init.kaiming_uniform_(p, a=math.sqrt(5))
            p.mul_(scale)
