"""Pure-PyTorch chunked selective scan (the ``torch`` backend): CPU and GPU, differentiable.

Per channel d and state n: ``dt = softplus(delta + delta_bias)``, ``h_t = exp(dt_t A) h_{t-1} +
dt_t u_t B_t``, ``y_t = (C_t . h_t + D u_t) * silu(z_t)``.

Algorithm: the sequence is cut into chunks of ``chunk_size`` steps. Per chunk the decays and drives
are built in a (b, chunk, d_state, d_inner) buffer that stays in cache, the recurrence runs as one
in-place ``addcmul_`` per step over that buffer, and the contraction with C is one batched matmul.
Only decays ``exp(dt A) <= 1`` are exponentiated (no cumulative-sum factorisation, no rebasing),
so nothing can overflow, whatever ``dt * |A|`` is. The elementwise work (softplus, D skip, gate
and their gradients) runs per block of ``BLOCK_SIZE`` steps. Memory is O(L * d_inner) plus one
chunk: the (b, L, d_inner, d_state) tensor never exists.

The backward is hand written (``_ChunkedScan``): the forward keeps the inputs and the state at
each chunk start; the backward walks the chunks in reverse, recomputes their states and runs the
adjoint recurrence ``g_t = C_t dy_t + exp(dt_{t+1} A) g_{t+1}`` on the same buffers. With
``checkpoint_segment`` (a multiple of ``chunk_size``) only one state per segment is kept and the
backward recomputes each segment's chunk-start states once more. Internally everything is
token-major: (b, L, d_inner) and (b, L, d_state).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F

CHUNK_SIZE: int = 16
"""Default number of steps per chunk (module-level setting, read at call time)."""

CHECKPOINT_SEGMENT: int | None = None
"""Default steps between states kept for the backward; None keeps one per chunk."""

BLOCK_SIZE: int = 256
"""Steps whose elementwise work (softplus, D skip, gate and their gradients) runs as one op."""

LOG2_E = math.log2(math.e)
Tensor = torch.Tensor


class _Scan(NamedTuple):
    """Token-major inputs and options of one scan call."""

    u: Tensor  # (b, L, d)
    delta: Tensor  # (b, L, d)
    A: Tensor  # (d, n)
    B: Tensor  # (b, L, n)
    C: Tensor  # (b, L, n)
    D: Tensor | None  # (d,)
    z: Tensor | None  # (b, L, d)
    bias: Tensor | None  # (d,)
    softplus: bool
    chunk: int

    def drive(self, s0: int, s1: int) -> tuple[Tensor, Tensor, Tensor]:
        """Pre-activation, dt = softplus(delta + bias) and x = dt * u for steps [s0, s1)."""
        pre = self.delta[:, s0:s1] + self.bias if self.bias is not None else self.delta[:, s0:s1]
        dt = F.softplus(pre) if self.softplus else pre
        return pre, dt, dt * self.u[:, s0:s1]

    def blocks(self) -> list[tuple[int, int]]:
        """[start, end) of each block: BLOCK_SIZE steps rounded up to whole chunks."""
        L, step = self.u.shape[1], -(-BLOCK_SIZE // self.chunk) * self.chunk
        return [(s, min(s + step, L)) for s in range(0, L, step)]


def _token_major(t: Tensor) -> Tensor:
    """(b, c, L) -> (b, L, c) with contiguous rows: a view when the rows already are (e.g. a slice
    of a linear layer's output), else one 2-d transpose per batch element (torch's blocked 2-d
    transpose is ~2x faster than a permuted 3-d copy)."""
    tt = t.transpose(1, 2)
    if tt.stride(-1) == 1 or tt.shape[-1] == 1:
        return tt
    out = t.new_empty(tt.shape)
    for i in range(t.shape[0]):
        out[i].copy_(t[i].t())
    return out


def _bmm_into(out: Tensor, a: Tensor, b: Tensor) -> None:
    """``out = a @ b`` (3-d a, b) into ``out``, a possibly strided view with the product's numel."""
    if out.is_contiguous():
        torch.bmm(a, b, out=out.view(a.shape[0], a.shape[1], b.shape[2]))
    else:
        out.copy_(torch.bmm(a, b).view(out.shape))


