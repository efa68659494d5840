"""Numba kernels of the ``numba`` scan backend (compiled on first use, cached on disk).

Work is split into jobs of (batch row, block of ``BLOCK`` channels); a kernel call runs jobs
[j0, j1) without the GIL, so callers run several calls on threads. A call walks each of its batch
rows in tiles of steps: the tile's rows are gathered, over all the call's channels at once (long
contiguous reads), from arrays of any strides into contiguous buffers (zero past the last
channel); dt = softplus(delta + bias) is computed there; then each block runs the recurrence
over its own (d_state, BLOCK) state, which stays in L1 between tiles, in inner loops over the
block's channels that LLVM vectorises; the backward's adjoint loop takes the states two at a
time, so that each pass over the channels reads the step's gy, x and dt once for both.
Token-major indexing throughout: u, delta, z, y and their gradients are (batch, length, d_inner)
arrays, B, C (batch, length, d_state), A (d_inner, d_state). Activations and their gradients
may be stored as bf16 (uint16 bits): they are widened to float32 in the tile buffers and rounded
back when a tile is stored; A, D, bias, the saved states and the parameter gradients are always
in the compute type (float32, or float64).

exp2, log1p, typed constants and bf16 storage: see ``scan_numba_math``.
"""

from __future__ import annotations

import numpy as np
from numba import from_dtype, njit, types

from .scan_numba_math import (
    JIT,
    compute_type,
    consts,
    exp2,
    log1p_unit,
    stored,
    to_compute,
    unit_stride,
    zeros,
)

BLOCK = 128
"""Channels per job: the width of the vectorised inner loops. Long loops pay: each (step, state)
pair ends the backward's inner loop with two horizontal sums (the dB and dC contributions) and
each loop has its own entry checks, so 128 channels run the scan ~1.4x faster than 32 (forward,
and forward + backward at L 4,096, d_inner 1,024, one thread) while a block's state still fits in
L1 and its backward tile in L2."""

TILE = 32
"""Steps per backward tile: the forward keeps the state at every TILE-th step for the backward."""

STEP_TILE = 8
"""Steps per forward tile (divides TILE)."""


@njit(**JIT)
def _load(src, dst, bi, t0, nt, c0, w):  # type: ignore[no-untyped-def]
    """dst[:nt, :w] = src[bi, t0:t0+nt, c0:c0+w], reading along src's contiguous axis.

    Each row (or column) is sliced first and indexed from 0, so LLVM sees a plain loop without
    negative-index checks; a unit-stride row is retyped C-contiguous (``unit_stride``), which
    halves the time of a tile's loads against LLVM's own stride-1 versioning.
    """
    if src.strides[2] == src.itemsize:
        for t in range(nt):
            row, out = unit_stride(src[bi, t0 + t, c0 : c0 + w]), dst[t]
            for j in range(w):
                out[j] = to_compute(row[j])
    else:
        for j in range(w):
            col = src[bi, t0 : t0 + nt, c0 + j]
            for t in range(nt):
                dst[t, j] = to_compute(col[t])


@njit(**JIT)
def _store(src, dst, bi, t0, nt, c0, w):  # type: ignore[no-untyped-def]
    """dst[bi, t0:t0+nt, c0:c0+w] = src[:nt, :w] (dst is C-contiguous), row by row as in _load."""
    for t in range(nt):
        row, out = src[t], dst[bi, t0 + t, c0 : c0 + w]
        for j in range(w):
            out[j] = stored(row[j], out)


@njit(**JIT)
def _row_params(ins, j0, j1, bi, log2e):  # type: ignore[no-untyped-def]
    """The blocks of row ``bi`` among jobs [j0, j1) (job = row * n_blocks + block): first block,
    block count, first channel, channel count, and A^T, A^T log2 e (d_state, W), D, bias (W),
    zero past the last channel (W = blocks * BLOCK)."""
    bias, A, D = ins[2], ins[6], ins[7]
    d, n = A.shape
    nblk = (d + BLOCK - 1) // BLOCK
    blo, bhi = max(j0 - bi * nblk, 0), min(j1 - bi * nblk, nblk)
    c0 = blo * BLOCK
    wc = min(bhi * BLOCK, d) - c0
    W = (bhi - blo) * BLOCK
    an, a2 = zeros((n, W), A.dtype), zeros((n, W), A.dtype)
    Dw, bw = zeros(W, A.dtype), zeros(W, A.dtype)
    for j in range(wc):
        Dw[j], bw[j] = D[c0 + j], bias[c0 + j]
        for k in range(n):
            an[k, j] = A[c0 + j, k]
            a2[k, j] = A[c0 + j, k] * log2e
    return blo, bhi - blo, c0, wc, an, a2, Dw, bw


