"""The ``triton`` scan backend against the sequential reference loop: on CUDA when there is one,
else in Triton's interpreter on CPU (see conftest.py). Skipped without triton."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from plantbimoe import scan as scan_module
from plantbimoe import scan_triton
from plantbimoe.scan import resolve_backend, selective_scan_reference
from plantbimoe.scan_cuda import cuda_scan_available
from plantbimoe.scan_triton import selective_scan_triton, triton_available

from .helpers import NAMES, assert_close, make_inputs, run

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
needs_triton = pytest.mark.skipif(
    not triton_available(),
    reason="triton is not installed (CUDA builds of torch bring it; `pip install triton`)",
)
gpu = [pytest.mark.gpu, needs_triton]


@pytest.fixture
def chunk8(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks of 8 steps: several chunks at small lengths, and a quick interpreter."""
    monkeypatch.setattr(scan_triton, "CHUNK", 8)


def on_device(ins: dict[str, torch.Tensor], dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
    """Fresh leaves on DEVICE (in ``dtype``, else their own)."""
    return {k: v.detach().to(DEVICE, dtype or v.dtype).requires_grad_() for k, v in ins.items()}


def check(ins: dict[str, torch.Tensor], rtol: float, dtype: torch.dtype | None = None, **kw) -> None:
    """Output and every gradient of the triton backend (inputs in ``dtype``) against the reference
    loop in fp64."""
    y_ref, g_ref = run(on_device(ins, torch.float64), "reference", **kw)
    y, g = run(on_device(ins, dtype), "triton", **kw)
    assert y.shape == y_ref.shape and y.dtype == (dtype or y_ref.dtype)
    assert_close(y, y_ref, rtol, "y")
    for name, gi, gr in zip((n for n in NAMES if n in ins), g, g_ref, strict=True):
        assert gi.dtype == (dtype or ins[name].dtype)
        assert_close(gi, gr, rtol, f"d{name}")


@needs_triton
@pytest.mark.usefixtures("chunk8")
@pytest.mark.parametrize(
    ("L", "d", "b", "n"),
    [
        (1, 4, 2, 3),  # one step
        (21, 5, 2, 3),  # a ragged last chunk, a partial channel block
        (24, 9, 1, 5),  # whole chunks, three channel blocks
    ],
)
def test_matches_reference_fp64(L: int, d: int, b: int, n: int) -> None:
    check(make_inputs(L, b=b, d=d, n=n), 1e-12)


@needs_triton
@pytest.mark.usefixtures("chunk8")
def test_matches_reference_fp32() -> None:
    """fp32 inputs and state, d_state 16: within fp32 rounding of the fp64 loop."""
    check(make_inputs(24, b=1, d=4, n=16), 1e-5, torch.float32)


@needs_triton
@pytest.mark.usefixtures("chunk8")
@pytest.mark.parametrize("drop", ["D", "z", "delta_bias"])
def test_optional_inputs_and_no_softplus(drop: str) -> None:
    ins = make_inputs(13, d=3)
    ins.pop(drop)
    ins["delta"] = (ins["delta"].detach().abs() + 0.05).requires_grad_()  # a valid dt without softplus
    check(ins, 1e-12, delta_softplus=False)


@needs_triton
@pytest.mark.usefixtures("chunk8")
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_large_dt_and_softplus_threshold(dtype: torch.dtype) -> None:
    """dt*|A| in the hundreds (decays that underflow) and pre-activations above softplus's
    threshold of 20, beside steps that keep memory."""
    ins = make_inputs(20, dt_shift=9.0, delta_scale=8.0, d=6, n=4)
    with torch.no_grad():
        ins["A"].mul_(4.0)
    pre = ins["delta"] + ins["delta_bias"][:, None]
    assert pre.max() > 20 and (pre < 0).any()
    check(ins, 1e-12 if dtype == torch.float64 else 1e-5, dtype)


@needs_triton
@pytest.mark.usefixtures("chunk8")
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_inputs_float32_state(dtype: torch.dtype) -> None:
    """Half activations with fp32 A, D and bias (as under autocast): output and gradients in the
    inputs' dtypes, the output within half rounding of the fp32 loop."""
    ins = {
        k: v.detach().to(DEVICE, torch.float32 if k in ("A", "D", "delta_bias") else dtype)
        for k, v in make_inputs(20).items()
    }
    y, grads = run({k: v.requires_grad_() for k, v in ins.items()}, "triton")
    assert y.dtype == dtype and all(g.dtype == ins[k].dtype for k, g in zip(ins, grads, strict=True))
    want = selective_scan_reference(**{k: v.detach().float() for k, v in ins.items()})
    assert_close(y.float(), want, 1e-2, "y")


@needs_triton
@pytest.mark.usefixtures("chunk8")
def test_operator_registration() -> None:
    """Schema, fake shapes and autograd registration of the forward operator (torch.library.opcheck;
    the compile test below covers tracing)."""
    ins = list(on_device(make_inputs(9, d=3)).values())
    checks = ("test_schema", "test_faketensor", "test_autograd_registration")
    for save in (True, False):
        torch.library.opcheck(
            torch.ops.plantbimoe.triton_scan.default, (*ins, True, save, 8), test_utils=checks
        )


@needs_triton
@pytest.mark.usefixtures("chunk8")
def test_torch_compile_traces_the_scan_as_one_operator() -> None:
    ins = on_device(make_inputs(10, d=4, dtype=torch.float32))
    want_y, want_g = run(ins, "triton")
    y = torch.compile(selective_scan_triton, fullgraph=True, backend="aot_eager")(**ins)
    gy = torch.linspace(-1, 1, y.numel(), dtype=y.dtype, device=y.device).reshape(y.shape).flip(-1)
    got_g = torch.autograd.grad(y, list(ins.values()), gy)
    assert torch.equal(y, want_y)
    for name, a, b in zip(NAMES, got_g, want_g, strict=True):
        assert torch.allclose(a, b, rtol=1e-6, atol=1e-6), name


@needs_triton
def test_cpu_tensors_need_the_interpreter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    ins = {k: v.detach().float() for k, v in make_inputs(5).items()}
    with pytest.raises(ValueError, match="CUDA tensors"):
        selective_scan_triton(**ins)


@pytest.mark.parametrize(
    ("mamba_ssm", "triton", "dtype", "want"),
    [
        (True, True, torch.bfloat16, "cuda"),
        (False, True, torch.bfloat16, "triton"),
        (False, True, torch.float32, "triton"),
        (False, True, torch.float64, "torch"),
        (False, False, torch.float32, "torch"),
    ],
)
def test_auto_on_cuda_tensors(
    mamba_ssm: bool, triton: bool, dtype: torch.dtype, want: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """auto on CUDA: mamba-ssm when it imports, else triton, else torch (fp64: torch)."""
    monkeypatch.setattr(scan_module, "cuda_scan_available", lambda: mamba_ssm)
    monkeypatch.setattr(scan_module, "triton_available", lambda: triton)
    u = SimpleNamespace(is_cuda=True, dtype=dtype, device=torch.device("cuda"))
    assert resolve_backend("auto", u) == want  # type: ignore[arg-type]
    assert resolve_backend("auto", torch.zeros(1)) in ("numba", "torch")


# On a GPU: the targets at realistic sizes and the default chunk.


@pytest.mark.gpu
@needs_triton
@pytest.mark.parametrize("L", [64, 333, 2048])
def test_cuda_fp32_within_target(L: int) -> None:
    """fp32 on CUDA, d_state 16, the default chunk: the output and every gradient within 1e-4 of
    the fp64 loop."""
    check(make_inputs(L, b=2, d=64, n=16), 1e-4, torch.float32)


@pytest.mark.gpu
@needs_triton
def test_cuda_auto_picks_triton_without_mamba_ssm() -> None:
    u = torch.zeros(1, 1, 1, device="cuda", dtype=torch.bfloat16)
    assert resolve_backend("auto", u) == ("cuda" if cuda_scan_available() else "triton")


@pytest.mark.gpu
@needs_triton
def test_cuda_tiny_model_matches_torch_backend() -> None:
    """The tiny model's masked-LM loss, logits and every parameter gradient with the triton scan
    match the torch scan's on CUDA (fp32), and a bf16-autocast step stays finite."""
    from plantbimoe import PlantBiMoEConfig, PlantBiMoEForMaskedLM

    torch.manual_seed(0)
    model = PlantBiMoEForMaskedLM(PlantBiMoEConfig.preset("tiny")).cuda()
    ids = torch.randint(7, 11, (2, 300), device="cuda")
    results = {}
    for backend in ("torch", "triton"):
        for module in model.modules():
            if hasattr(module, "scan_backend"):
                module.scan_backend = backend
        model.zero_grad()
        out = model(ids, labels=ids)
        out.loss.backward()
        results[backend] = (out.logits.detach(), [p.grad.clone() for p in model.parameters()])
    (logits_t, grads_t), (logits, grads) = results["torch"], results["triton"]
    assert_close(logits, logits_t, 1e-4, "logits")
    for i, (g, g_t) in enumerate(zip(grads, grads_t, strict=True)):
        assert_close(g, g_t, 1e-3, f"grad {i}")
    model.zero_grad()
    with torch.autocast("cuda", dtype=torch.bfloat16):
        loss = model(ids, labels=ids).loss
    loss.backward()
    assert torch.isfinite(loss) and all(torch.isfinite(p.grad).all() for p in model.parameters())
