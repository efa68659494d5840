"""Triton kernels of the ``triton`` scan backend (imported only when that backend runs).

One program per (block of ``BLOCK_D`` channels, batch row) walks the sequence in chunks of ``T``
steps. Per chunk it loads (BLOCK_D, T) tiles of u, delta (and z) and (N, T) tiles of B and C from
tensors of any strides, builds the decays a = exp(dt A) and drives dt u B as (BLOCK_D, N, T) tiles
and solves the recurrence h_t = a_t h_{t-1} + dt_t u_t B_t inside the chunk with an associative
scan over pairs (a, b) (``_combine``), starting from the state carried over from the previous chunk.
The state and all arithmetic are float32 (float64 for float64 inputs: ``TY``); d_state is padded
to N, a power of two (A, B, C zero there).

The forward keeps each chunk's start state when a backward will follow. The backward walks the
chunks from the end: it recomputes the chunk's states from the kept one, then runs the adjoint
g_t = C_t gy_t + a_{t+1} g_{t+1} as a reverse associative scan (a_{t+1} from a tile loaded one step
later), with g carried into the previous chunk. dB and dC are summed over channels with atomic adds
into (b, d_state, L) buffers of the compute type; dA, dD and d(bias) are written per batch row.
"""

from __future__ import annotations

import triton
import triton.language as tl

SOFTPLUS_THRESHOLD = tl.constexpr(20.0)
"""Above it softplus(x) = x and its derivative is 1 (torch's default)."""

COMPUTE_TYPES = {False: tl.float32, True: tl.float64}
"""The kernels' arithmetic and state type (``TY``), by whether the inputs are float64."""


@triton.jit
def _combine(a1, b1, a2, b2):  # type: ignore[no-untyped-def]
    """Compose two steps of h -> a h + b (the first, then the second)."""
    return a1 * a2, a2 * b1 + b2


@triton.jit
def _dt(v, SOFTPLUS: tl.constexpr):  # type: ignore[no-untyped-def]
    """dt = softplus(v) (or v) and its derivative; log1p through log(w) e / (w - 1) (exact to a
    few ulps in any precision)."""
    if SOFTPLUS:
        e = tl.exp(-tl.abs(v))
        w = 1.0 + e
        lp = tl.where(w == 1.0, e, tl.log(w) * (e / tl.where(w == 1.0, 1.0, w - 1.0)))
        dt = tl.where(v > SOFTPLUS_THRESHOLD, v, tl.maximum(v, 0.0) + lp)
        sig = tl.where(v > SOFTPLUS_THRESHOLD, 1.0, tl.where(v >= 0.0, 1.0, e) / w)
    else:
        dt = v
        sig = tl.full(v.shape, 1.0, v.dtype)
    return dt, sig


@triton.jit
def _tile(ptr, rows, cols, s_row, s_col, mask, TY: tl.constexpr):  # type: ignore[no-untyped-def]
    """ptr[rows, cols] (zero outside ``mask``) in the compute type ``TY``."""
    return tl.load(ptr + rows[:, None] * s_row + cols[None, :] * s_col, mask=mask, other=0.0).to(TY)


@triton.jit
def _per_channel(ptr, cs, mask, PRESENT: tl.constexpr, TY: tl.constexpr):  # type: ignore[no-untyped-def]
    """ptr[cs] in TY (zeros for an absent tensor)."""
    values = tl.zeros(cs.shape, TY)
    if PRESENT:
        values = tl.load(ptr + cs, mask=mask, other=0.0).to(TY)
    return values


@triton.jit
def _put(ptr, rows, cols, s_row, s_col, value, mask):  # type: ignore[no-untyped-def]
    """ptr[rows, cols] = value (cast to ptr's type) inside ``mask``."""
    tl.store(ptr + rows[:, None] * s_row + cols[None, :] * s_col, value.to(ptr.dtype.element_ty), mask=mask)


@triton.jit
def _chunk_states(dt, u, Bt, A, h0):  # type: ignore[no-untyped-def]
    """Decays a, drives x = dt u B and states h of one chunk, all (BLOCK_D, N, T), from h0."""
    a = tl.exp(dt[:, None, :] * A[:, :, None])
    x = (dt * u)[:, None, :] * Bt[None, :, :]
    prod, acc = tl.associative_scan((a, x), 2, _combine)
    return a, x, acc + prod * h0[:, :, None]


