"""The ``cuda`` backend (mamba-ssm kernels) against the ``torch`` backend on a GPU."""

from __future__ import annotations

import pytest
import torch

from plantbimoe.scan import selective_scan
from plantbimoe.scan_cuda import cuda_scan_available

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
    pytest.mark.skipif(not cuda_scan_available(), reason="needs mamba-ssm with its CUDA kernels"),
]


@pytest.mark.parametrize("L", [64, 333, 2048])
def test_cuda_matches_torch_forward_backward(L: int) -> None:
    g = torch.Generator(device="cuda").manual_seed(0)
    b, d, n = 2, 64, 16

    def r(*shape: int, scale: float = 1.0) -> torch.Tensor:
        return (torch.randn(*shape, generator=g, device="cuda") * scale).requires_grad_()

    A = (-torch.rand(d, n, generator=g, device="cuda") * 4).requires_grad_()
    ins = {
        "u": r(b, d, L),
        "delta": r(b, d, L, scale=0.5),
        "A": A,
        "B": r(b, n, L),
        "C": r(b, n, L),
        "D": r(d),
        "z": r(b, d, L),
        "delta_bias": r(d, scale=0.5),
    }
    gy = torch.randn(b, d, L, generator=g, device="cuda")
    outs = {}
    for backend in ("cuda", "torch"):
        y = selective_scan(**ins, backend=backend)
        outs[backend] = (y, torch.autograd.grad(y, list(ins.values()), gy))
    (y_c, g_c), (y_t, g_t) = outs["cuda"], outs["torch"]
    torch.testing.assert_close(y_c, y_t, rtol=1e-3, atol=1e-3)
    for name, a, b_ in zip(ins, g_c, g_t, strict=True):
        scale = b_.abs().max().clamp_min(1.0)
        assert (a - b_).abs().max() <= 1e-3 * scale, name


def test_auto_picks_cuda_for_cuda_tensors() -> None:
    from plantbimoe.scan import resolve_backend

    assert resolve_backend("auto", torch.zeros(1, device="cuda")) == "cuda"
    assert resolve_backend("auto", torch.zeros(1, device="cuda", dtype=torch.float64)) == "torch"
