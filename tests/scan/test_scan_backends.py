"""Behaviour every compiled-or-chunked scan backend shares (``torch`` and ``numba``)."""

from __future__ import annotations

import pytest
import torch

from plantbimoe.scan import selective_scan, selective_scan_reference
from plantbimoe.scan_numba import numba_available

from .helpers import assert_close, make_inputs

BACKENDS = [
    "torch",
    pytest.param("numba", marks=pytest.mark.skipif(not numba_available(), reason="numba is not installed")),
]


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
