"""Numba kernels of the causal depthwise conv1d + SiLU (compiled on first use, cached on disk).

Token-major layout: y and dx are (batch, length, channels) arrays; x and gy, of the same shape
with contiguous channels but rows that may be spaced (a slice of in_proj's output), come as flat
1-d arrays with element strides (batch, step), so that LLVM sees unit-stride inner loops and
vectorises them; w is (channels, K).
Jobs are (batch row, block of ``BLOCK`` channels); a call runs jobs [j0, j1) without the GIL,
sweeping each batch row's channels among them together, step by step, so that whole rows of x,
gy and the outputs stream through once, in order. Inner loops run over those channels
(contiguous, vectorised). For the usual width K = 4 each step is one fused pass (window sum,
bias, SiLU; in the backward one pass for g, one for dw, one for dx) with the window's rows read
directly; other widths accumulate tap by tap. Activations may be stored as float64, float32 or
bf16 (uint16 bits); arithmetic is in float64 for float64, else float32.

  forward   a[t] = bias + sum_k w[k] x[t - K + 1 + k]  (x = 0 before the start),  y = silu(a)
  backward  g[t] = gy[t] silu'(a[t]) (a recomputed),  dx[t] = sum_k w[k] g[t + K - 1 - k],
            dw[k] = sum_t g[t] x[t - K + 1 + k],  dbias = sum_t g[t]
"""

from __future__ import annotations

import numpy as np
from numba import from_dtype, njit, types

from .scan_numba_math import JIT, compute_type, consts, exp2, stored, to_compute, zeros

BLOCK = 256
"""Channels per job: the unit that callers split across threads (a call sweeps its jobs' channels
of a batch row together)."""


@njit(**JIT)
def _preact(x, xs, bi, t, c0, wc, wt, bw, acc):  # type: ignore[no-untyped-def]
    """acc[:wc] = bias + the causal window sum at step t."""
    K = wt.shape[0]
    for j in range(wc):
        acc[j] = bw[j]
    for k in range(max(0, K - 1 - t), K):
        o = bi * xs[0] + (t - K + 1 + k) * xs[1] + c0
        row, wk = x[o : o + wc], wt[k]
        for j in range(wc):
            acc[j] += wk[j] * to_compute(row[j])


@njit(**JIT)
def _span_params(w, bias, c0, wc):  # type: ignore[no-untyped-def]
    """w^T (K, wc) and bias (wc) of channels [c0, c0 + wc)."""
    K = w.shape[1]
    wt, bw = zeros((K, wc), w.dtype), zeros(wc, w.dtype)
    for j in range(wc):
        bw[j] = bias[c0 + j]
        for k in range(K):
            wt[k, j] = w[c0 + j, k]
    return wt, bw


@njit(**JIT)
def _span(j0, j1, bi, nblk, d):  # type: ignore[no-untyped-def]
    """First channel and channel count of batch row ``bi`` among jobs [j0, j1)."""
    c0 = max(j0 - bi * nblk, 0) * BLOCK
    return c0, min(min(j1 - bi * nblk, nblk) * BLOCK, d) - c0


@njit(**JIT)
def _window4(x, xs, bi, t, c0, wc):  # type: ignore[no-untyped-def]
    """Rows t-3 .. t of x (channels [c0, c0 + wc)) as 1-d views, for width 4 and t >= 3."""
    o, s = bi * xs[0] + (t - 3) * xs[1] + c0, xs[1]
    return x[o : o + wc], x[o + s : o + s + wc], x[o + 2 * s : o + 2 * s + wc], x[o + 3 * s : o + 3 * s + wc]


