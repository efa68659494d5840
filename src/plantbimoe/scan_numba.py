"""The ``numba`` scan backend: compiled CPU kernels (``scan_numba_kernels``), the CPU default.

Why: the chunked ``torch`` scan runs thousands of small ATen ops per sequence and builds every
decay in memory; a compiled kernel keeps each (d_state, 32-channel) state in L1 and fuses decay,
update, C-contraction, D skip and gate into one vectorised loop (3-4x the ``torch`` backend's
tokens/s on 2 cores, see ``benchmarks/README.md``). Numba is a maintained PyPI package with
wheels for every platform torch supports; kernels compile on first use (a few seconds) and are
cached next to this file. Nothing here runs without numba: ``numba_available()`` tells, and
``auto`` falls back to the ``torch`` backend.

Memory: the forward output, the tile-start states kept for the backward (one (d_state, d_inner)
state per 64 steps, 1/4 of what the ``torch`` backend keeps) and the gradients; the
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


def numba_available() -> bool:
    """True when the numba kernels can be imported."""
    return not isinstance(_kernels(), ImportError)


def _require() -> ModuleType:
    kernels = _kernels()
    if isinstance(kernels, ImportError):
        message = f"the 'numba' scan backend needs numba ({kernels}); `pip install numba`"
        raise RuntimeError(message) from kernels
    return kernels


_pools: dict[int, ThreadPoolExecutor] = {}


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
    kernel = _entry(name, dtype)
    threads = max(1, min(torch.get_num_threads(), njobs))
    if threads == 1:
        kernel(0, njobs, *args)
        return
    pool = _pools.get(os.getpid())  # a forked child must not reuse its parent's threads
    if pool is None or pool._max_workers < threads:
        pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="plantbimoe-scan")
        _pools[os.getpid()] = pool
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


def _backward(p: _Inputs, gout: Tensor, hsave: Tensor) -> tuple[Tensor | None, ...]:
    """Gradients w.r.t. (u, delta, A, B, C, D, z, bias); 3-d ones token-major (b, L, c)."""
    k = _require()
    b, L, d = p.u.shape
    n, nblk = p.A.shape[1], -(-d // k.BLOCK)
    du, ddelta = p.u.new_empty(b, L, d), p.u.new_empty(b, L, d)
    dz = p.u.new_empty(b, L, d) if p.has_z else p.z
    dA, dD, dbias = p.u.new_empty(b, d, n), p.u.new_empty(b, d), p.u.new_empty(b, d)
    dBp, dCp = p.u.new_empty(nblk, b, L, n), p.u.new_empty(nblk, b, L, n)
    outs = (du, ddelta, dz, dA, dD, dbias, dBp, dCp)
    _run_jobs("backward_jobs", du.dtype, p.njobs(k), p.arrays(), _np(gout), _np(hsave), tuple(map(_np, outs)))
    return du, ddelta, dA.sum(0), dBp.sum(0), dCp.sum(0), dD.sum(0), dz if p.has_z else None, dbias.sum(0)


class _NumbaScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u, delta, A, B, C, D, z, bias, softplus):  # type: ignore[override]
        p = _Inputs.of(u, delta, A, B, C, D, z, bias, softplus)
        y, hsave = _forward(p, save=True)
        ctx.save_for_backward(*p[:8], hsave)
        ctx.flags = (softplus, z is not None, D is not None, bias is not None)
        return y.transpose(1, 2)

    @staticmethod
    def backward(ctx, gout):  # type: ignore[override]
        *tensors, hsave = ctx.saved_tensors
        softplus, has_z, has_D, has_bias = ctx.flags
        grads = _backward(_Inputs(*tensors, softplus, has_z), gout.transpose(1, 2), hsave)
        du, ddelta, dA, dB, dC, dD, dz, dbias = (
            t.transpose(1, 2) if t is not None and t.dim() == 3 else t for t in grads
        )
        return du, ddelta, dA, dB, dC, dD if has_D else None, dz, dbias if has_bias else None, None


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
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in args):
        return _NumbaScan.apply(*args, delta_softplus)
    y, _ = _forward(_Inputs.of(*args, delta_softplus), save=False)
    return y.transpose(1, 2)