@triton.jit
def scan_forward(
    u_ptr, dl_ptr, z_ptr, B_ptr, C_ptr, A_ptr, D_ptr, bias_ptr, y_ptr, h_ptr,
    dim, length, nstate,
    su_b, su_d, su_t, sd_b, sd_d, sd_t, sz_b, sz_d, sz_t,
    sB_b, sB_n, sB_t, sC_b, sC_n, sC_t, sy_b, sy_d, sy_t,
    HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr,
    SAVE: tl.constexpr, TY: tl.constexpr, BLOCK_D: tl.constexpr, N: tl.constexpr, T: tl.constexpr,
):  # type: ignore[no-untyped-def]  # fmt: skip
    """y = (C.h + D u) * silu(z) for one channel block of one batch row; with SAVE, h_ptr
    (b, chunks, dim, nstate) gets the state before each chunk."""
    bi = tl.program_id(1).to(tl.int64)
    cs = tl.program_id(0) * BLOCK_D + tl.arange(0, BLOCK_D)
    ns = tl.arange(0, N)
    cm, nm = cs < dim, ns < nstate
    A = _tile(A_ptr, cs, ns, nstate, 1, cm[:, None] & nm[None, :], TY)
    Dv, bias = _per_channel(D_ptr, cs, cm, HAS_D, TY), _per_channel(bias_ptr, cs, cm, HAS_BIAS, TY)
    u_ptr, dl_ptr, z_ptr = u_ptr + bi * su_b, dl_ptr + bi * sd_b, z_ptr + bi * sz_b
    B_ptr, C_ptr, y_ptr = B_ptr + bi * sB_b, C_ptr + bi * sC_b, y_ptr + bi * sy_b
    h_ptr += bi * tl.cdiv(length, T) * dim * nstate
    h = tl.zeros((BLOCK_D, N), TY)
    for k in range(tl.cdiv(length, T)):
        ts = k * T + tl.arange(0, T)
        m = cm[:, None] & (ts < length)[None, :]
        mn = nm[:, None] & (ts < length)[None, :]
        if SAVE:
            _put(h_ptr + k * dim * nstate, cs, ns, nstate, 1, h, cm[:, None] & nm[None, :])
        u = _tile(u_ptr, cs, ts, su_d, su_t, m, TY)
        dt, sig = _dt(_tile(dl_ptr, cs, ts, sd_d, sd_t, m, TY) + bias[:, None], SOFTPLUS)
        Bt, Ct = _tile(B_ptr, ns, ts, sB_n, sB_t, mn, TY), _tile(C_ptr, ns, ts, sC_n, sC_t, mn, TY)
        a, x, hs = _chunk_states(dt, u, Bt, A, h)
        y = tl.sum(hs * Ct[None, :, :], axis=1) + Dv[:, None] * u
        if HAS_Z:
            zt = _tile(z_ptr, cs, ts, sz_d, sz_t, m, TY)
            y = y * zt / (1.0 + tl.exp(-zt))
        _put(y_ptr, cs, ts, sy_d, sy_t, y, m)
        h = tl.sum(tl.where((tl.arange(0, T) == T - 1)[None, None, :], hs, 0.0), axis=2)


