"""Pure-PyTorch chunked selective scan (the ``torch`` backend): CPU and GPU, differentiable.

Recurrence, per channel d and state n: ``h_t = exp(dt_t A) h_{t-1} + x_t B_t``, ``y_t = C_t . h_t``
(``x = dt * u``; softplus, D skip and z gate stay outside, under autograd). Tensors are
token-major here: dt, x, y (b, L, d_inner); B, C (b, L, d_state).

Algorithm: the sequence is cut into chunks of ``chunk_size`` steps. Per chunk the decays and drives
are built in a (b, chunk, d_state, d_inner) buffer that stays in cache, the recurrence runs as one
in-place ``addcmul_`` per step over that buffer, and the contraction with C is one batched matmul.
Only decays ``exp(dt A) <= 1`` are exponentiated (no cumulative-sum factorisation, no rebasing), so
nothing can overflow, whatever ``dt * |A|`` is. Memory is O(L * d_inner) plus one chunk; the full
(b, L, d_inner, d_state) tensor never exists.

The backward is hand written (``_ChunkedScan``): the forward keeps only the state at each segment
start, the backward walks the chunks in reverse, recomputes their states and runs the adjoint
recurrence ``g_t = C_t dy_t + exp(dt_{t+1} A) g_{t+1}`` on the same buffers. A segment is one chunk
by default; ``checkpoint_segment`` (a multiple of ``chunk_size``) keeps fewer states for long
sequences, at the cost of recomputing the segment's chunk-start states once more.
"""

from __future__ import annotations

import math

import torch

CHUNK_SIZE: int = 16
"""Default number of steps per chunk (module-level setting, read at call time)."""

CHECKPOINT_SEGMENT: int | None = None
"""Default steps between states kept for the backward; None keeps one per chunk."""

LOG2_E = math.log2(math.e)