@njit(**JIT)
def forward_jobs(j0, j1, x, xs, w, bias, y):  # type: ignore[no-untyped-def]
    """y = silu(causal depthwise conv(x) + bias) for jobs [j0, j1); x flat with strides xs.
    Each batch row's channels among the jobs are swept together, step by step: whole rows of x
    are read once, in order."""
    L, d = y.shape[1], y.shape[2]
    nblk = (d + BLOCK - 1) // BLOCK
    K = w.shape[1]
    c = consts(w.dtype)
    one, log2e = c[1], c[2]
    for bi in range(j0 // nblk, (j1 - 1) // nblk + 1):
        c0, wc = _span(j0, j1, bi, nblk, d)
        wt, bw = _span_params(w, bias, c0, wc)
        acc = zeros(wc, w.dtype)
        w0, w1, w2, w3 = wt[0], wt[min(1, K - 1)], wt[min(2, K - 1)], wt[min(3, K - 1)]
        for t in range(L):
            out = y[bi, t, c0 : c0 + wc]
            if K == 4 and t >= 3:  # the usual width: one pass, the window in registers
                o, st = bi * xs[0] + (t - 3) * xs[1] + c0, xs[1]  # _window4 inline: a call costs ~20% here
                r0, r1 = x[o : o + wc], x[o + st : o + st + wc]
                r2, r3 = x[o + 2 * st : o + 2 * st + wc], x[o + 3 * st : o + 3 * st + wc]
                for j in range(wc):
                    a = (bw[j] + w0[j] * to_compute(r0[j]) + w1[j] * to_compute(r1[j])
                         + w2[j] * to_compute(r2[j]) + w3[j] * to_compute(r3[j]))
                    out[j] = stored(a / (one + exp2(-a * log2e)), out)
                continue
            _preact(x, xs, bi, t, c0, wc, wt, bw, acc)
            for j in range(wc):
                a = acc[j]
                out[j] = stored(a / (one + exp2(-a * log2e)), out)


@njit(**JIT)
def backward_jobs(j0, j1, x, xs, w, bias, gy, gs, dx, dw, dbias):  # type: ignore[no-untyped-def]
    """Gradients for jobs [j0, j1), steps from the last: dx (b, L, d), dw[b] (channels, K) and
    dbias[b] (channels), per batch row (summed by the caller); x and gy flat with strides xs, gs.
    A ring of the last K values of g (zero past the end) gives dx. Each batch row's channels
    among the jobs are swept together, step by step, as in the forward."""
    L, d = dx.shape[1], dx.shape[2]
    K = w.shape[1]
    nblk = (d + BLOCK - 1) // BLOCK
    c = consts(w.dtype)
    one, log2e = c[1], c[2]
    for bi in range(j0 // nblk, (j1 - 1) // nblk + 1):
        c0, wc = _span(j0, j1, bi, nblk, d)
        wt, bw = _span_params(w, bias, c0, wc)
        acc, ring = zeros(wc, w.dtype), zeros((K, wc), w.dtype)
        dwl, dbl = zeros((K, wc), w.dtype), zeros(wc, w.dtype)
        w0, w1, w2, w3 = wt[0], wt[min(1, K - 1)], wt[min(2, K - 1)], wt[min(3, K - 1)]
        for t in range(L - 1, -1, -1):
            og = bi * gs[0] + t * gs[1] + c0
            grow, g = gy[og : og + wc], ring[t % K]
            out = dx[bi, t, c0 : c0 + wc]
            if K == 4 and t >= 3:  # the usual width: the window read once per step
                r0, r1, r2, r3 = _window4(x, xs, bi, t, c0, wc)
                for j in range(wc):
                    a = (bw[j] + w0[j] * to_compute(r0[j]) + w1[j] * to_compute(r1[j])
                         + w2[j] * to_compute(r2[j]) + w3[j] * to_compute(r3[j]))
                    s = one / (one + exp2(-a * log2e))
                    gv = to_compute(grow[j]) * s * (one + a * (one - s))
                    g[j] = gv
                    dbl[j] += gv
                d0, d1, d2, d3 = dwl[0], dwl[1], dwl[2], dwl[3]
                for j in range(wc):
                    gv = g[j]
                    d0[j] += gv * to_compute(r0[j])
                    d1[j] += gv * to_compute(r1[j])
                    d2[j] += gv * to_compute(r2[j])
                    d3[j] += gv * to_compute(r3[j])
                g1, g2, g3 = ring[(t + 1) % 4], ring[(t + 2) % 4], ring[(t + 3) % 4]
                for j in range(wc):
                    out[j] = stored(w3[j] * g[j] + w2[j] * g1[j] + w1[j] * g2[j] + w0[j] * g3[j], out)
                continue
            _preact(x, xs, bi, t, c0, wc, wt, bw, acc)
            for j in range(wc):
                a = acc[j]
                s = one / (one + exp2(-a * log2e))
                gv = to_compute(grow[j]) * s * (one + a * (one - s))
                g[j] = gv
                dbl[j] += gv
            for k in range(max(0, K - 1 - t), K):
                o = bi * xs[0] + (t - K + 1 + k) * xs[1] + c0
                row, dwk = x[o : o + wc], dwl[k]
                for j in range(wc):
                    dwk[j] += g[j] * to_compute(row[j])
            for j in range(wc):
                acc[j] = 0.0
            for m in range(min(K, L - t)):
                gm, wk = ring[(t + m) % K], wt[K - 1 - m]
                for j in range(wc):
                    acc[j] += wk[j] * gm[j]
            for j in range(wc):
                out[j] = stored(acc[j], out)
        for j in range(wc):
            dbias[bi, c0 + j] = dbl[j]
            for k in range(K):
                dw[bi, c0 + j, k] = dwl[k, j]


def signatures(storage: np.dtype) -> dict[str, types.Signature]:
    """Signatures for activations stored as ``storage`` (float64, float32 or uint16 = bf16):
    x and gy flat with a (batch, step) stride pair, everything else C-contiguous, parameters in
    the compute type."""
    s, f = from_dtype(np.dtype(storage)), compute_type(storage)
    flat, strides, out = types.Array(s, 1, "C"), types.UniTuple(types.int64, 2), types.Array(s, 3, "C")
    w, b = types.Array(f, 2, "C"), types.Array(f, 1, "C")
    job = types.int64
    return {
        "forward_jobs": types.void(job, job, flat, strides, w, b, out),
        "backward_jobs": types.void(
            job, job, flat, strides, w, b, flat, strides, out, types.Array(f, 3, "C"), w
        ),
    }
