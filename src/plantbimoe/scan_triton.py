"""The ``triton`` scan backend: Triton kernels (``scan_triton_kernels``) for CUDA tensors.

Why: mamba-ssm's fused kernel ships as source only (it needs nvcc and a matching CUDA to build),
so many GPU installs end on the chunked ``torch`` scan. Triton comes with the CUDA builds of torch
and compiles its kernels at first use, so this backend needs no build step. Like mamba-ssm's kernel
it fuses softplus(delta + bias), the D skip and the silu(z) gate, keeps the state in float32 and
takes fp32, fp16 or bf16 inputs (fp64 inputs compute in fp64); the output has u's dtype.

Nothing here imports Triton until this backend runs (``triton_available()`` tells whether it can),
so CPU installs never need it. On CPU tensors the kernels run only under Triton's interpreter
(``TRITON_INTERPRET=1`` set before the first use), which the tests use.

The forward and backward are registered torch operators (``plantbimoe::triton_scan`` and
``plantbimoe::triton_scan_backward``, with fake shapes and autograd), so ``torch.compile`` traces a
whole model as one graph. Memory: the output, one (d_state, d_inner) state per ``CHUNK`` steps kept
for the backward, and the gradients; the (b, L, d_inner, d_state) tensor never exists.
"""

from __future__ import annotations

import os
from contextlib import nullcontext
from types import ModuleType

import torch

from plantbimoe import optional_kernels

Tensor = torch.Tensor

# Launch settings: the fastest forward+backward of the four that benchmarks/gpu_check.sh timed on
# an H200 (bf16, batch 1, d_inner 1,024, d_state 16, L 8,192: 3.4 ms, against 3.7-4.4 ms for the
# others; benchmarks/results/gpu/2026-12-04/scan.json). The forward alone is 0.2 ms slower than
# with 64-step chunks; training time is what counts.
CHUNK = 32
"""Steps per chunk (a power of two): the scan's tile length and the spacing of kept states."""

FORWARD_LAUNCH = (4, 4)
"""(channels per program, warps per program) of the forward kernel."""

BACKWARD_LAUNCH = (4, 4)
"""(channels per program, warps per program) of the backward kernel."""


KERNELS = "plantbimoe.scan_triton_kernels"


@torch.compiler.assume_constant_result  # torch.compile: a constant, not traced
def triton_available() -> bool:
    """True when the triton kernels can be imported."""
    return optional_kernels.available(KERNELS)


def _require() -> ModuleType:
    return optional_kernels.require(KERNELS, "triton", "triton, which comes with CUDA builds of torch")


def _compute_dtype(u: Tensor) -> torch.dtype:
    return torch.float64 if u.dtype == torch.float64 else torch.float32


def _strides(t: Tensor | None) -> tuple[int, ...]:
    """Strides of a 3-d tensor (zeros for an absent one)."""
    return tuple(t.stride()) if t is not None else (0, 0, 0)