def _bmm_into(out: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> None:
    """``out = a @ b`` for 3-d a, b; out is a (possibly strided) view with the product's numel."""
    if out.is_contiguous():
        torch.bmm(a, b, out=out.view(a.shape[0], a.shape[1], b.shape[2]))
    else:
        out.copy_(torch.bmm(a, b).view(out.shape))


def _chunk_view(flat: torch.Tensor, b: int, t: int) -> torch.Tensor:
    """A contiguous (b, t, n, d) view at the start of a flat chunk buffer of shape (T * b, n, d)."""
    return flat[: b * t].view(b, t, *flat.shape[1:])


def _chunk_states(
    dt: torch.Tensor,
    x: torch.Tensor,
    B: torch.Tensor,
    At2: torch.Tensor,
    h0: torch.Tensor,
    a: torch.Tensor,
    h: torch.Tensor,
) -> None:
    """Fill ``a`` with the decays and ``h`` with the states of one chunk.

    dt, x: (b, t, d); B: (b, t, n); At2 = A^T * log2(e): (n, d); h0: (b, n, d);
    a, h: (b, t, n, d) outputs. ``exp2`` is about twice as fast as ``exp`` on CPU.
    """
    torch.mul(dt.unsqueeze(2), At2, out=a).exp2_()
    torch.mul(B.unsqueeze(3), x.unsqueeze(2), out=h)
    hs, as_ = h.unbind(1), a.unbind(1)
    hs[0].addcmul_(as_[0], h0)
    for i in range(1, len(hs)):
        hs[i].addcmul_(as_[i], hs[i - 1])


def _scan_forward(
    dt: torch.Tensor,
    x: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    A: torch.Tensor,
    chunk: int,
    save_every: int | None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """y (b, L, d) and, when ``save_every`` is set, the states at every ``save_every``-th step."""
    b, L, d = dt.shape
    n = A.shape[1]
    At2 = A.t() * LOG2_E
    y = torch.empty_like(dt)
    a_buf, h_buf = (dt.new_empty(b * min(chunk, L), n, d) for _ in range(2))
    saved = None if save_every is None else dt.new_empty(-(-L // save_every), b, n, d)
    h0 = dt.new_zeros(b, n, d)
    for s in range(0, L, chunk):
        e = min(s + chunk, L)
        t = e - s
        if saved is not None and s % save_every == 0:
            h0 = saved[s // save_every].copy_(h0)
        h = _chunk_view(h_buf, b, t)
        _chunk_states(dt[:, s:e], x[:, s:e], B[:, s:e], At2, h0, _chunk_view(a_buf, b, t), h)
        _bmm_into(y[:, s:e], C[:, s:e].reshape(b * t, 1, n), h.view(b * t, n, d))
        h0 = h[:, -1].clone()
    return y, saved


def _scan_backward(
    gy: torch.Tensor,
    dt: torch.Tensor,
    x: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    A: torch.Tensor,
    saved: torch.Tensor,
    chunk: int,
    save_every: int,
) -> tuple[torch.Tensor, ...]:
    """Gradients of ``_scan_forward`` w.r.t. dt (through the decay only), x, A, B and C."""
    b, L, d = dt.shape
    n = A.shape[1]
    At, At2 = A.t(), A.t() * LOG2_E
    d_dt, dx = torch.empty_like(dt), torch.empty_like(x)
    dB, dC = torch.empty_like(B), torch.empty_like(C)
    a_buf, h_buf, g_buf = (dt.new_empty(b * min(chunk, L), n, d) for _ in range(3))
    dA_acc = torch.zeros_like(a_buf)
    carry = dt.new_zeros(b, n, d)  # exp(dt_s A) * g_s at the first step s of the later chunk
    for k in reversed(range(saved.shape[0])):
        starts = list(range(k * save_every, min((k + 1) * save_every, L), chunk))
        h0s = [saved[k]]
        for s in starts[:-1]:  # chunk-start states inside this segment (none for 1-chunk segments)
            e = s + chunk
            h = _chunk_view(h_buf, b, chunk)
            _chunk_states(dt[:, s:e], x[:, s:e], B[:, s:e], At2, h0s[-1], _chunk_view(a_buf, b, chunk), h)
            h0s.append(h[:, -1].clone())
        for s, h0 in zip(reversed(starts), reversed(h0s), strict=True):
            e = min(s + chunk, L)
            t, bt = e - s, b * (e - s)
            at, ht, gt = (_chunk_view(buf, b, t) for buf in (a_buf, h_buf, g_buf))
            _chunk_states(dt[:, s:e], x[:, s:e], B[:, s:e], At2, h0, at, ht)
            torch.mul(C[:, s:e].unsqueeze(3), gy[:, s:e].unsqueeze(2), out=gt)
            gs, as_ = gt.unbind(1), at.unbind(1)
            gs[-1].add_(carry)
            for i in range(t - 2, -1, -1):
                gs[i].addcmul_(as_[i + 1], gs[i + 1])
            # row vector @ matrix: ~10x faster on CPU than matrix @ column vector
            _bmm_into(dC[:, s:e], gy[:, s:e].reshape(bt, 1, d), ht.view(bt, n, d).mT)
            _bmm_into(dx[:, s:e], B[:, s:e].reshape(bt, 1, n), gt.view(bt, n, d))
            _bmm_into(dB[:, s:e], x[:, s:e].reshape(bt, 1, d), gt.view(bt, n, d).mT)
            q = at.mul_(gt)  # d loss / d (dt A) = g_t * a_t * h_{t-1}
            carry = q[:, 0].clone()
            q[:, 1:].mul_(ht[:, :-1])
            q[:, 0].mul_(h0)
            _chunk_view(dA_acc, b, t).addcmul_(q, dt[:, s:e].unsqueeze(2))
            d_dt[:, s:e] = q.mul_(At).sum(2)
    return d_dt, dx, dA_acc.sum(0).t(), dB, dC


class _ChunkedScan(torch.autograd.Function):
    """Chunked scan with a hand-written backward that recomputes states chunk by chunk."""

    @staticmethod
    def forward(ctx, dt, x, A, B, C, chunk: int, save_every: int):  # type: ignore[override]
        dt, x, B, C = dt.contiguous(), x.contiguous(), B.contiguous(), C.contiguous()
        y, saved = _scan_forward(dt, x, B, C, A, chunk, save_every)
        ctx.save_for_backward(dt, x, A, B, C, saved)
        ctx.chunk, ctx.save_every = chunk, save_every
        return y

    @staticmethod
    def backward(ctx, gy):  # type: ignore[override]
        dt, x, A, B, C, saved = ctx.saved_tensors
        grads = _scan_backward(gy.contiguous(), dt, x, B, C, A, saved, ctx.chunk, ctx.save_every)
        return *grads, None, None


def chunked_scan(
    dt: torch.Tensor,
    x: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    chunk_size: int | None = None,
    checkpoint_segment: int | None = None,
) -> torch.Tensor:
    """``y_t = C_t . h_t`` for ``h_t = exp(dt_t A) h_{t-1} + x_t B_t``, h_0 = 0, token-major.

    dt, x: (b, L, d_inner) (dt already softplus-ed, x = dt * u); A: (d_inner, d_state);
    B, C: (b, L, d_state); one float dtype (fp32 or fp64). Returns y (b, L, d_inner).
    ``chunk_size``/``checkpoint_segment`` default to ``CHUNK_SIZE``/``CHECKPOINT_SEGMENT``.
    """
    chunk = chunk_size or CHUNK_SIZE
    segment = checkpoint_segment or CHECKPOINT_SEGMENT or chunk
    if chunk < 1 or segment % chunk:
        raise ValueError(f"checkpoint_segment ({segment}) must be a multiple of chunk_size ({chunk}) >= 1")
    if torch.is_grad_enabled() and any(t.requires_grad for t in (dt, x, A, B, C)):
        return _ChunkedScan.apply(dt, x, A, B, C, chunk, segment)
    y, _ = _scan_forward(dt.contiguous(), x.contiguous(), B.contiguous(), C.contiguous(), A, chunk, None)
    return y
