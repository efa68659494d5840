"""Sparse MoE: routing, dispatch, auxiliary losses, padding, gradients."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from plantbimoe import SparseMoE

D, HIDDEN, E = 16, 24, 4


def _dense_reference(moe: SparseMoE, x: torch.Tensor, experts: torch.Tensor, weights: torch.Tensor):
    """Token by token, expert by expert: the plain definition."""
    ex = moe.experts
    out = torch.zeros_like(x)
    for t in range(x.shape[0]):
        for e, w in zip(experts[t].tolist(), weights[t], strict=True):
            h = F.silu(x[t] @ ex.gate_proj[e].T) * (x[t] @ ex.up_proj[e].T)
            out[t] += w * (h @ ex.down_proj[e].T)
    return out


@pytest.mark.parametrize("top_k", [1, 2])
def test_routing_is_top_k_of_softmax_and_output_matches_definition(top_k: int) -> None:
    torch.manual_seed(0)
    moe = SparseMoE(D, HIDDEN, E, top_k)
    x = torch.randn(2, 9, D)
    with torch.no_grad():
        out, r = moe(x)
    probs = torch.softmax(x.reshape(-1, D) @ moe.router.weight.T, dim=-1)
    top = probs.topk(top_k, dim=-1)
    assert torch.equal(r.selected_experts, top.indices)
    assert torch.allclose(r.routing_weights, top.values, atol=1e-6)  # not renormalised
    ref = _dense_reference(moe, x.reshape(-1, D), top.indices, top.values)
    assert torch.allclose(out.reshape(-1, D), ref, atol=1e-5)


def test_renormalize_option() -> None:
    torch.manual_seed(0)
    moe = SparseMoE(D, HIDDEN, E, 2, renormalize=True)
    _, r = moe(torch.randn(1, 7, D))
    assert torch.allclose(r.routing_weights.sum(-1), torch.ones(7))


@pytest.mark.skipif(not hasattr(F, "grouped_mm"), reason="torch without F.grouped_mm")
def test_grouped_and_segment_dispatch_agree() -> None:
    torch.manual_seed(0)
    moe = SparseMoE(D, HIDDEN, E, 2)
    x = torch.randn(2, 11, D, requires_grad=True)
    results = []
    for dispatch in ("segments", "grouped"):
        moe.experts.dispatch = dispatch
        moe.zero_grad()
        x.grad = None
        out, _ = moe(x)
        out.square().sum().backward()
        results.append((out.detach(), x.grad.clone(), moe.experts.gate_proj.grad.clone()))
    for a, b in zip(*results, strict=True):
        assert torch.allclose(a, b, atol=1e-5)


def test_load_balance_loss_is_one_for_uniform_routing_and_larger_when_skewed() -> None:
    moe = SparseMoE(D, HIDDEN, E, 1)
    with torch.no_grad():
        moe.router.weight.zero_()  # every token: uniform probabilities
    _, r = moe(torch.randn(1, 12, D))
    assert r.load_balance_loss.item() == pytest.approx(1.0, abs=1e-6)
    assert r.z_loss.item() == pytest.approx(torch.log(torch.tensor(float(E))).item() ** 2, rel=1e-5)
    # balanced and confident (each expert gets 1/E of tokens) vs. all tokens on one expert
    x = torch.eye(E, D).repeat(3, 1)[None] * 10
    with torch.no_grad():
        moe.router.weight.copy_(torch.eye(E, D))
    _, balanced = moe(x)
    assert torch.allclose(balanced.expert_load, torch.full((E,), 1 / E))
    with torch.no_grad():
        moe.router.weight.zero_()
        moe.router.weight[0, :E] = 1.0
    _, skewed = moe(x)
    assert skewed.expert_load[0].item() == 1.0
    assert skewed.load_balance_loss.item() > balanced.load_balance_loss.item() + 0.5


def test_padding_is_left_out_of_routing_statistics() -> None:
    torch.manual_seed(0)
    moe = SparseMoE(D, HIDDEN, E, 2)
    real = torch.randn(1, 10, D)
    padded = torch.cat([real, 50 * torch.randn(1, 6, D)], dim=1)
    mask = torch.arange(16)[None] < 10
    out_real, r_real = moe(real)
    out_pad, r_pad = moe(padded, mask)
    assert torch.allclose(r_pad.expert_load, r_real.expert_load)
    assert torch.allclose(r_pad.load_balance_loss, r_real.load_balance_loss, atol=1e-6)
    assert torch.allclose(r_pad.z_loss, r_real.z_loss, atol=1e-5)
    assert torch.allclose(out_pad[:, :10], out_real, atol=1e-6)
    assert torch.all(out_pad[:, 10:] == 0)


def test_every_expert_gets_a_gradient_even_without_tokens() -> None:
    torch.manual_seed(0)
    moe = SparseMoE(D, HIDDEN, E, 1)
    with torch.no_grad():
        moe.router.weight.zero_()
        moe.router.weight[0] = 5.0  # with positive inputs every token picks expert 0
    x = torch.rand(2, 8, D) + 0.1
    out, r = moe(x)
    assert torch.all(r.selected_experts == 0)
    (out.square().sum() + r.load_balance_loss + r.z_loss).backward()
    for p in moe.parameters():
        assert p.grad is not None
    g = moe.experts.gate_proj.grad
    assert g[0].abs().sum() > 0 and torch.all(g[1:] == 0)
    assert moe.router.weight.grad.abs().sum() > 0


@pytest.mark.gpu
def test_cuda_bf16_auto_dispatch_matches_segments() -> None:
    torch.manual_seed(0)
    moe = SparseMoE(64, 128, E, 2).cuda().to(torch.bfloat16)
    x = torch.randn(2, 32, 64, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    grouped_expected = hasattr(F, "grouped_mm") and torch.cuda.get_device_capability() >= (8, 0)
    assert moe.experts._use_grouped(x) == grouped_expected
    results = []
    for dispatch in ("auto", "segments"):
        moe.experts.dispatch = dispatch
        x.grad = None
        out, _ = moe(x)
        out.float().square().sum().backward()
        results.append((out.float(), x.grad.float()))
    for a, b in zip(*results, strict=True):
        assert torch.allclose(a, b, rtol=3e-2, atol=3e-2)


def test_cpu_dispatch_compiles_to_one_graph() -> None:
    """torch.compile(fullgraph=True) traces the MoE block, forward and backward, without a graph
    break: the per-expert segment sizes become symbolic sizes, not a host round trip."""
    torch.manual_seed(0)
    moe = SparseMoE(D, HIDDEN, E, 2)
    x = torch.randn(2, 11, D, requires_grad=True)
    compiled = torch.compile(moe, fullgraph=True, backend="aot_eager")
    results = []
    for module in (moe, compiled):
        x.grad = None
        out, _ = module(x)
        out.square().sum().backward()
        results.append((out.detach(), x.grad.clone()))
    for a, b in zip(*results, strict=True):
        assert torch.allclose(a, b, atol=1e-6)
    assert compiled(torch.randn(3, 5, D))[0].shape == (3, 5, D)  # other shapes and routings
