"""Behaviour every compiled-or-chunked scan backend shares (``torch``, ``numba`` and ``triton``;
triton runs here in Triton's interpreter on CPU tensors, its CUDA runs are in test_scan_triton.py)."""

from __future__ import annotations

import pytest
import torch

from plantbimoe import scan_triton
from plantbimoe.scan import selective_scan, selective_scan_reference
from plantbimoe.scan_numba import numba_available
from plantbimoe.scan_triton import triton_available

from .helpers import assert_close, make_inputs

BACKENDS = [
    "torch",
    pytest.param("numba", marks=pytest.mark.skipif(not numba_available(), reason="numba is not installed")),
    pytest.param("triton", marks=pytest.mark.skipif(
        not triton_available() or torch.cuda.is_available(),
        reason="triton is not installed, or CUDA is present (these tests use CPU tensors)",
    )),
]


@pytest.fixture(autouse=True)
def short_triton_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Triton chunks of 8 steps: several chunks at these lengths, and a quick interpreter."""
    monkeypatch.setattr(scan_triton, "CHUNK", 8)


@pytest.mark.parametrize("backend", BACKENDS)
def test_no_grad_path_matches(backend: str) -> None:
    ins = make_inputs(33, d=40)
    y_grad = selective_scan(**ins, backend=backend)
    with torch.no_grad():
        y = selective_scan(**ins, backend=backend)
    assert torch.equal(y, y_grad.detach())


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_inputs_compute_in_fp32(backend: str, dtype: torch.dtype) -> None:
    ins = {k: v.detach().to(dtype) for k, v in make_inputs(24).items()}
    y = selective_scan(**ins, backend=backend)
    assert y.dtype == dtype
    want = selective_scan_reference(**{k: v.float() for k, v in ins.items()})
    assert_close(y.float(), want, 1e-2, "y")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("u_layout", ["channel-major", "token-major slice"])
def test_mixer_layouts_strided_views(backend: str, u_layout: str) -> None:
    """Inputs as a Mamba mixer makes them: u channel-major (after the conv) or a transposed slice,
    and transposed slices of token-major projection outputs for delta, z, B and C."""
    b, L, d, n, r = 2, 45, 36, 3, 2
    g = torch.Generator().manual_seed(3)
    x = torch.randn(b, d, L, generator=g, dtype=torch.float64, requires_grad=True)
    xz = torch.randn(b, L, 2 * d, generator=g, dtype=torch.float64, requires_grad=True)
    x_dbl = torch.randn(b, L, r + 2 * n, generator=g, dtype=torch.float64, requires_grad=True)
    dt = torch.randn(b, L, d, generator=g, dtype=torch.float64, requires_grad=True)
    ref = make_inputs(L, d=d, n=n)
    ins = {
        "u": x if u_layout == "channel-major" else xz[..., :d].transpose(1, 2),
        "delta": dt.transpose(1, 2),
        "A": ref["A"],
        "B": x_dbl[..., r : r + n].transpose(1, 2),
        "C": x_dbl[..., r + n :].transpose(1, 2),
        "D": ref["D"],
        "z": xz[..., d:].transpose(1, 2),
        "delta_bias": ref["delta_bias"],
    }
    leaves = [xz, x_dbl, dt, ref["A"], ref["D"], ref["delta_bias"]]
    if u_layout == "channel-major":
        leaves.append(x)
    gy = torch.randn(b, d, L, generator=g, dtype=torch.float64)
    options = {"chunk_size": 8} if backend == "torch" else {}  # torch: several chunks
    want = torch.autograd.grad(selective_scan(**ins, backend="reference"), leaves, gy)
    got = torch.autograd.grad(selective_scan(**ins, backend=backend, **options), leaves, gy)
    for w, o in zip(want, got, strict=True):
        assert_close(o, w, 1e-10, "grad")