def _a_t2(A: Tensor) -> Tensor:
    """A^T * log2(e) as a contiguous (n, d) tensor (a strided one makes every decay product ~5x slower)."""
    return (A.t() * LOG2_E).contiguous()


def _chunk_view(flat: Tensor, b: int, t: int) -> Tensor:
    """A contiguous (b, t, n, d) view at the start of a flat (T * b, n, d) chunk buffer."""
    return flat[: b * t].view(b, t, *flat.shape[1:])


def _chunk_states(dt: Tensor, x: Tensor, B: Tensor, At2: Tensor, h0: Tensor, a: Tensor, h: Tensor) -> None:
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


def _c_dot_h(out: Tensor, C: Tensor, h: Tensor) -> None:
    """``out = C . h`` for one chunk (out: (b, t, d); C: (b, t, n); h: (b, t, n, d))."""
    b, t, n, d = h.shape
    _bmm_into(out, C.reshape(b * t, 1, n), h.view(b * t, n, d))


def _scan_forward(p: _Scan, save_every: int | None) -> tuple[Tensor, Tensor | None]:
    """Output (b, L, d) and, when ``save_every`` is set, the states at every ``save_every``-th step."""
    b, L, d = p.u.shape
    n, chunk = p.A.shape[1], p.chunk
    At2 = _a_t2(p.A)
    out = torch.empty_like(p.u)
    a_buf, h_buf = (p.u.new_empty(b * min(chunk, L), n, d) for _ in range(2))
    saved = None if save_every is None else p.u.new_empty(-(-L // save_every), b, n, d)
    h0 = p.u.new_zeros(b, n, d)
    for s0, s1 in p.blocks():
        _, dt, x = p.drive(s0, s1)
        for s in range(s0, s1, chunk):
            e = min(s + chunk, s1)
            i, j = s - s0, e - s0
            if saved is not None and s % save_every == 0:
                h0 = saved[s // save_every].copy_(h0)
            h = _chunk_view(h_buf, b, j - i)
            _chunk_states(dt[:, i:j], x[:, i:j], p.B[:, s:e], At2, h0, _chunk_view(a_buf, b, j - i), h)
            _c_dot_h(out[:, s:e], p.C[:, s:e], h)
            h0 = h[:, -1].clone()
        y = out[:, s0:s1]
        if p.D is not None:
            y.addcmul_(p.u[:, s0:s1], p.D)
        if p.z is not None:
            y.mul_(F.silu(p.z[:, s0:s1]))
    return out, saved


def _chunk_adjoint(
    gy: Tensor,
    B: Tensor,
    C: Tensor,
    x: Tensor,
    dt: Tensor,
    At: Tensor,
    h0: Tensor,
    bufs: tuple[Tensor, Tensor, Tensor],
    carry: Tensor,
    grads: tuple[Tensor, ...],
) -> Tensor:
    """Backward of one chunk, given its decays and states ``bufs = (a, h, g)`` (all overwritten).

    gy, x, dt: (b, t, d); B, C: (b, t, n). Writes the chunk views ``grads = (dB, dC, dx, ddt,
    dA_acc)`` (ddt through the decays only; dA_acc accumulates) and returns the carry into the
    previous chunk.
    """
    a, h, g = bufs
    dB, dC, dx, ddt, dA_acc = grads
    b, t, n, d = a.shape
    torch.mul(C.unsqueeze(3), gy.unsqueeze(2), out=g)
    gs, as_ = g.unbind(1), a.unbind(1)
    gs[-1].add_(carry)
    for i in range(t - 2, -1, -1):
        gs[i].addcmul_(as_[i + 1], gs[i + 1])
    g2, h2 = g.view(b * t, n, d), h.view(b * t, n, d)
    # row vector @ matrix: ~10x faster on CPU than matrix @ column vector
    _bmm_into(dC, gy.reshape(b * t, 1, d), h2.mT)
    _bmm_into(dB, x.reshape(b * t, 1, d), g2.mT)
    _bmm_into(dx, B.reshape(b * t, 1, n), g2)
    q = a.mul_(g)  # d loss / d (dt A) = g_t * a_t * h_{t-1}
    carry = q[:, 0].clone()
    q[:, 1:].mul_(h[:, :-1])
    q[:, 0].mul_(h0)
    dA_acc.addcmul_(q, dt.unsqueeze(2))
    ddt.copy_(q.mul_(At).sum(2))
    return carry


def _segment_starts(
    p: _Scan, saved: Tensor, save_every: int, k: int, a: Tensor, h: Tensor
) -> dict[int, Tensor]:
    """Chunk-start states of checkpoint segment ``k``, recomputed from its saved start state."""
    s0, s1 = k * save_every, min((k + 1) * save_every, p.u.shape[1])
    b, chunk = p.u.shape[0], p.chunk
    _, dt, x = p.drive(s0, s1)
    At2 = _a_t2(p.A)
    starts = {s0: saved[k]}
    for s in range(s0, s1 - chunk, chunk):
        i = s - s0
        hv = _chunk_view(h, b, chunk)
        x_in = (dt[:, i : i + chunk], x[:, i : i + chunk], p.B[:, s : s + chunk], At2, starts[s])
        _chunk_states(*x_in, _chunk_view(a, b, chunk), hv)
        starts[s + chunk] = hv[:, -1].clone()
    return starts


def _scan_backward(p: _Scan, gout: Tensor, saved: Tensor, save_every: int) -> tuple[Tensor | None, ...]:
    """Gradients of ``_scan_forward``'s output w.r.t. u, delta, A, B, C, D, z, bias (token-major),
    block by block from the end; each block's elementwise gradients are computed at once."""
    b, L, d = p.u.shape
    n, chunk = p.A.shape[1], p.chunk
    At, At2 = p.A.t().contiguous(), _a_t2(p.A)
    du, ddelta, dB, dC = (torch.empty_like(t) for t in (p.u, p.delta, p.B, p.C))
    dz = torch.empty_like(p.z) if p.z is not None else None
    dD, dbias = (p.u.new_zeros(d) if t is not None else None for t in (p.D, p.bias))
    a_buf, h_buf, g_buf = (p.u.new_empty(b * min(chunk, L), n, d) for _ in range(3))
    dA_acc = torch.zeros_like(a_buf)
    carry = p.u.new_zeros(b, n, d)  # exp(dt_s A) * g_s at the first step s of the later chunk
    cache: dict[int, Tensor] = {}
    for s0, s1 in reversed(p.blocks()):
        starts = list(range(s0, s1, chunk))
        if save_every == chunk:
            h0s = [saved[s // chunk] for s in starts]
        else:
            h0s = []
            for s in starts:
                if s not in cache:  # recompute the whole checkpoint segment once
                    cache = _segment_starts(p, saved, save_every, s // save_every, a_buf, h_buf)
                h0s.append(cache[s])
        uc, gy = p.u[:, s0:s1], gout[:, s0:s1]
        pre, dt, x = p.drive(s0, s1)
        if p.z is not None:
            zc = p.z[:, s0:s1]
            sz = torch.sigmoid(zc)
            y = torch.empty_like(uc)  # the output before the gate, recomputed per chunk
            gy = gy * zc * sz
        dx, ddt = torch.empty_like(uc), torch.empty_like(uc)
        for s, h0 in zip(reversed(starts), reversed(h0s), strict=True):
            e = min(s + chunk, s1)
            i, j = s - s0, e - s0
            bufs = tuple(_chunk_view(buf, b, j - i) for buf in (a_buf, h_buf, g_buf))
            _chunk_states(dt[:, i:j], x[:, i:j], p.B[:, s:e], At2, h0, *bufs[:2])
            if p.z is not None:
                _c_dot_h(y[:, i:j], p.C[:, s:e], bufs[1])
            grads = (dB[:, s:e], dC[:, s:e], dx[:, i:j], ddt[:, i:j], _chunk_view(dA_acc, b, j - i))
            chunk_in = (gy[:, i:j], p.B[:, s:e], p.C[:, s:e], x[:, i:j], dt[:, i:j], At, h0)
            carry = _chunk_adjoint(*chunk_in, bufs, carry, grads)
        if p.z is not None:
            if p.D is not None:
                y.addcmul_(uc, p.D)
            dz[:, s0:s1] = gout[:, s0:s1] * y * sz * (1 + zc * (1 - sz))
        duc = dx * dt
        if p.D is not None:
            duc.addcmul_(gy, p.D)
            dD += (gy * uc).sum((0, 1))
        du[:, s0:s1] = duc
        ddt.addcmul_(dx, uc)
        if p.softplus:  # the derivative F.softplus uses (exactly 1 above its threshold of 20)
            ddt = torch.ops.aten.softplus_backward(ddt, pre, 1.0, 20.0)
        ddelta[:, s0:s1] = ddt
        if dbias is not None:
            dbias += ddt.sum((0, 1))
    return du, ddelta, dA_acc.sum(0).t(), dB, dC, dD, dz, dbias


def _prepare(*args: Tensor | None, softplus: bool, chunk: int) -> _Scan:
    """``_Scan`` of mamba-layout (u, delta, A, B, C, D, z, bias), with token-major views or copies."""
    u, delta, A, B, C, D, z, bias = args
    z = _token_major(z) if z is not None else None
    return _Scan(
        _token_major(u), _token_major(delta), A, _token_major(B), _token_major(C), D, z, bias, softplus, chunk
    )


class _ChunkedScan(torch.autograd.Function):
    """Chunked scan with a hand-written backward that recomputes states chunk by chunk."""

    @staticmethod
    def forward(ctx, u, delta, A, B, C, D, z, bias, softplus, chunk, save_every):  # type: ignore[override]
        p = _prepare(u, delta, A, B, C, D, z, bias, softplus=softplus, chunk=chunk)
        out, saved = _scan_forward(p, save_every)
        ctx.save_for_backward(*p[:8], saved)
        ctx.args = (softplus, chunk, save_every)
        return out.transpose(1, 2)

    @staticmethod
    def backward(ctx, gout):  # type: ignore[override]
        *tensors, saved = ctx.saved_tensors
        softplus, chunk, save_every = ctx.args
        grads = _scan_backward(_Scan(*tensors, softplus, chunk), _token_major(gout), saved, save_every)
        du, ddelta, dA, dB, dC, dD, dz, dbias = (
            t.transpose(1, 2) if t is not None and t.dim() == 3 else t for t in grads
        )
        return du, ddelta, dA, dB, dC, dD, dz, dbias, None, None, None


def selective_scan_chunked(
    u: Tensor,
    delta: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    D: Tensor | None = None,
    z: Tensor | None = None,
    delta_bias: Tensor | None = None,
    delta_softplus: bool = True,
    chunk_size: int | None = None,
    checkpoint_segment: int | None = None,
) -> Tensor:
    """The ``torch`` backend, mamba-ssm layout: u, delta, z (b, d_inner, L); A (d_inner, d_state);
    B, C (b, d_state, L); D, delta_bias (d_inner,); one float dtype (fp32 or fp64).

    Returns (b, d_inner, L), a transposed view of a contiguous (b, L, d_inner) tensor (what an
    output projection wants). ``chunk_size``/``checkpoint_segment`` default to the module settings
    ``CHUNK_SIZE``/``CHECKPOINT_SEGMENT``.
    """
    chunk = chunk_size or CHUNK_SIZE
    segment = checkpoint_segment or CHECKPOINT_SEGMENT or chunk
    if chunk < 1 or segment % chunk:
        raise ValueError(f"checkpoint_segment ({segment}) must be a multiple of chunk_size ({chunk}) >= 1")
    args = (u, delta, A, B, C, D, z, delta_bias)
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in args):
        return _ChunkedScan.apply(*args, delta_softplus, chunk, segment)
    out, _ = _scan_forward(_prepare(*args, softplus=delta_softplus, chunk=chunk), None)
    return out.transpose(1, 2)
