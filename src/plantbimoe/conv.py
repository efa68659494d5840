"""Causal depthwise conv1d + SiLU of the Mamba mixer, behind the scan's backend switch.

``numba`` (what ``auto`` picks for CPU tensors when numba imports, see ``scan.resolve_backend``)
runs the fused kernels of ``conv_numba``; every other backend runs torch's conv1d and SiLU.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .conv_numba import conv1d_silu_numba
from .scan import resolve_backend


def causal_conv1d_silu(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, backend: str = "auto"
) -> torch.Tensor:
    """silu(bias + sum_k weight[:, k] * x[:, t - K + 1 + k]) with zeros before the start.

    x is token-major (batch, length, channels), weight (channels, K), bias (channels,). Returns
    (batch, length, channels): contiguous from ``numba``, a transposed channel-major tensor from
    torch's conv1d.
    """
    if resolve_backend(backend, x) == "numba":
        return conv1d_silu_numba(x, weight, bias)
    length, channels, width = x.shape[1], x.shape[2], weight.shape[1]
    y = F.conv1d(x.transpose(1, 2), weight[:, None, :], bias, padding=width - 1, groups=channels)
    return F.silu(y[..., :length]).transpose(1, 2)
