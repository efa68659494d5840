"""The ``cuda`` scan backend: mamba-ssm's fused selective-scan kernel, imported lazily.

mamba-ssm is an optional extra (``pip install .[cuda]``); nothing here imports it until a CUDA
scan is requested, so CPU installs never need it.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import torch

KERNEL_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


@cache
def _load() -> Callable[..., torch.Tensor] | ImportError:
    try:
        from mamba_ssm.ops.selective_scan_interface import selective_scan_fn
    except ImportError as err:  # the package or its compiled extension is missing
        return err
    return selective_scan_fn


def cuda_scan_available() -> bool:
    """True when mamba-ssm's selective-scan kernel can be imported."""
    return not isinstance(_load(), ImportError)


def cuda_selective_scan(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None,
    z: torch.Tensor | None,
    delta_bias: torch.Tensor | None,
    delta_softplus: bool,
) -> torch.Tensor:
    """Run mamba-ssm's ``selective_scan_fn`` (fused softplus, D skip and silu(z) gate)."""
    fn = _load()
    if isinstance(fn, ImportError):
        raise RuntimeError(
            "scan backend 'cuda' needs mamba-ssm with its compiled CUDA kernels "
            f"(pip install '.[cuda]' on a CUDA machine); importing it failed: {fn}"
        ) from fn
    if not u.is_cuda or u.dtype not in KERNEL_DTYPES:
        raise ValueError(f"scan backend 'cuda' needs CUDA fp32/fp16/bf16 tensors, not {u.dtype} {u.device}")
    # The kernel wants A, D and delta_bias in fp32, and delta, B, C, z in u's dtype.
    delta, B, C = delta.to(u.dtype), B.to(u.dtype), C.to(u.dtype)
    z = z.to(u.dtype) if z is not None else None
    D = D.float() if D is not None else None
    delta_bias = delta_bias.float() if delta_bias is not None else None
    return fn(u, delta, A.float(), B, C, D, z, delta_bias, delta_softplus)