def _state_shape(u: Tensor, A: Tensor, chunk: int) -> tuple[int, int, int, int]:
    """Shape of the kept chunk-start states: (b, chunks, d_inner, d_state)."""
    b, d, L = u.shape
    return b, -(-L // chunk), d, A.shape[1]


def _small(u: Tensor, A: Tensor, D: Tensor | None, bias: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
    """Contiguous A, D and bias (u stands in for an absent one: the kernels never read it)."""
    return (
        A.contiguous(),
        D.contiguous() if D is not None else u,
        bias.contiguous() if bias is not None else u,
    )


def _flags(u: Tensor, D: Tensor | None, z: Tensor | None, bias: Tensor | None, softplus: bool) -> dict:
    """The kernels' compile-time switches."""
    return {
        "HAS_D": D is not None,
        "HAS_Z": z is not None,
        "HAS_BIAS": bias is not None,
        "SOFTPLUS": softplus,
        "TY": _require().COMPUTE_TYPES[u.dtype == torch.float64],
    }


def _pow2(n: int) -> int:
    return 1 << max(n - 1, 0).bit_length()


def _launch(kernel, u: Tensor, launch: tuple[int, int], *args, **meta) -> None:  # type: ignore[no-untyped-def]
    """Run ``kernel`` over (channel blocks, batch rows) on u's GPU (Triton launches on the current
    device), or in the interpreter for CPU tensors."""
    if not u.is_cuda and os.environ.get("TRITON_INTERPRET") != "1":
        raise ValueError(
            f"the 'triton' scan backend runs on CUDA tensors, got {u.device} "
            "(on CPU only under Triton's interpreter: TRITON_INTERPRET=1 before the first use)"
        )
    block, warps = launch
    grid = (-(-u.shape[1] // block), u.shape[0])
    with torch.cuda.device(u.device) if u.is_cuda else nullcontext():
        kernel[grid](*args, BLOCK_D=block, num_warps=warps, **meta)


def _forward(
    u: Tensor,
    delta: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    D: Tensor | None,
    z: Tensor | None,
    bias: Tensor | None,
    softplus: bool,
    save: bool,
    chunk: int,
) -> tuple[Tensor, Tensor]:
    """Output (b, L, d) and, with ``save``, the chunk-start states (else a placeholder)."""
    b, d, L = u.shape
    y = u.new_empty(b, L, d)
    h = u.new_empty(_state_shape(u, A, chunk) if save else (1, 1, 1, 1), dtype=_compute_dtype(u))
    yt = y.transpose(1, 2)
    _launch(
        _require().scan_forward, u, FORWARD_LAUNCH,
        u, delta, z if z is not None else u, B, C, *_small(u, A, D, bias), yt, h,
        d, L, A.shape[1],
        *u.stride(), *delta.stride(), *_strides(z), *B.stride(), *C.stride(), *yt.stride(),
        SAVE=save, N=_pow2(A.shape[1]), T=chunk, **_flags(u, D, z, bias, softplus),
    )  # fmt: skip
    return y, h


def _backward(
    gout: Tensor,
    u: Tensor,
    delta: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    D: Tensor | None,
    z: Tensor | None,
    bias: Tensor | None,
    softplus: bool,
    h: Tensor,
    chunk: int,
) -> tuple[Tensor, ...]:
    """Gradients w.r.t. (u, delta, A, B, C, D, z, bias) from ``gout`` (b, L, d); an empty
    (0, 0, 0) dz without a gate, dD and dbias in the compute type without D or bias."""
    b, d, L = u.shape
    n, dtype = A.shape[1], _compute_dtype(u)
    du, ddelta = torch.empty_like(u), torch.empty_like(delta)
    dz = torch.empty_like(z) if z is not None else u.new_empty(0, 0, 0)
    dB, dC = (u.new_zeros(b, n, L, dtype=dtype) for _ in range(2))
    dA, dD, dbias = (u.new_empty(shape, dtype=dtype) for shape in ((b, d, n), (b, d), (b, d)))
    g = gout.transpose(1, 2)
    _launch(
        _require().scan_backward, u, BACKWARD_LAUNCH,
        u, delta, z if z is not None else u, B, C, *_small(u, A, D, bias), g, h,
        du, ddelta, dz if z is not None else du, dB, dC, dA, dD, dbias,
        d, L, n,
        *u.stride(), *delta.stride(), *_strides(z), *B.stride(), *C.stride(), *g.stride(),
        *du.stride(), *ddelta.stride(), *_strides(dz if z is not None else None),
        N=_pow2(n), T=chunk, **_flags(u, D, z, bias, softplus),
    )  # fmt: skip
    return (
        du, ddelta, dA.sum(0).to(A.dtype), dB.to(B.dtype), dC.to(C.dtype),
        dD.sum(0).to(D.dtype if D is not None else dtype), dz,
        dbias.sum(0).to(bias.dtype if bias is not None else dtype),
    )  # fmt: skip


_TENSORS = "Tensor u, Tensor delta, Tensor A, Tensor B, Tensor C, Tensor? D, Tensor? z, Tensor? bias"


@torch.library.custom_op(
    "plantbimoe::triton_scan",
    mutates_args=(),
    schema=f"({_TENSORS}, bool softplus, bool save, int chunk) -> (Tensor, Tensor)",
)
def _scan_op(u, delta, A, B, C, D, z, bias, softplus, save, chunk):  # type: ignore[no-untyped-def]
    """The forward as a torch operator: y (b, L, d) and the kept states (or a placeholder)."""
    return _forward(u, delta, A, B, C, D, z, bias, softplus, save, chunk)


@_scan_op.register_fake
def _scan_fake(u, delta, A, B, C, D, z, bias, softplus, save, chunk):  # type: ignore[no-untyped-def]
    b, d, L = u.shape
    states = u.new_empty(_state_shape(u, A, chunk) if save else (1, 1, 1, 1), dtype=_compute_dtype(u))
    return u.new_empty(b, L, d), states


@torch.library.custom_op(
    "plantbimoe::triton_scan_backward",
    mutates_args=(),
    schema=f"(Tensor gout, {_TENSORS}, bool softplus, Tensor h, int chunk) -> (Tensor, Tensor, Tensor, "
    "Tensor, Tensor, Tensor, Tensor, Tensor)",
)
def _scan_backward_op(gout, u, delta, A, B, C, D, z, bias, softplus, h, chunk):  # type: ignore[no-untyped-def]
    """``_backward`` as a torch operator."""
    return _backward(gout, u, delta, A, B, C, D, z, bias, softplus, h, chunk)


@_scan_backward_op.register_fake
def _scan_backward_fake(gout, u, delta, A, B, C, D, z, bias, softplus, h, chunk):  # type: ignore[no-untyped-def]
    b, d, L = u.shape
    dtype = _compute_dtype(u)
    dz = torch.empty_like(z) if z is not None else u.new_empty(0, 0, 0)
    dD = u.new_empty(d, dtype=D.dtype if D is not None else dtype)
    dbias = u.new_empty(d, dtype=bias.dtype if bias is not None else dtype)
    dB, dC = B.new_empty(b, A.shape[1], L), C.new_empty(b, A.shape[1], L)
    return torch.empty_like(u), torch.empty_like(delta), torch.empty_like(A), dB, dC, dD, dz, dbias


def _setup_context(ctx, inputs, output) -> None:  # type: ignore[no-untyped-def]
    u, delta, A, B, C, D, z, bias, softplus, _, chunk = inputs
    ctx.save_for_backward(u, delta, A, B, C, D, z, bias, output[1])
    ctx.softplus, ctx.chunk = softplus, chunk


def _scan_backward(ctx, gy, _):  # type: ignore[no-untyped-def]
    *ins, h = ctx.saved_tensors
    grads = torch.ops.plantbimoe.triton_scan_backward(gy, *ins, ctx.softplus, h, ctx.chunk)
    du, ddelta, dA, dB, dC, dD, dz, dbias = grads
    D, z, bias = ins[5:8]
    optional = (g if t is not None else None for g, t in ((dD, D), (dz, z), (dbias, bias)))
    return (du, ddelta, dA, dB, dC, *optional, None, None, None)


_scan_op.register_autograd(_scan_backward, setup_context=_setup_context)


def selective_scan_triton(
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
    """The ``triton`` backend, mamba-ssm layout (see ``scan.selective_scan``); tensors of any
    strides and float dtypes on one CUDA device. Returns (b, d_inner, L) in u's dtype, a transposed
    view of a contiguous (b, L, d_inner) tensor."""
    args = (u, delta, A, B, C, D, z, delta_bias)
    save = torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in args)
    y, _ = torch.ops.plantbimoe.triton_scan(*args, delta_softplus, save, CHUNK)
    return y.transpose(1, 2)
