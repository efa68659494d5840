"""The ``numba`` scan backend: compiled CPU kernels (``scan_numba_kernels``), the CPU default.

Why: the chunked ``torch`` scan runs thousands of small ATen ops per sequence and builds every
decay in memory; a compiled kernel keeps each (d_state, BLOCK-channel) state in L1 and fuses decay,
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

from plantbimoe import optional_kernels

Tensor = torch.Tensor
STORAGE = {torch.float64: np.float64, torch.float32: np.float32, torch.bfloat16: np.uint16}
"""Activation dtypes the numba kernels read and write, and their numpy storage (bf16 as its
uint16 bits: numba has no bf16 type)."""


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype the kernels compute in for ``dtype`` activations: float64 for float64, else float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


KERNELS = "plantbimoe.scan_numba_kernels"


@torch.compiler.assume_constant_result  # torch.compile: a constant, not traced
def numba_available() -> bool:
    """True when the numba kernels can be imported."""
    return optional_kernels.available(KERNELS)


def _require() -> ModuleType:
    return optional_kernels.require(KERNELS, "numba", "numba: `pip install numba`")


_pools: dict[int, tuple[int, ThreadPoolExecutor]] = {}  # process id -> (threads, pool)


@cache
def _entry(name: str, dtype: torch.dtype) -> Any:
    """The compiled kernel ``name`` for ``dtype`` (compiled, or loaded from numba's disk cache,
    on first use)."""
    kernels = _require()
    sig = kernels.signatures(np.dtype(STORAGE[dtype]))[name]
    dispatcher = getattr(kernels, name)
    dispatcher.compile(sig)
    return dispatcher.overloads[sig.args].entry_point


def warm_up(dtypes: tuple[torch.dtype, ...] = (torch.float32, torch.float64, torch.bfloat16)) -> None:
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
    t = t.detach()
    return (t.view(torch.uint16) if t.dtype == torch.bfloat16 else t).numpy()


class _Inputs(NamedTuple):
    """One scan call's inputs: token-major views of the activations (no copies), copies of the
    small per-channel tensors in the compute dtype (a numpy view would pin a parameter's storage,
    which FSDP frees and re-allocates), zeros for absent ones."""

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
        d, f = u.shape[1], compute_dtype(u.dtype)
        return cls(
            u.transpose(1, 2),
            delta.transpose(1, 2),
            bias.detach().to(f, copy=True) if bias is not None else u.new_zeros(d, dtype=f),
            z.transpose(1, 2) if z is not None else u.new_zeros(1, 1, 1),
            B.transpose(1, 2),
            C.transpose(1, 2),
            A.detach().to(f, copy=True),
            D.detach().to(f, copy=True) if D is not None else u.new_zeros(d, dtype=f),
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
    hsave = p.A.new_empty((b, -(-L // k.TILE), p.A.shape[1], d) if save else (1, 1, 1, 1))
    _run_jobs("forward_jobs", y.dtype, p.njobs(k), p.arrays(), _np(y), _np(hsave), save)
    return y, hsave


def _backward(p: _Inputs, gout: Tensor, hsave: Tensor) -> tuple[Tensor, ...]:
    """Gradients w.r.t. (u, delta, A, B, C, D, z, bias); 3-d ones token-major (b, L, c) in the
    activations' dtype, the others in the compute dtype; an empty (0, 0, 0) dz without a gate."""
    k = _require()
    b, L, d = p.u.shape
    n, nblk = p.A.shape[1], -(-d // k.BLOCK)
    du, ddelta = p.u.new_empty(b, L, d), p.u.new_empty(b, L, d)
    dz = p.u.new_empty((b, L, d) if p.has_z else (0, 0, 0))
    dA, dD, dbias = p.A.new_empty(b, d, n), p.A.new_empty(b, d), p.A.new_empty(b, d)
    dBp, dCp = p.A.new_empty(nblk, b, L, n), p.A.new_empty(nblk, b, L, n)
    outs = (du, ddelta, dz, dA, dD, dbias, dBp, dCp)
    _run_jobs("backward_jobs", du.dtype, p.njobs(k), p.arrays(), _np(gout), _np(hsave), tuple(map(_np, outs)))
    dB, dC = dBp.sum(0).to(p.B.dtype), dCp.sum(0).to(p.C.dtype)
    return du, ddelta, dA.sum(0), dB, dC, dD.sum(0), dz, dbias.sum(0)


def check_inputs(
    u: Tensor,
    delta: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    D: Tensor | None,
    z: Tensor | None,
    bias: Tensor | None,
    gy: Tensor | None = None,
) -> None:
    """Refuse what the kernels cannot read safely (they do not check bounds), with a ValueError
    that says why: mamba-ssm shapes, one activation dtype, parameters in the compute dtype."""
    if u.dim() != 3 or u.dtype not in STORAGE:
        raise ValueError(
            f"numba scan: u must be (batch, d_inner, length) of {list(STORAGE)}, got "
            f"{tuple(u.shape)} {u.dtype}"
        )
    (b, d, L), n = u.shape, A.shape[-1]
    f = compute_dtype(u.dtype)
    want = {"delta": (b, d, L), "B": (b, n, L), "C": (b, n, L), "z": (b, d, L), "grad": (b, d, L)}
    for name, t in (("delta", delta), ("B", B), ("C", C), ("z", z), ("grad", gy)):
        if t is not None and (tuple(t.shape) != want[name] or t.dtype != u.dtype):
            raise ValueError(
                f"numba scan: {name} must be {want[name]} {u.dtype}, got {tuple(t.shape)} {t.dtype}"
            )
    for name, t, shape in (("A", A, (d, n)), ("D", D, (d,)), ("delta_bias", bias, (d,))):
        if t is not None and (tuple(t.shape) != shape or t.dtype != f):
            raise ValueError(f"numba scan: {name} must be {shape} {f}, got {tuple(t.shape)} {t.dtype}")


_TENSORS = "Tensor u, Tensor delta, Tensor A, Tensor B, Tensor C, Tensor? D, Tensor? z, Tensor? bias"


@torch.library.custom_op(
    "plantbimoe::numba_scan",
    mutates_args=(),
    schema=f"({_TENSORS}, bool softplus, bool save) -> (Tensor, Tensor)",
)
def _scan_op(u, delta, A, B, C, D, z, bias, softplus, save):  # type: ignore[no-untyped-def]
    """The forward as a torch operator (one opaque node for torch.compile): y (b, L, d) and the
    saved states (or a placeholder)."""
    check_inputs(u, delta, A, B, C, D, z, bias)
    return _forward(_Inputs.of(u, delta, A, B, C, D, z, bias, softplus), save)


@_scan_op.register_fake
def _scan_fake(u, delta, A, B, C, D, z, bias, softplus, save):  # type: ignore[no-untyped-def]
    b, d, L = u.shape
    tiles = -(-L // _require().TILE)
    f = compute_dtype(u.dtype)
    return u.new_empty(b, L, d), u.new_empty((b, tiles, A.shape[1], d) if save else (1, 1, 1, 1), dtype=f)


@torch.library.custom_op(
    "plantbimoe::numba_scan_backward",
    mutates_args=(),
    schema=f"(Tensor gout, {_TENSORS}, bool softplus, Tensor hsave) -> (Tensor, Tensor, Tensor, Tensor, "
    "Tensor, Tensor, Tensor, Tensor)",
)
def _scan_backward_op(gout, u, delta, A, B, C, D, z, bias, softplus, hsave):  # type: ignore[no-untyped-def]
    """``_backward`` as a torch operator."""
    check_inputs(u, delta, A, B, C, D, z, bias, gout.transpose(1, 2))
    return _backward(_Inputs.of(u, delta, A, B, C, D, z, bias, softplus), gout, hsave)


@_scan_backward_op.register_fake
def _scan_backward_fake(gout, u, delta, A, B, C, D, z, bias, softplus, hsave):  # type: ignore[no-untyped-def]
    b, d, L = u.shape
    n, f = A.shape[1], compute_dtype(u.dtype)
    dz = u.new_empty((b, L, d) if z is not None else (0, 0, 0))
    per_token = (u.new_empty(b, L, d), u.new_empty(b, L, d))  # du, ddelta
    per_state = (A.new_empty(d, n, dtype=f), B.new_empty(b, L, n), C.new_empty(b, L, n))  # dA, dB, dC
    return (*per_token, *per_state, u.new_empty(d, dtype=f), dz, u.new_empty(d, dtype=f))


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
    """The ``numba`` backend, mamba-ssm layout (see ``scan.selective_scan``); CPU tensors, the
    activations (u, delta, B, C, z) of one dtype (fp64, fp32 or bf16, read as stored), A, D and
    delta_bias in the compute dtype (fp64 for fp64, else fp32). Returns (b, d_inner, L) in u's
    dtype, a transposed view of a contiguous (b, L, d_inner) tensor."""
    if u.device.type != "cpu":
        raise ValueError(f"the 'numba' scan backend runs on CPU tensors, got {u.device}")
    args = (u, delta, A, B, C, D, z, delta_bias)
    save = torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in args)
    y, _ = torch.ops.plantbimoe.numba_scan(*args, delta_softplus, save)
    return y.transpose(1, 2)