@njit(**JIT)
def _load_tile(ins, bi, t0, nt, c0, wc, bw, bufs, Bt, Ct, with_sig, c):  # type: ignore[no-untyped-def]
    """Gather a tile of a row's channels into bufs = (dt, dsoftplus, u, x = dt*u, z) and Bt, Ct;
    dt = softplus(delta + bias) (or delta + bias); dsoftplus only ``with_sig``."""
    u, delta, _, z, B, C, _, _, softplus, has_z = ins
    dt, sig, ut, xt, zt = bufs
    zero, one, log2e, threshold = c[0], c[1], c[2], c[3]
    _load(delta, dt, bi, t0, nt, c0, wc)
    _load(u, ut, bi, t0, nt, c0, wc)
    if has_z:
        _load(z, zt, bi, t0, nt, c0, wc)
    _load(B, Bt, bi, t0, nt, 0, B.shape[2])
    _load(C, Ct, bi, t0, nt, 0, C.shape[2])
    W = dt.shape[1]
    for t in range(nt):
        for j in range(W):
            x = dt[t, j] + bw[j]
            if softplus:
                e = exp2(-abs(x) * log2e)
                if with_sig:
                    sig[t, j] = one if x > threshold else (one if x >= zero else e) / (one + e)
                x = x if x > threshold else max(x, zero) + log1p_unit(e)
            elif with_sig:
                sig[t, j] = one
            dt[t, j] = x
            xt[t, j] = x * ut[t, j]


@njit(**JIT)
def _tile_buffers(rows, W, dtype):  # type: ignore[no-untyped-def]
    """Zeroed (dt, dsoftplus, u, x, z) buffers of (rows, W)."""
    return (
        zeros((rows, W), dtype), zeros((rows, W), dtype), zeros((rows, W), dtype),
        zeros((rows, W), dtype), zeros((rows, W), dtype),
    )  # fmt: skip


