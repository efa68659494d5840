"""The ``numba`` scan backend: compiled CPU kernels (``scan_numba_kernels``), the CPU default.

Why: the chunked ``torch`` scan runs thousands of small ATen ops per sequence and builds every
decay in memory; a compiled kernel keeps each (d_state, 32-channel) state in L1 and fuses decay,
update, C-contraction, D skip and gate into one vectorised loop (about 3x the ``torch`` backend's
forward and 2x its forward+backward on 2 cores, see ``benchmarks/README.md``). Numba is a
maintained PyPI package with wheels for every platform torch supports; kernels compile on first
use (about 5 s each) and are cached next to this file. Nothing here runs without numba:
``numba_available()`` tells, and ``auto`` falls back to the ``torch`` backend.

The forward and backward are registered torch operators (``plantbimoe::numba_scan`` and
``plantbimoe::numba_scan_backward``, with fake shapes and autograd), so ``torch.compile`` traces a
whole model as one graph.

Memory: the forward output, the tile-start states kept for the backward (one (d_state, d_inner)
state per 32 steps, half of what the ``torch`` backend keeps) and the gradients; the
(b, L, d_inner, d_state) tensor never exists. Threads: torch's intra-op thread count; each thread
runs whole (batch row, channel block) jobs without the GIL.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from types import ModuleType
from typing import Any, NamedTuple

import numpy as np
import torch

Tensor = torch.Tensor


@cache
def _kernels() -> ModuleType | ImportError:
    try:
        from plantbimoe import scan_numba_kernels
    except ImportError as err:  # numba (or llvmlite) missing or unusable on this platform
        return err
    return scan_numba_kernels


@torch.compiler.assume_constant_result  # torch.compile: a constant, not traced
def numba_available() -> bool:
    """True when the numba kernels can be imported."""
    return not isinstance(_kernels(), ImportError)


def _require() -> ModuleType:
    kernels = _kernels()
    if isinstance(kernels, ImportError):
        message = f"the 'numba' scan backend needs numba ({kernels}); `pip install numba`"
        raise RuntimeError(message) from kernels
    return kernels


_pools: dict[int, tuple[int, ThreadPoolExecutor]] = {}  # process id -> (threads, pool)


@cache
def _entry(name: str, dtype: torch.dtype) -> Any:
    """The compiled kernel ``name`` for ``dtype`` (compiled, or loaded from numba's disk cache,
    on first use)."""
    kernels = _require()
    sig = kernels.signatures(np.dtype(str(dtype).removeprefix("torch.")))[name]
    dispatcher = getattr(kernels, name)
    dispatcher.compile(sig)
    return dispatcher.overloads[sig.args].entry_point


def warm_up(dtypes: tuple[torch.dtype, ...] = (torch.float32, torch.float64)) -> None:
    """Compile (or load from the cache) every kernel for ``dtypes`` now rather than at first use."""
    for dtype in dtypes:
        for name in ("forward_jobs", "backward_jobs"):
            _entry(name, dtype)


def _run_jobs(name: str, dtype: torch.dtype, njobs: int, *args: Any) -> None:
    """Kernel ``name`` (j0, j1, *args) over jobs [0, njobs), split across torch's intra-op threads."""
    run_jobs(_entry(name, dtype), njobs, *args)


