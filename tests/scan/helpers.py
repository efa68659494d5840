"""Shared helpers of the scan backend tests: random inputs, a run with gradients, a tolerance check."""

from __future__ import annotations

import torch

from plantbimoe.scan import selective_scan

NAMES = ("u", "delta", "A", "B", "C", "D", "z", "delta_bias")


def make_inputs(
    L: int,
    dtype: torch.dtype = torch.float64,
    b: int = 2,
    d: int = 4,
    n: int = 3,
    dt_shift: float = 0.0,
    delta_scale: float = 0.5,
    seed: int = 0,
) -> dict[str, torch.Tensor]:
    """Random scan inputs in mamba-ssm layout; ``dt_shift`` raises softplus(delta) (and dt*|A|)."""
    g = torch.Generator().manual_seed(seed)

    def r(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=g, dtype=torch.float64)

    ins = {
        "u": r(b, d, L),
        "delta": r(b, d, L) * delta_scale,
        "A": -torch.rand(d, n, generator=g, dtype=torch.float64) * 4 - 0.1,
        "B": r(b, n, L),
        "C": r(b, n, L),
        "D": r(d),
        "z": r(b, d, L),
        "delta_bias": r(d) * 0.5 - 1.0 + dt_shift,
    }
    return {k: v.to(dtype).requires_grad_() for k, v in ins.items()}


def run(ins: dict[str, torch.Tensor], backend: str, **kw) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
    """Output and gradients w.r.t. every input, for a fixed pseudo-random upstream gradient."""
    y = selective_scan(**ins, backend=backend, **kw)
    gy = torch.linspace(-1, 1, y.numel(), dtype=y.dtype, device=y.device).reshape(y.shape).flip(-1)
    return y, torch.autograd.grad(y, list(ins.values()), gy)


def assert_close(got, want, rtol: float, label: str) -> None:
    """Max-abs error relative to the reference's max magnitude."""
    err = (got.double() - want.double()).abs().max().item()
    scale = want.double().abs().max().item()
    assert err <= rtol * max(scale, 1.0), f"{label}: max abs err {err:.3e}, scale {scale:.3e}"
