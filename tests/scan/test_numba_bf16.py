"""bf16 activations read and written directly by the numba scan and conv kernels (float32 inside)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from numba import njit

from plantbimoe.conv_numba import conv1d_silu_numba
from plantbimoe.scan_numba import numba_available
from plantbimoe.scan_numba_math import stored, to_compute

from .helpers import NAMES, assert_close, make_inputs, run

pytestmark = pytest.mark.skipif(not numba_available(), reason="numba is not installed")


@njit
def _widen(bits, out):  # type: ignore[no-untyped-def]
    for i in range(bits.size):
        out[i] = to_compute(bits[i])


@njit
def _narrow(values, out):  # type: ignore[no-untyped-def]
    for i in range(values.size):
        out[i] = stored(values[i], out)


def test_bf16_storage_helpers_match_torch() -> None:
    """Every bf16 bit pattern widens exactly and narrows back to itself (NaNs to one quiet NaN);
    float32 values round to the nearest bf16, ties to even, as torch rounds them."""
    bits = np.arange(1 << 16, dtype=np.uint16)
    wide = np.empty(bits.size, np.float32)
    _widen(bits, wide)
    want = torch.from_numpy(bits.view(np.int16).copy()).view(torch.bfloat16).float().numpy()
    assert np.array_equal(wide, want, equal_nan=True)
    back = np.empty_like(bits)
    _narrow(wide, back)
    nan = np.isnan(wide)
    assert np.array_equal(back[~nan], bits[~nan]) and (back[nan] == 0x7FC0).all()
    g = torch.Generator().manual_seed(0)
    values = torch.cat(
        [
            torch.randn(100_000, generator=g) * 10.0 ** torch.randint(-30, 30, (100_000,), generator=g),
            (torch.arange(1000, dtype=torch.float32) + 0.5) * 2.0**-7 + 1.0,
        ]
    )  # ties
    got = np.empty(values.numel(), np.uint16)
    _narrow(values.numpy(), got)
    assert np.array_equal(got.view(np.int16), values.bfloat16().view(torch.int16).numpy())


def _as(ins: dict[str, torch.Tensor], act: torch.dtype) -> dict[str, torch.Tensor]:
    params = ("A", "D", "delta_bias")
    return {k: v.detach().to(torch.float32 if k in params else act).requires_grad_() for k, v in ins.items()}


def test_scan_bf16_within_tolerance_of_fp32() -> None:
    """The same bf16-representable inputs through the bf16 and the fp32 kernels: outputs and
    gradients agree to bf16 rounding; activation gradients come back in bf16, parameter ones in fp32."""
    ins16 = _as(make_inputs(80, d=40, n=16), torch.bfloat16)
    y16, g16 = run(ins16, "numba")
    y32, g32 = run({k: v.detach().float().requires_grad_() for k, v in ins16.items()}, "numba")
    assert y16.dtype == torch.bfloat16
    assert_close(y16, y32, 1e-2, "y")
    for name, a, b in zip(NAMES, g16, g32, strict=True):
        assert a.dtype == (torch.float32 if name in ("A", "D", "delta_bias") else torch.bfloat16), name
        assert_close(a, b, 2e-2, f"d{name}")


def test_scan_operator_takes_bf16_directly() -> None:
    ins = _as(make_inputs(20, d=8, n=4), torch.bfloat16)
    y, saved = torch.ops.plantbimoe.numba_scan(*ins.values(), True, True)
    assert y.dtype == torch.bfloat16 and saved.dtype == torch.float32


def test_scan_refuses_mixed_or_mis_shaped_inputs() -> None:
    ins = _as(make_inputs(20, d=8, n=4), torch.bfloat16)
    bad = {**ins, "delta": ins["delta"].float()}
    with pytest.raises(ValueError, match="delta must be"):
        torch.ops.plantbimoe.numba_scan(*bad.values(), True, False)
    bad = {**ins, "B": ins["B"][:, :, :10]}
    with pytest.raises(ValueError, match="B must be"):
        torch.ops.plantbimoe.numba_scan(*bad.values(), True, False)
    bad = {**ins, "A": ins["A"][:4]}
    with pytest.raises(ValueError, match="A must be"):
        torch.ops.plantbimoe.numba_scan(*bad.values(), True, False)


def test_conv_bf16_within_tolerance_of_fp32() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 60, 2 * 100, generator=g).bfloat16()[..., :100].requires_grad_()
    w = torch.randn(100, 4, generator=g, requires_grad=True)
    bias = torch.randn(100, generator=g, requires_grad=True)
    x32 = x.detach().float().requires_grad_()
    y16, y32 = conv1d_silu_numba(x, w, bias), conv1d_silu_numba(x32, w, bias)
    assert y16.dtype == torch.bfloat16
    assert_close(y16, y32, 1e-2, "y")
    gy = torch.randn(y16.shape, generator=g)
    g16 = torch.autograd.grad(y16, (x, w, bias), gy.bfloat16())
    g32 = torch.autograd.grad(y32, (x32, w, bias), gy.bfloat16().float())
    assert [t.dtype for t in g16] == [torch.bfloat16, torch.float32, torch.float32]
    for name, a, b in zip(("x", "w", "bias"), g16, g32, strict=True):
        assert_close(a, b, 1e-2, f"d{name}")