def run_jobs(kernel: Any, njobs: int, *args: Any) -> None:
    """A compiled ``kernel`` (j0, j1, *args) over jobs [0, njobs), split across torch's intra-op
    threads (one pool per process, shared by every numba kernel)."""
    threads = max(1, min(torch.get_num_threads(), njobs))
    if threads == 1:
        kernel(0, njobs, *args)
        return
    size, pool = _pools.get(os.getpid(), (0, None))  # a forked child never reuses its parent's
    if pool is None or size < threads:
        if pool is not None:
            pool.shutdown(wait=False)
        pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="plantbimoe-scan")
        _pools[os.getpid()] = (threads, pool)
    bounds = [njobs * i // threads for i in range(threads + 1)]
    futures = [pool.submit(kernel, bounds[i], bounds[i + 1], *args) for i in range(threads)]
    for future in futures:
        future.result()


def _np(t: Tensor) -> Any:
    return t.detach().numpy()


class _Inputs(NamedTuple):
    """One scan call's inputs: token-major views of the activations (no copies), copies of the
    small per-channel tensors (a numpy view would pin a parameter's storage, which FSDP frees and
    re-allocates), zeros for absent ones."""

    u: Tensor  # (b, L, d)
    delta: Tensor  # (b, L, d)
    bias: Tensor  # (d,)
    z: Tensor  # (b, L, d), or (1, 1, 1) without a gate
    B: Tensor  # (b, L, n)
    C: Tensor  # (b, L, n)
    A: Tensor  # (d, n)
    D: Tensor  # (d,)
    softplus: bool
    has_z: bool

    @classmethod
    def of(
        cls,
        u: Tensor,
        delta: Tensor,
        A: Tensor,
        B: Tensor,
        C: Tensor,
        D: Tensor | None,
        z: Tensor | None,
        bias: Tensor | None,
        softplus: bool,
    ) -> _Inputs:
        d = u.shape[1]
        return cls(
            u.transpose(1, 2),
            delta.transpose(1, 2),
            bias.detach().clone() if bias is not None else u.new_zeros(d),
            z.transpose(1, 2) if z is not None else u.new_zeros(1, 1, 1),
            B.transpose(1, 2),
            C.transpose(1, 2),
            A.detach().clone(),
            D.detach().clone() if D is not None else u.new_zeros(d),
            softplus,
            z is not None,
        )

    def arrays(self) -> tuple[Any, ...]:
        return (*map(_np, self[:8]), self.softplus, self.has_z)

    def njobs(self, kernels: ModuleType) -> int:
        b, _, d = self.u.shape
        return b * -(-d // kernels.BLOCK)


def _forward(p: _Inputs, save: bool) -> tuple[Tensor, Tensor]:
    """Output (b, L, d) and, with ``save``, the tile-start states (b, tiles, d_state, d)."""
    k = _require()
    b, L, d = p.u.shape
    y = p.u.new_empty(b, L, d)
    hsave = p.u.new_empty((b, -(-L // k.TILE), p.A.shape[1], d) if save else (1, 1, 1, 1))
    _run_jobs("forward_jobs", y.dtype, p.njobs(k), p.arrays(), _np(y), _np(hsave), save)
    return y, hsave


def _backward(p: _Inputs, gout: Tensor, hsave: Tensor) -> tuple[Tensor, ...]:
    """Gradients w.r.t. (u, delta, A, B, C, D, z, bias); 3-d ones token-major (b, L, c); an empty
    (0, 0, 0) dz without a gate."""
    k = _require()
    b, L, d = p.u.shape
    n, nblk = p.A.shape[1], -(-d // k.BLOCK)
    du, ddelta = p.u.new_empty(b, L, d), p.u.new_empty(b, L, d)
    dz = p.u.new_empty((b, L, d) if p.has_z else (0, 0, 0))
    dA, dD, dbias = p.u.new_empty(b, d, n), p.u.new_empty(b, d), p.u.new_empty(b, d)
    dBp, dCp = p.u.new_empty(nblk, b, L, n), p.u.new_empty(nblk, b, L, n)
    outs = (du, ddelta, dz, dA, dD, dbias, dBp, dCp)
    _run_jobs("backward_jobs", du.dtype, p.njobs(k), p.arrays(), _np(gout), _np(hsave), tuple(map(_np, outs)))
    return du, ddelta, dA.sum(0), dBp.sum(0), dCp.sum(0), dD.sum(0), dz, dbias.sum(0)


_TENSORS = "Tensor u, Tensor delta, Tensor A, Tensor B, Tensor C, Tensor? D, Tensor? z, Tensor? bias"


@torch.library.custom_op(
    "plantbimoe::numba_scan",
    mutates_args=(),
    schema=f"({_TENSORS}, bool softplus, bool save) -> (Tensor, Tensor)",
)
def _scan_op(u, delta, A, B, C, D, z, bias, softplus, save):  # type: ignore[no-untyped-def]
    """The forward as a torch operator (one opaque node for torch.compile): y (b, L, d) and the
    saved states (or a placeholder)."""
    return _forward(_Inputs.of(u, delta, A, B, C, D, z, bias, softplus), save)


@_scan_op.register_fake
def _scan_fake(u, delta, A, B, C, D, z, bias, softplus, save):  # type: ignore[no-untyped-def]
    b, d, L = u.shape
    tiles = -(-L // _require().TILE)
    return u.new_empty(b, L, d), u.new_empty((b, tiles, A.shape[1], d) if save else (1, 1, 1, 1))


@torch.library.custom_op(
    "plantbimoe::numba_scan_backward",
    mutates_args=(),
    schema=f"(Tensor gout, {_TENSORS}, bool softplus, Tensor hsave) -> (Tensor, Tensor, Tensor, Tensor, "
    "Tensor, Tensor, Tensor, Tensor)",
)
def _scan_backward_op(gout, u, delta, A, B, C, D, z, bias, softplus, hsave):  # type: ignore[no-untyped-def]
    """``_backward`` as a torch operator."""
    return _backward(_Inputs.of(u, delta, A, B, C, D, z, bias, softplus), gout, hsave)


@_scan_backward_op.register_fake
def _scan_backward_fake(gout, u, delta, A, B, C, D, z, bias, softplus, hsave):  # type: ignore[no-untyped-def]
    b, d, L = u.shape
    n = A.shape[1]
    dz = u.new_empty((b, L, d) if z is not None else (0, 0, 0))
    per_token = (u.new_empty(b, L, d), u.new_empty(b, L, d))  # du, ddelta
    per_state = (u.new_empty(d, n), u.new_empty(b, L, n), u.new_empty(b, L, n))  # dA, dB, dC
    return (*per_token, *per_state, u.new_empty(d), dz, u.new_empty(d))


def _setup_context(ctx, inputs, output) -> None:  # type: ignore[no-untyped-def]
    u, delta, A, B, C, D, z, bias, softplus, _ = inputs
    ctx.save_for_backward(u, delta, A, B, C, D, z, bias, output[1])
    ctx.softplus = softplus


def _scan_backward(ctx, gy, _):  # type: ignore[no-untyped-def]
    *ins, hsave = ctx.saved_tensors
    grads = torch.ops.plantbimoe.numba_scan_backward(gy, *ins, ctx.softplus, hsave)
    du, ddelta, dA, dB, dC, dD, dz, dbias = (g.transpose(1, 2) if g.dim() == 3 else g for g in grads)
    D, z, bias = ins[5:8]
    optional = (g if t is not None else None for g, t in ((dD, D), (dz, z), (dbias, bias)))
    return (du, ddelta, dA, dB, dC, *optional, None, None)


_scan_op.register_autograd(_scan_backward, setup_context=_setup_context)


def selective_scan_numba(
    u: Tensor,
    delta: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    D: Tensor | None = None,
    z: Tensor | None = None,
    delta_bias: Tensor | None = None,
    delta_softplus: bool = True,
) -> Tensor:
    """The ``numba`` backend, mamba-ssm layout (see ``scan.selective_scan``); CPU tensors of one
    float dtype (fp32 or fp64). Returns (b, d_inner, L), a transposed view of a contiguous
    (b, L, d_inner) tensor."""
    if u.device.type != "cpu":
        raise ValueError(f"the 'numba' scan backend runs on CPU tensors, got {u.device}")
    args = (u, delta, A, B, C, D, z, delta_bias)
    save = torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in args)
    y, _ = torch.ops.plantbimoe.numba_scan(*args, delta_softplus, save)
    return y.transpose(1, 2)