@triton.jit
def scan_backward(
    u_ptr, dl_ptr, z_ptr, B_ptr, C_ptr, A_ptr, D_ptr, bias_ptr, g_ptr, h_ptr,
    du_ptr, ddl_ptr, dz_ptr, dB_ptr, dC_ptr, dA_ptr, dD_ptr, dbias_ptr,
    dim, length, nstate,
    su_b, su_d, su_t, sd_b, sd_d, sd_t, sz_b, sz_d, sz_t,
    sB_b, sB_n, sB_t, sC_b, sC_n, sC_t, sg_b, sg_d, sg_t,
    sdu_b, sdu_d, sdu_t, sdd_b, sdd_d, sdd_t, sdz_b, sdz_d, sdz_t,
    HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr,
    TY: tl.constexpr, BLOCK_D: tl.constexpr, N: tl.constexpr, T: tl.constexpr,
):  # type: ignore[no-untyped-def]  # fmt: skip
    """Gradients of ``scan_forward`` for one channel block of one batch row, from the output
    gradient g_ptr and the kept chunk-start states h_ptr. dB_ptr, dC_ptr: zeroed (b, nstate, L)
    sums in the compute type (atomic adds); dA_ptr (b, dim, nstate), dD_ptr and dbias_ptr
    (b, dim): per batch row."""
    bi = tl.program_id(1).to(tl.int64)
    cs = tl.program_id(0) * BLOCK_D + tl.arange(0, BLOCK_D)
    ns = tl.arange(0, N)
    cm, nm = cs < dim, ns < nstate
    cn = cm[:, None] & nm[None, :]
    A = _tile(A_ptr, cs, ns, nstate, 1, cn, TY)
    Dv, bias = _per_channel(D_ptr, cs, cm, HAS_D, TY), _per_channel(bias_ptr, cs, cm, HAS_BIAS, TY)
    u_ptr, dl_ptr, z_ptr = u_ptr + bi * su_b, dl_ptr + bi * sd_b, z_ptr + bi * sz_b
    B_ptr, C_ptr, g_ptr = B_ptr + bi * sB_b, C_ptr + bi * sC_b, g_ptr + bi * sg_b
    du_ptr, ddl_ptr, dz_ptr = du_ptr + bi * sdu_b, ddl_ptr + bi * sdd_b, dz_ptr + bi * sdz_b
    dB_ptr, dC_ptr = dB_ptr + bi * nstate * length, dC_ptr + bi * nstate * length
    chunks = tl.cdiv(length, T)
    h_ptr += bi * chunks * dim * nstate
    carry = tl.zeros((BLOCK_D, N), TY)  # g at the first step of the later chunk
    dA, dD, dbias = tl.zeros((BLOCK_D, N), TY), tl.zeros((BLOCK_D,), TY), tl.zeros((BLOCK_D,), TY)
    for kk in range(chunks):
        k = chunks - 1 - kk
        ts = k * T + tl.arange(0, T)
        m = cm[:, None] & (ts < length)[None, :]
        mn = nm[:, None] & (ts < length)[None, :]
        u = _tile(u_ptr, cs, ts, su_d, su_t, m, TY)
        dt, sig = _dt(_tile(dl_ptr, cs, ts, sd_d, sd_t, m, TY) + bias[:, None], SOFTPLUS)
        Bt, Ct = _tile(B_ptr, ns, ts, sB_n, sB_t, mn, TY), _tile(C_ptr, ns, ts, sC_n, sC_t, mn, TY)
        h0 = _tile(h_ptr + k * dim * nstate, cs, ns, nstate, 1, cn, TY)
        a, x, hs = _chunk_states(dt, u, Bt, A, h0)
        gy = _tile(g_ptr, cs, ts, sg_d, sg_t, m, TY)
        if HAS_Z:
            zt = _tile(z_ptr, cs, ts, sz_d, sz_t, m, TY)
            s = 1.0 / (1.0 + tl.exp(-zt))
            y = tl.sum(hs * Ct[None, :, :], axis=1) + Dv[:, None] * u
            dz = gy * y * s * (1.0 + zt * (1.0 - s))
            _put(dz_ptr, cs, ts, sdz_d, sdz_t, dz, m)
            gy = gy * zt * s
        dD += tl.sum(gy * u, axis=1)
        # decays one step later (zero past the end): the adjoint's multipliers
        m1 = cm[:, None] & (ts + 1 < length)[None, :]
        dt1, sig1 = _dt(_tile(dl_ptr, cs, ts + 1, sd_d, sd_t, m1, TY) + bias[:, None], SOFTPLUS)
        a1 = tl.where(m1[:, None, :], tl.exp(dt1[:, None, :] * A[:, :, None]), 0.0)
        prod, acc = tl.associative_scan((a1, Ct[None, :, :] * gy[:, None, :]), 2, _combine, reverse=True)
        g = acc + prod * carry[:, :, None]
        carry = tl.sum(tl.where((tl.arange(0, T) == 0)[None, None, :], g, 0.0), axis=2)
        nt = ns[:, None] * length + ts[None, :]
        tl.atomic_add(dC_ptr + nt, tl.sum(gy[:, None, :] * hs, axis=0), mask=mn)
        tl.atomic_add(dB_ptr + nt, tl.sum(g * (dt * u)[:, None, :], axis=0), mask=mn)
        dx = tl.sum(g * Bt[None, :, :], axis=1)
        q = g * (hs - x)  # g_t a_t h_{t-1}: d loss / d (dt_t A)
        dA += tl.sum(q * dt[:, None, :], axis=2)
        du = gy * Dv[:, None] + dx * dt
        ddl = tl.where(m, (tl.sum(q * A[:, :, None], axis=1) + dx * u) * sig, 0.0)
        dbias += tl.sum(ddl, axis=1)
        _put(du_ptr, cs, ts, sdu_d, sdu_t, du, m)
        _put(ddl_ptr, cs, ts, sdd_d, sdd_t, ddl, m)
    row = bi * dim + cs
    _put(dA_ptr, row, ns, nstate, 1, dA, cn)
    tl.store(dD_ptr + row, dD, mask=cm)
    tl.store(dbias_ptr + row, dbias, mask=cm)