@njit(**JIT)
def forward_jobs(j0, j1, ins, y, hsave, save):  # type: ignore[no-untyped-def]
    """y = (C.h + D u) * silu(z) for jobs [j0, j1); with ``save``, hsave[b, i] = the state
    (d_state, d_inner) before step i * TILE."""
    u, A, has_z = ins[0], ins[6], ins[9]
    L, n = u.shape[1], A.shape[1]
    nblk = (u.shape[2] + BLOCK - 1) // BLOCK
    c = consts(A.dtype)
    one, log2e = c[1], c[2]
    Bt, Ct = zeros((STEP_TILE, n), A.dtype), zeros((STEP_TILE, n), A.dtype)
    for bi in range(j0 // nblk, (j1 - 1) // nblk + 1):
        blo, nb, c0, wc, _, a2, Dw, bw = _row_params(ins, j0, j1, bi, log2e)
        W = nb * BLOCK
        bufs = _tile_buffers(STEP_TILE, W, A.dtype)
        dt, ut, xt, zt = bufs[0], bufs[2], bufs[3], bufs[4]
        yt = zeros((STEP_TILE, W), A.dtype)
        h = zeros((nb, n, BLOCK), A.dtype)
        for t0 in range(0, L, STEP_TILE):
            nt = min(STEP_TILE, L - t0)
            if save and t0 % TILE == 0:
                for g in range(nb):
                    for k in range(n):
                        for j in range(min(BLOCK, wc - g * BLOCK)):
                            hsave[bi, t0 // TILE, k, c0 + g * BLOCK + j] = h[g, k, j]
            _load_tile(ins, bi, t0, nt, c0, wc, bw, bufs, Bt, Ct, False, c)
            for t in range(nt):
                for j in range(W):
                    yt[t, j] = Dw[j] * ut[t, j]
            for g in range(nb):
                hg, o = h[g], g * BLOCK
                for t in range(nt):
                    for k in range(n):
                        bk, ck = Bt[t, k], Ct[t, k]
                        for j in range(BLOCK):
                            hv = exp2(dt[t, o + j] * a2[k, o + j]) * hg[k, j] + xt[t, o + j] * bk
                            hg[k, j] = hv
                            yt[t, o + j] += ck * hv
            if has_z:
                for t in range(nt):
                    for j in range(W):
                        zz = zt[t, j]
                        yt[t, j] *= zz / (one + exp2(-zz * log2e))
            _store(yt, y, bi, t0, nt, c0, wc)


@njit(**JIT)
def backward_jobs(j0, j1, ins, gout, hsave, outs):  # type: ignore[no-untyped-def]
    """Gradients of ``forward_jobs`` for jobs [j0, j1), tiles of TILE steps from the end.

    Per tile and block: the states are recomputed from the saved tile-start state (decays and
    states kept in (TILE, d_state, BLOCK) buffers), then the adjoint g_t = C_t gy_t +
    exp(dt_{t+1} A) g_{t+1} runs backwards. ``outs`` = (du, ddelta, dz, dA[b], dD[b], dbias[b],
    dB[blk], dC[blk]): the last five are partial sums, summed by the caller.
    """
    du, ddelta, dz, dA, dD, dbias, dBp, dCp = outs
    u, A, has_z = ins[0], ins[6], ins[9]
    L, n = u.shape[1], A.shape[1]
    nblk = (u.shape[2] + BLOCK - 1) // BLOCK
    c = consts(A.dtype)
    zero, one, log2e = c[0], c[1], c[2]
    dxj, ddtj = zeros(BLOCK, A.dtype), zeros(BLOCK, A.dtype)
    hs, ab = zeros((TILE + 1, n, BLOCK), A.dtype), zeros((TILE, n, BLOCK), A.dtype)
    gy = zeros((TILE, BLOCK), A.dtype)
    Bt, Ct = zeros((TILE, n), A.dtype), zeros((TILE, n), A.dtype)
    for bi in range(j0 // nblk, (j1 - 1) // nblk + 1):
        blo, nb, c0, wc, an, a2, Dw, bw = _row_params(ins, j0, j1, bi, log2e)
        W = nb * BLOCK
        bufs = _tile_buffers(TILE, W, A.dtype)
        dt, sig, ut, xt, zt = bufs
        gt, yt = zeros((TILE, W), A.dtype), zeros((TILE, W), A.dtype)
        g_u, g_delta, g_z = zeros((TILE, W), A.dtype), zeros((TILE, W), A.dtype), zeros((TILE, W), A.dtype)
        gc, dAl = zeros((nb, n, BLOCK), A.dtype), zeros((nb, n, BLOCK), A.dtype)
        dDw, dbw = zeros(W, A.dtype), zeros(W, A.dtype)
        for ti in range((L + TILE - 1) // TILE - 1, -1, -1):
            t0 = ti * TILE
            nt = min(TILE, L - t0)
            _load_tile(ins, bi, t0, nt, c0, wc, bw, bufs, Bt, Ct, True, c)
            _load(gout, gt, bi, t0, nt, c0, wc)
            for g in range(nb):
                o = g * BLOCK
                gcg, dAg = gc[g], dAl[g]
                hs[0] = 0.0
                for k in range(n):
                    for j in range(min(BLOCK, wc - o)):
                        hs[0, k, j] = hsave[bi, ti, k, c0 + o + j]
                for t in range(nt):  # recompute decays, states and C.h + D u
                    for j in range(BLOCK):
                        yt[t, o + j] = Dw[o + j] * ut[t, o + j]
                    for k in range(n):
                        bk, ck = Bt[t, k], Ct[t, k]
                        for j in range(BLOCK):
                            a = exp2(dt[t, o + j] * a2[k, o + j])
                            hv = a * hs[t, k, j] + xt[t, o + j] * bk
                            ab[t, k, j] = a
                            hs[t + 1, k, j] = hv
                            yt[t, o + j] += ck * hv
                for t in range(nt):  # through the gate: gy = d loss / d (C.h + D u)
                    for j in range(BLOCK):
                        gv = gt[t, o + j]
                        if has_z:
                            zz = zt[t, o + j]
                            s = one / (one + exp2(-zz * log2e))
                            g_z[t, o + j] = gv * yt[t, o + j] * s * (one + zz * (one - s))
                            gv = gv * zz * s
                        gy[t, j] = gv
                        dDw[o + j] += gv * ut[t, o + j]
                for t in range(nt - 1, -1, -1):  # adjoint recurrence
                    for j in range(BLOCK):
                        dxj[j] = 0.0
                        ddtj[j] = 0.0
                    for k in range(0, n - n % 2, 2):  # two states per pass: gy, x, dt read once
                        b0, b1, cc0, cc1 = Bt[t, k], Bt[t, k + 1], Ct[t, k], Ct[t, k + 1]
                        dc0, db0, dc1, db1 = zero, zero, zero, zero
                        for j in range(BLOCK):
                            gyj, xj, dtj = gy[t, j], xt[t, o + j], dt[t, o + j]
                            g0 = gcg[k, j] + cc0 * gyj
                            g1 = gcg[k + 1, j] + cc1 * gyj
                            dc0 += gyj * hs[t + 1, k, j]
                            dc1 += gyj * hs[t + 1, k + 1, j]
                            db0 += g0 * xj
                            db1 += g1 * xj
                            dxj[j] += g0 * b0 + g1 * b1
                            q0 = g0 * ab[t, k, j] * hs[t, k, j]
                            q1 = g1 * ab[t, k + 1, j] * hs[t, k + 1, j]
                            ddtj[j] += q0 * an[k, o + j] + q1 * an[k + 1, o + j]
                            dAg[k, j] += q0 * dtj
                            dAg[k + 1, j] += q1 * dtj
                            gcg[k, j] = ab[t, k, j] * g0
                            gcg[k + 1, j] = ab[t, k + 1, j] * g1
                        dCp[blo + g, bi, t0 + t, k], dCp[blo + g, bi, t0 + t, k + 1] = dc0, dc1
                        dBp[blo + g, bi, t0 + t, k], dBp[blo + g, bi, t0 + t, k + 1] = db0, db1
                    for k in range(n - n % 2, n):  # the odd state out
                        bk, ck = Bt[t, k], Ct[t, k]
                        dck, dbk = zero, zero
                        for j in range(BLOCK):
                            gv = gcg[k, j] + ck * gy[t, j]
                            dck += gy[t, j] * hs[t + 1, k, j]
                            dbk += gv * xt[t, o + j]
                            dxj[j] += gv * bk
                            q = gv * ab[t, k, j] * hs[t, k, j]
                            ddtj[j] += q * an[k, o + j]
                            dAg[k, j] += q * dt[t, o + j]
                            gcg[k, j] = ab[t, k, j] * gv
                        dCp[blo + g, bi, t0 + t, k] = dck
                        dBp[blo + g, bi, t0 + t, k] = dbk
                    for j in range(BLOCK):
                        g_u[t, o + j] = gy[t, j] * Dw[o + j] + dxj[j] * dt[t, o + j]
                        gd = (ddtj[j] + dxj[j] * ut[t, o + j]) * sig[t, o + j]
                        g_delta[t, o + j] = gd
                        dbw[o + j] += gd
            _store(g_u, du, bi, t0, nt, c0, wc)
            _store(g_delta, ddelta, bi, t0, nt, c0, wc)
            if has_z:
                _store(g_z, dz, bi, t0, nt, c0, wc)
        for j in range(wc):
            dD[bi, c0 + j], dbias[bi, c0 + j] = dDw[j], dbw[j]
            for k in range(n):
                dA[bi, c0 + j, k] = dAl[j // BLOCK, k, j % BLOCK]


def signatures(storage: np.dtype) -> dict[str, types.Signature]:
    """Explicit signatures of the two kernels for activations stored as ``storage`` (float64,
    float32 or uint16 = bf16 bits): the inputs typed 'A' (any strides), the per-token outputs
    (y, du, ddelta, dz, allocated by the callers) 'C', so their row stores compile to plain
    vector stores: one compiled version per storage type, whatever the callers' input layouts."""
    s, f = from_dtype(np.dtype(storage)), compute_type(storage)
    s3, out3 = types.Array(s, 3, "A"), types.Array(s, 3, "C")
    f1, f2, f3, f4 = (types.Array(f, nd, "A") for nd in (1, 2, 3, 4))
    flag = types.boolean
    ins = types.Tuple((s3, s3, f1, s3, s3, s3, f2, f1, flag, flag))
    outs = types.Tuple((out3, out3, out3, f3, f2, f2, f4, f4))
    return {
        "forward_jobs": types.void(types.int64, types.int64, ins, out3, f4, flag),
        "backward_jobs": types.void(types.int64, types.int64, ins, s3, f4, outs),
    }
