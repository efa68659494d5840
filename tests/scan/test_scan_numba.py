"""The ``numba`` scan backend (compiled CPU kernels) against the sequential reference loop."""

from __future__ import annotations

import pytest
import torch

from plantbimoe import scan as scan_module
from plantbimoe.scan import resolve_backend, selective_scan
from plantbimoe.scan_numba import numba_available, selective_scan_numba

from .helpers import NAMES, assert_close, make_inputs, run

pytestmark = pytest.mark.skipif(not numba_available(), reason="numba is not installed")


def check_against_reference(ins: dict[str, torch.Tensor], rtol: float, **kw) -> None:
    y_ref, g_ref = run(ins, "reference", **kw)
    y, g = run(ins, "numba", **kw)
    assert y.shape == y_ref.shape and y.dtype == y_ref.dtype
    assert_close(y, y_ref, rtol, "y")
    for name, gi, gr in zip((n for n in NAMES if n in ins), g, g_ref, strict=True):
        assert_close(gi, gr, rtol, f"d{name}")


@pytest.mark.parametrize(
    ("L", "d", "b"),
    [
        (1, 4, 2),  # one step, one partial block
        (7, 128, 1),  # less than a forward tile, one full block
        (33, 150, 2),  # a partial last block; crosses a backward tile
        (70, 300, 3),  # several blocks and tiles, ragged ends everywhere
    ],
)
@pytest.mark.parametrize("threads", [1, 2])
def test_matches_reference_fp64(
    L: int, d: int, b: int, threads: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(torch, "get_num_threads", lambda: threads)  # jobs split mid batch row
    check_against_reference(make_inputs(L, b=b, d=d, n=5), 1e-12)


def test_matches_reference_fp32() -> None:
    """fp32 with the polynomial exp2/log1p: within fp32 rounding of the fp64 loop."""
    ins64 = make_inputs(100, d=40, n=16)
    y_ref, g_ref = run(ins64, "reference")
    y, g = run({k: v.detach().float().requires_grad_() for k, v in ins64.items()}, "numba")
    assert y.dtype == torch.float32
    assert_close(y, y_ref, 1e-5, "y")
    for name, gi, gr in zip(NAMES, g, g_ref, strict=True):
        assert_close(gi, gr, 1e-5, f"d{name}")


@pytest.mark.parametrize("drop", ["D", "z", "delta_bias"])
def test_optional_inputs_and_no_softplus(drop: str) -> None:
    ins = make_inputs(21, d=9)
    ins.pop(drop)
    ins["delta"] = (ins["delta"].detach().abs() + 0.05).requires_grad_()  # a valid dt without softplus
    check_against_reference(ins, 1e-12, delta_softplus=False)


def test_gradcheck_fp64() -> None:
    """Finite differences, independent of the reference loop."""
    ins = make_inputs(11, b=1, d=3, n=2)
    fn = lambda *xs: selective_scan(*xs, backend="numba")  # noqa: E731
    assert torch.autograd.gradcheck(fn, tuple(ins.values()))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_large_dt_and_softplus_threshold(dtype: torch.dtype) -> None:
    """dt*|A| in the hundreds (decays that underflow) and pre-activations above softplus's
    threshold of 20, beside steps that keep memory."""
    ins64 = make_inputs(40, dt_shift=9.0, delta_scale=8.0, d=6, n=4)
    with torch.no_grad():
        ins64["A"].mul_(4.0)
    pre = ins64["delta"] + ins64["delta_bias"][:, None]
    assert pre.max() > 20 and (pre < 0).any()
    y_ref, g_ref = run(ins64, "reference")
    y, g = run({k: v.detach().to(dtype).requires_grad_() for k, v in ins64.items()}, "numba")
    assert torch.isfinite(y).all() and all(torch.isfinite(gi).all() for gi in g)
    rtol = 1e-12 if dtype == torch.float64 else 1e-5
    assert_close(y, y_ref, rtol, "y")
    for name, gi, gr in zip(NAMES, g, g_ref, strict=True):
        assert_close(gi, gr, rtol, f"d{name}")


def test_thread_count_does_not_change_results(monkeypatch: pytest.MonkeyPatch) -> None:
    """Jobs are independent: 1, 2 and 3 threads give bit-identical outputs and gradients."""
    ins = make_inputs(50, b=2, d=100, n=4, dtype=torch.float32)
    results = []
    for threads in (1, 2, 3):
        monkeypatch.setattr(torch, "get_num_threads", lambda t=threads: t)
        results.append(run(ins, "numba"))
    (y0, g0), *others = results
    for y, g in others:
        assert torch.equal(y, y0) and all(torch.equal(a, b) for a, b in zip(g, g0, strict=True))


def test_auto_resolution_and_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    u = torch.zeros(1, 2, 3)
    assert resolve_backend("auto", u) == "numba"
    assert resolve_backend("numba", u) == "numba"
    monkeypatch.setattr(scan_module, "numba_available", lambda: False)
    assert resolve_backend("auto", u) == "torch"


def test_rejects_non_cpu_tensors() -> None:
    ins = {k: v.detach().to("meta") for k, v in make_inputs(5, dtype=torch.float32).items()}
    with pytest.raises(ValueError, match="CPU tensors"):
        selective_scan_numba(**ins)


def test_torch_compile_traces_the_scan_as_one_operator() -> None:
    """The kernels are registered torch operators (with fake shapes and autograd), so
    torch.compile(fullgraph=True) keeps the scan, forward and backward, in one graph."""
    ins = make_inputs(40, d=36, dtype=torch.float32)
    want_y, want_g = run(ins, "numba")
    compiled = torch.compile(selective_scan_numba, fullgraph=True, backend="aot_eager")
    y = compiled(**ins)
    gy = torch.linspace(-1, 1, y.numel(), dtype=y.dtype).reshape(y.shape).flip(-1)
    got_g = torch.autograd.grad(y, list(ins.values()), gy)
    assert torch.equal(y, want_y)
    for name, a, b in zip(NAMES, got_g, want_g, strict=True):
        assert torch.allclose(a, b, rtol=1e-6, atol=1e-6), name


def test_whole_model_compiles_without_graph_breaks() -> None:
    from plantbimoe import PlantBiMoEConfig, PlantBiMoEForMaskedLM

    torch.manual_seed(0)
    model = PlantBiMoEForMaskedLM(PlantBiMoEConfig.preset("tiny")).eval()
    ids = torch.randint(7, 11, (2, 48))
    with torch.no_grad():
        want = model(ids).logits
        got = torch.compile(model, fullgraph=True, backend="eager")(ids).logits
    assert torch.allclose(got, want, atol=1e-6)
