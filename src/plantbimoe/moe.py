"""Sparse Mixture-of-Experts feed-forward block with a top-k softmax router.

Dispatch: the (token, slot) assignments are sorted by expert (a stable argsort on the device), so
every expert's tokens form one contiguous segment of a gathered (tokens * k, d) matrix; each
expert then runs as one batched matmul over its segment, and the outputs are gathered back to
token order and mixed with the routing weights. No per-token Python work, no token dropping.

- "grouped" (default on CUDA with bf16 compute, SM >= 80 and sizes divisible by 8, when
  `torch.nn.functional.grouped_mm` exists): the three projections are grouped GEMMs over
  device-side segment offsets, so the block never synchronises with the host.
- "segments" (default elsewhere, e.g. CPU, where a host read costs nothing): the segment sizes are
  read once per layer (one ``.tolist()`` of E integers) and each expert is an ``F.linear`` call.
  ``torch.compile(fullgraph=True)`` traces it as one graph, forward and backward, with the sizes
  as symbolic values (a test checks). "grouped" also runs on CPU in fp32 at the same speed
  (``benchmarks/moe.py``), but torch 2.13's tracing kernel of ``grouped_mm`` accepts bf16 only.

Expert weights are stacked: one Parameter per projection of shape (E, out, in), in ``nn.Linear``
layout, so every expert's parameters receive a gradient (zero where it got no token) every step
and DDP needs no ``find_unused_parameters``. Padding tokens are routed like any token but their
weights are zeroed (zero FFN output) and they are left out of the routing statistics.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class RouterOutput:
    """Routing of one MoE layer; token dimension = batch * length flattened, padding included."""

    router_logits: torch.Tensor  # (tokens, E) float32
    selected_experts: torch.Tensor  # (tokens, k) long, in descending probability
    routing_weights: torch.Tensor  # (tokens, k) weights applied to the expert outputs; 0 at padding
    expert_load: torch.Tensor  # (E,) fraction of real (token, slot) assignments per expert
    load_balance_loss: torch.Tensor  # scalar, Switch: E * sum_e f_e * P_e over real tokens
    z_loss: torch.Tensor  # scalar, mean over real tokens of logsumexp(logits)^2
    token_mask: torch.Tensor | None  # (tokens,) bool, True = real token; None = all real


class StackedExperts(nn.Module):
    """E SwiGLU experts with stacked weights gate_proj/up_proj (E, I, d) and down_proj (E, d, I)."""

    def __init__(self, num_experts: int, d_model: int, intermediate_size: int, dispatch: str = "auto"):
        super().__init__()
        if dispatch not in ("auto", "grouped", "segments"):
            raise ValueError(f"dispatch must be 'auto', 'grouped' or 'segments', got {dispatch!r}")
        self.num_experts = num_experts
        self.dispatch = dispatch
        self.gate_proj = nn.Parameter(torch.empty(num_experts, intermediate_size, d_model))
        self.up_proj = nn.Parameter(torch.empty(num_experts, intermediate_size, d_model))
        self.down_proj = nn.Parameter(torch.empty(num_experts, d_model, intermediate_size))
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """nn.Linear's default per expert: U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
        for w in (self.gate_proj, self.up_proj, self.down_proj):
            bound = 1.0 / math.sqrt(w.shape[-1])
            nn.init.uniform_(w, -bound, bound)

    def _compute_dtype(self, x: torch.Tensor) -> torch.dtype:
        dev = x.device.type
        return torch.get_autocast_dtype(dev) if torch.is_autocast_enabled(dev) else x.dtype

    def _use_grouped(self, x: torch.Tensor) -> bool:
        if self.dispatch != "auto":
            return self.dispatch == "grouped"
        return (
            hasattr(F, "grouped_mm")
            and x.is_cuda
            and self._compute_dtype(x) == torch.bfloat16
            and torch.cuda.get_device_capability(x.device) >= (8, 0)
            and x.shape[-1] % 8 == 0  # grouped-GEMM kernels need 16-byte aligned rows
            and self.gate_proj.shape[1] % 8 == 0
        )

    def _segments_ffn(self, xs: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        sizes = counts.tolist()  # the one host sync of this path
        weights = zip(self.gate_proj, self.up_proj, self.down_proj, strict=True)
        parts = [
            F.linear(F.silu(F.linear(seg, g)) * F.linear(seg, u), d)
            for seg, (g, u, d) in zip(xs.split(sizes), weights, strict=True)
        ]
        return torch.cat(parts)

    def _grouped_ffn(self, xs: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        offs = counts.cumsum(0).to(torch.int32)
        dtype = self._compute_dtype(xs)

        def mm(a: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
            return F.grouped_mm(a.to(dtype), w.to(dtype).transpose(1, 2), offs=offs)

        return mm(F.silu(mm(xs, self.gate_proj)) * mm(xs, self.up_proj), self.down_proj)

    def forward(self, x: torch.Tensor, experts: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """x (N, d), experts (N, k) long, weights (N, k) -> sum_j weights[:, j] * expert_j(x)."""
        n, k = experts.shape
        flat = experts.reshape(-1)
        order = flat.argsort(stable=True)  # (N*k,) slots grouped by expert
        xs = x.index_select(0, order // k)
        counts = torch.zeros(self.num_experts, dtype=torch.long, device=x.device)
        counts.index_add_(0, flat, torch.ones_like(flat))
        ys = self._grouped_ffn(xs, counts) if self._use_grouped(x) else self._segments_ffn(xs, counts)
        inverse = torch.empty_like(order).scatter_(0, order, torch.arange(n * k, device=x.device))
        ys = ys.to(x.dtype).index_select(0, inverse).view(n, k, -1)
        return (ys * weights[..., None]).sum(1)


class SparseMoE(nn.Module):
    """Top-k routed SwiGLU experts; the router (its matmul too) and its softmax run in float32.

    Top-k weights are the raw softmax probabilities (as the released model) unless ``renormalize``.
    """

    def __init__(
        self, d_model: int, intermediate_size: int, num_experts: int, top_k: int, renormalize: bool = False
    ) -> None:
        super().__init__()
        if not 1 <= top_k <= num_experts:
            raise ValueError(f"top_k must be in 1..num_experts ({num_experts}), got {top_k}")
        self.num_experts = num_experts
        self.top_k = top_k
        self.renormalize = renormalize
        self.router = nn.Linear(d_model, num_experts, bias=False)
        self.experts = StackedExperts(num_experts, d_model, intermediate_size)

    def forward(
        self, hidden: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, RouterOutput]:
        """hidden (b, L, d), attention_mask (b, L) -> output (b, L, d), RouterOutput."""
        x = hidden.reshape(-1, hidden.shape[-1])
        with torch.autocast(x.device.type, enabled=False):  # bf16 logits would flip close routing calls
            logits = F.linear(x.float(), self.router.weight.float())
        probs = logits.softmax(dim=-1)
        top_p, top_e = probs.topk(self.top_k, dim=-1)
        if self.renormalize:
            top_p = top_p / top_p.sum(dim=-1, keepdim=True)
        real = None if attention_mask is None else attention_mask.reshape(-1).to(torch.bool)
        if real is not None:
            top_p = top_p * real[:, None]
        weights = top_p.to(x.dtype)
        out = self.experts(x, top_e, weights).view_as(hidden)
        load, lb, z = self._statistics(logits, probs, top_e, real)
        return out, RouterOutput(logits, top_e, weights, load, lb, z, real)

    def _statistics(
        self, logits: torch.Tensor, probs: torch.Tensor, top_e: torch.Tensor, real: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        w = torch.ones_like(probs[:, 0]) if real is None else real.to(probs.dtype)
        n_real = w.sum().clamp(min=1.0)
        slots = torch.zeros(self.num_experts, dtype=probs.dtype, device=probs.device)
        slots.index_add_(0, top_e.reshape(-1), w.repeat_interleave(self.top_k))
        load = slots / (n_real * self.top_k)  # f_e, no gradient (from discrete choices)
        mean_prob = (probs * w[:, None]).sum(0) / n_real  # P_e
        lb = self.num_experts * (load * mean_prob).sum()
        z = (torch.logsumexp(logits, dim=-1).square() * w).sum() / n_real
        return load.detach(), lb, z
