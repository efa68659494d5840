"""The ``torch`` scan backend against the sequential reference loop (forward and gradients)."""

from __future__ import annotations

import pytest
import torch

from plantbimoe import scan_torch
from plantbimoe.scan import resolve_backend, selective_scan
from plantbimoe.scan_numba import numba_available

from .helpers import NAMES, assert_close, make_inputs, run


@pytest.mark.parametrize("L", [1, 16, 37, 64])
@pytest.mark.parametrize("chunk", [16, 5])
@pytest.mark.parametrize("block", [256, 8])
def test_matches_reference_fp64(L: int, chunk: int, block: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scan_torch, "BLOCK_SIZE", block)  # 8: several blocks per sequence
    ins = make_inputs(L)
    y_ref, g_ref = run(ins, "reference")
    y, g = run(ins, "torch", chunk_size=chunk)
    assert y.shape == y_ref.shape and y.dtype == torch.float64
    assert_close(y, y_ref, 1e-10, "y")
    for name, gi, gr in zip(NAMES, g, g_ref, strict=True):
        assert_close(gi, gr, 1e-10, f"d{name}")


@pytest.mark.parametrize("L", [16, 37])
def test_matches_reference_fp32(L: int) -> None:
    ins64 = make_inputs(L)
    y_ref, g_ref = run(ins64, "reference")
    ins32 = {k: v.detach().float().requires_grad_() for k, v in ins64.items()}
    y, g = run(ins32, "torch")
    assert y.dtype == torch.float32
    assert_close(y, y_ref, 1e-5, "y")
    for name, gi, gr in zip(NAMES, g, g_ref, strict=True):
        assert_close(gi, gr, 1e-5, f"d{name}")


def test_long_sequence_defaults() -> None:
    """Several default-size blocks and a ragged last chunk."""
    ins = make_inputs(700, d=3, n=2)
    y_ref, g_ref = run(ins, "reference")
    y, g = run(ins, "torch")
    assert_close(y, y_ref, 1e-10, "y")
    for name, gi, gr in zip(NAMES, g, g_ref, strict=True):
        assert_close(gi, gr, 1e-10, f"d{name}")


@pytest.mark.parametrize("drop", ["D", "z", "delta_bias"])
def test_optional_inputs_and_no_softplus(drop: str) -> None:
    ins = make_inputs(21)
    ins.pop(drop)
    ins["delta"] = (ins["delta"].detach().abs() + 0.05).requires_grad_()  # a valid dt without softplus
    y_ref, g_ref = run(ins, "reference", delta_softplus=False)
    y, g = run(ins, "torch", delta_softplus=False, chunk_size=8)
    assert_close(y, y_ref, 1e-10, "y")
    for gi, gr in zip(g, g_ref, strict=True):
        assert_close(gi, gr, 1e-10, "grad")


def test_gradcheck_fp64() -> None:
    """Finite differences, independent of the reference loop."""
    ins = make_inputs(11, b=1, d=2, n=2)
    fn = lambda *xs: selective_scan(*xs, backend="torch", chunk_size=4)  # noqa: E731
    assert torch.autograd.gradcheck(fn, tuple(ins.values()))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_large_dt_stays_finite(dtype: torch.dtype) -> None:
    """Steps with dt*|A| in the hundreds beside steps that keep memory: a chunk's summed log-decay
    reaches thousands, where a cumulative-sum factorisation overflows fp32 (and fp64)."""
    ins64 = make_inputs(40, dt_shift=9.0, delta_scale=8.0, d=6, n=4)
    with torch.no_grad():
        ins64["A"].mul_(4.0)
    dtA = torch.nn.functional.softplus(ins64["delta"] + ins64["delta_bias"][:, None]).unsqueeze(-1) * (
        -ins64["A"][:, None]
    )
    assert dtA.max() > 200 and dtA[..., :16, :].sum(-2).max() > 1500 and (dtA < 0.5).any()
    y_ref, g_ref = run(ins64, "reference")
    ins = {k: v.detach().to(dtype).requires_grad_() for k, v in ins64.items()}
    y, g = run(ins, "torch")
    assert torch.isfinite(y).all() and all(torch.isfinite(gi).all() for gi in g)
    rtol = 1e-10 if dtype == torch.float64 else 1e-5
    assert_close(y, y_ref, rtol, "y")
    for name, gi, gr in zip(NAMES, g, g_ref, strict=True):
        assert_close(gi, gr, rtol, f"d{name}")


@pytest.mark.parametrize(("L", "block", "segment"), [(64, 256, 32), (70, 16, 32), (70, 32, 8), (90, 16, 24)])
def test_checkpoint_segments_identical(
    L: int, block: int, segment: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Segments shorter than, longer than and straddling the elementwise blocks."""
    monkeypatch.setattr(scan_torch, "BLOCK_SIZE", block)
    ins = make_inputs(L)
    y0, g0 = run(ins, "torch", chunk_size=8)
    y1, g1 = run(ins, "torch", chunk_size=8, checkpoint_segment=segment)
    assert torch.equal(y0, y1)
    for name, a, b in zip(NAMES, g0, g1, strict=True):
        assert torch.equal(a, b), name


def test_module_level_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    ins = make_inputs(30)
    y0, g0 = run(ins, "torch", chunk_size=4)
    monkeypatch.setattr(scan_torch, "CHUNK_SIZE", 4)
    monkeypatch.setattr(scan_torch, "CHECKPOINT_SEGMENT", 12)
    y1, g1 = run(ins, "torch")
    assert torch.equal(y0, y1) and all(torch.equal(a, b) for a, b in zip(g0, g1, strict=True))


def test_backend_resolution_and_errors() -> None:
    u = torch.zeros(1, 2, 3)
    assert resolve_backend("auto", u) == ("numba" if numba_available() else "torch")
    assert resolve_backend("reference", u) == "reference"
    with pytest.raises(ValueError, match="unknown scan backend"):
        resolve_backend("tpu", u)
    ins = {k: v.detach() for k, v in make_inputs(5, dtype=torch.float32).items()}
    with pytest.raises((RuntimeError, ValueError), match="cuda"):
        selective_scan(**ins, backend="cuda")
    with pytest.raises(ValueError, match="multiple of chunk_size"):
        selective_scan(**ins, backend="torch", chunk_size=4, checkpoint_segment=6)
