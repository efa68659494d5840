"""The ``numba`` causal depthwise conv1d + SiLU against torch's conv1d (fp64), and bad inputs."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from plantbimoe.conv import causal_conv1d_silu
from plantbimoe.conv_numba import conv1d_silu_numba
from plantbimoe.mamba import Mamba
from plantbimoe.scan_numba import numba_available

pytestmark = pytest.mark.skipif(not numba_available(), reason="numba is not installed")


def torch_conv_silu(x: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """The definition, with torch's conv1d: token-major in and out."""
    L, d, K = x.shape[1], x.shape[2], w.shape[1]
    y = F.conv1d(x.transpose(1, 2), w[:, None, :], bias, padding=K - 1, groups=d)[..., :L]
    return F.silu(y).transpose(1, 2)


def inputs(b: int, L: int, d: int, K: int, seed: int = 0, spaced: bool = False):
    g = torch.Generator().manual_seed(seed)
    wide = torch.randn(b, L, 2 * d if spaced else d, generator=g, dtype=torch.float64)
    x = wide[..., :d].requires_grad_() if not spaced else wide.requires_grad_()
    w = torch.randn(d, K, generator=g, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(d, generator=g, dtype=torch.float64, requires_grad=True)
    return x, w, bias


@pytest.mark.parametrize(
    ("b", "L", "d", "K"),
    [
        (1, 1, 3, 4),
        (2, 3, 5, 4),
        (2, 37, 64, 4),
        (3, 50, 70, 4),
        (1, 20, 129, 2),
        (2, 9, 8, 1),
        (2, 12, 300, 4),
    ],
)
@pytest.mark.parametrize("with_bias", [True, False])
def test_matches_torch_conv1d_fp64(b: int, L: int, d: int, K: int, with_bias: bool) -> None:
    x, w, bias = inputs(b, L, d, K)
    bias = bias if with_bias else None
    leaves = [t for t in (x, w, bias) if t is not None]
    gy = torch.randn(b, L, d, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    want = torch_conv_silu(x, w, bias)
    got = conv1d_silu_numba(x, w, bias)
    assert got.shape == want.shape and got.dtype == torch.float64 and got.is_contiguous()
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    for g, r in zip(torch.autograd.grad(got, leaves, gy), torch.autograd.grad(want, leaves, gy), strict=True):
        torch.testing.assert_close(g, r, rtol=1e-12, atol=1e-12)


def test_spaced_rows_read_in_place() -> None:
    """x as the first half of in_proj's output: rows 2d apart, channels contiguous."""
    xz, w, bias = inputs(2, 21, 40, 4, spaced=True)
    x = xz[..., :40]
    gy = torch.randn(2, 21, 40, dtype=torch.float64)
    want = torch.autograd.grad(torch_conv_silu(x, w, bias), (xz, w, bias), gy)
    got = torch.autograd.grad(conv1d_silu_numba(x, w, bias), (xz, w, bias), gy)
    for g, r in zip(got, want, strict=True):
        torch.testing.assert_close(g, r, rtol=1e-12, atol=1e-12)


def test_gradcheck_fp64() -> None:
    assert torch.autograd.gradcheck(conv1d_silu_numba, inputs(2, 6, 5, 3))


def test_fp32_and_thread_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    x, w, bias = (t.detach().float().requires_grad_() for t in inputs(2, 40, 600, 4))
    results = []
    for threads in (1, 2, 3):
        monkeypatch.setattr(torch, "get_num_threads", lambda t=threads: t)
        y = conv1d_silu_numba(x, w, bias)
        results.append((y, *torch.autograd.grad(y.square().sum(), (x, w, bias))))
    for other in results[1:]:
        assert all(torch.equal(a, b) for a, b in zip(other, results[0], strict=True))
    torch.testing.assert_close(results[0][0], torch_conv_silu(x, w, bias), rtol=1e-5, atol=1e-5)


def test_backend_switch() -> None:
    x, w, bias = inputs(1, 12, 6, 4)
    torch.testing.assert_close(
        causal_conv1d_silu(x, w, bias, "numba"), causal_conv1d_silu(x, w, bias, "torch")
    )
    with pytest.raises(ValueError, match="unknown scan backend"):
        causal_conv1d_silu(x, w, bias, "nope")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda x, w, b: (torch.cat([x, x], 2)[..., ::2], w, b), "contiguous channels"),  # stride 2
        (lambda x, w, b: (x.transpose(0, 1).contiguous().transpose(0, 1)[..., :5], w, b), "weight must"),
        (lambda x, w, b: (x[0], w, b), "batch, length, channels"),  # 2-d
        (lambda x, w, b: (x.int(), w, b), "batch, length, channels"),  # integer dtype
        (lambda x, w, b: (x, w[:5], b), "weight must be"),  # too few channels
        (lambda x, w, b: (x, w.t().contiguous().t(), b), "weight must be"),  # not contiguous
        (lambda x, w, b: (x, w, b[:3]), "bias must be"),
        (lambda x, w, b: (x, w.float(), b.float()), "must be torch.float64"),
    ],
)
def test_refuses_bad_inputs(change, message: str) -> None:
    x, w, bias = (t.detach() for t in inputs(2, 10, 6, 4))
    with pytest.raises(ValueError, match=message):
        torch.ops.plantbimoe.numba_conv_silu(*change(x, w, bias))


def test_refuses_non_cpu_tensors() -> None:
    x, w, bias = (t.detach().to("meta") for t in inputs(2, 10, 6, 4))
    with pytest.raises(ValueError, match="CPU tensor"):
        conv1d_silu_numba(x, w, bias)


def test_backward_refuses_a_mis_shaped_gradient() -> None:
    x, w, bias = (t.detach() for t in inputs(2, 10, 6, 4))
    with pytest.raises(ValueError, match="grad must be"):
        torch.ops.plantbimoe.numba_conv_silu_backward(x[:, :5].contiguous(), x, w, bias)


def test_torch_compile_keeps_the_operator() -> None:
    x, w, bias = inputs(2, 17, 9, 4)
    want = torch.autograd.grad(conv1d_silu_numba(x, w, bias).sum(), (x, w, bias))
    compiled = torch.compile(conv1d_silu_numba, fullgraph=True, backend="aot_eager")
    got = torch.autograd.grad(compiled(x, w, bias).sum(), (x, w, bias))
    assert all(torch.equal(a, b) for a, b in zip(got, want, strict=True))


@pytest.mark.parametrize("masked", [False, True])
def test_mixer_numba_matches_reference_backend(masked: bool) -> None:
    """A whole Mamba mixer in fp64: numba conv + scan against torch's conv and the sequential scan."""
    torch.manual_seed(0)
    mixer = Mamba(16, d_state=4, scan_backend="numba").double()
    hidden = torch.randn(2, 23, 16, dtype=torch.float64, requires_grad=True)
    mask = torch.arange(23)[None, :] < torch.tensor([[23], [15]]) if masked else None
    outs = []
    for backend in ("numba", "reference"):
        mixer.scan_backend = backend
        y = mixer(hidden, mask)
        outs.append((y, *torch.autograd.grad(y.square().sum(), (hidden, *mixer.parameters()))))
    for got, want in zip(*outs, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)
