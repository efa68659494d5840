"""The ``numba`` causal depthwise conv1d + SiLU: compiled CPU kernels (``conv_numba_kernels``).

Why: torch's depthwise conv1d runs far below its arithmetic cost on CPU (39 ms of a 257 ms Mamba
mixer forward at L=4096 for 16M multiply-adds, issue 14), needs a channel-major copy of a
token-major activation, and SiLU is another pass over memory. The kernel reads in_proj's x slice
in place (token-major, channels contiguous), fuses the SiLU, writes a token-major output ready
for x_proj and the scan, and reads/writes bf16 activations directly (float32 arithmetic). The
backward recomputes the pre-activation instead of saving it.

Registered torch operators (``plantbimoe::numba_conv_silu`` and its ``_backward``, with fake
shapes and autograd), like the numba scan, so ``torch.compile`` keeps them whole.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np
import torch

from .scan_numba import _require as _require_numba
from .scan_numba import run_jobs

Tensor = torch.Tensor
STORAGE = {torch.float64: np.float64, torch.float32: np.float32, torch.bfloat16: np.uint16}
"""Activation dtypes the kernels read, and their numpy storage (bf16 as its uint16 bits)."""


@cache
def _entry(name: str, dtype: torch.dtype) -> Any:
    _require_numba()
    from . import conv_numba_kernels as kernels

    sig = kernels.signatures(np.dtype(STORAGE[dtype]))[name]
    dispatcher = getattr(kernels, name)
    dispatcher.compile(sig)
    return dispatcher.overloads[sig.args].entry_point


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """float64 for float64 activations, else float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def _np(t: Tensor) -> Any:
    t = t.detach()
    return (t.view(torch.uint16) if t.dtype == torch.bfloat16 else t).numpy()


def check_inputs(x: Tensor, weight: Tensor, bias: Tensor | None, gy: Tensor | None = None) -> None:
    """Refuse what the kernels cannot read safely, with a ValueError that says why."""
    if x.device.type != "cpu" or x.dim() != 3 or x.dtype not in STORAGE:
        raise ValueError(
            "numba conv: x must be a (batch, length, channels) CPU tensor of float64, float32 or "
            f"bfloat16, got {tuple(x.shape)} {x.dtype} on {x.device}"
        )
    d = x.shape[2]
    want = compute_dtype(x.dtype)
    if weight.dim() != 2 or weight.shape[0] != d or weight.shape[1] < 1 or not weight.is_contiguous():
        raise ValueError(f"numba conv: weight must be contiguous ({d}, K), got {tuple(weight.shape)}")
    if bias is not None and (bias.shape != (d,) or not bias.is_contiguous()):
        raise ValueError(f"numba conv: bias must be contiguous ({d},), got {tuple(bias.shape)}")
    if any(t.dtype != want for t in (weight, bias) if t is not None):
        raise ValueError(f"numba conv: weight and bias must be {want} for {x.dtype} activations")
    for name, t in (("x", x), ("grad", gy)):
        if t is None:
            continue
        if t.shape != x.shape or t.dtype != x.dtype:
            raise ValueError(f"numba conv: {name} must be {tuple(x.shape)} {x.dtype}, got {tuple(t.shape)}")
        if t.numel() and (t.stride(2) != 1 or min(t.stride()) < 0):
            raise ValueError(
                f"numba conv: {name} needs contiguous channels (stride 1 along the last axis), "
                f"got strides {t.stride()}"
            )


def _flat(t: Tensor) -> tuple[Any, tuple[int, int]]:
    """A (b, L, d) tensor with unit channel stride as the 1-d span of storage it covers (from its
    first element to its last) and its (batch, step) element strides."""
    span = (t.shape[0] - 1) * t.stride(0) + (t.shape[1] - 1) * t.stride(1) + t.shape[2]
    return _np(t.as_strided((span,), (1,))), (t.stride(0), t.stride(1))


def _jobs(x: Tensor) -> int:
    from .conv_numba_kernels import BLOCK

    return x.shape[0] * -(-x.shape[2] // BLOCK)


def _params(weight: Tensor, bias: Tensor | None) -> tuple[Any, Any]:
    """numpy arrays of copies of the (small) weight and bias: a numpy view of a parameter would pin
    its storage, and FSDP2 frees sharded parameters' storage after each forward."""
    bias = bias if bias is not None else weight.new_zeros(weight.shape[0])
    return _np(weight.detach().clone()), _np(bias.detach().clone())


@torch.library.custom_op("plantbimoe::numba_conv_silu", mutates_args=())
def _conv_op(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """silu(causal depthwise conv1d(x) + bias), token-major (b, L, d) in and out."""
    check_inputs(x, weight, bias)
    y = torch.empty(x.shape, dtype=x.dtype)
    if x.numel():
        args = (*_flat(x), *_params(weight, bias), _np(y))
        run_jobs(_entry("forward_jobs", x.dtype), _jobs(x), *args)
    return y


@_conv_op.register_fake
def _conv_fake(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    return x.new_empty(x.shape)


@torch.library.custom_op("plantbimoe::numba_conv_silu_backward", mutates_args=())
def _conv_backward_op(
    gy: Tensor, x: Tensor, weight: Tensor, bias: Tensor | None
) -> tuple[Tensor, Tensor, Tensor]:
    """Gradients w.r.t. x (like x), weight (d, K) and bias (d,)."""
    check_inputs(x, weight, bias, gy)
    b, d = x.shape[0], x.shape[2]
    dx = torch.empty(x.shape, dtype=x.dtype)
    dw, db = weight.new_zeros(b, *weight.shape), weight.new_zeros(b, d)
    if x.numel():
        args = (*_flat(x), *_params(weight, bias), *_flat(gy), _np(dx), _np(dw), _np(db))
        run_jobs(_entry("backward_jobs", x.dtype), _jobs(x), *args)
    return dx, dw.sum(0), db.sum(0)


@_conv_backward_op.register_fake
def _conv_backward_fake(
    gy: Tensor, x: Tensor, weight: Tensor, bias: Tensor | None
) -> tuple[Tensor, Tensor, Tensor]:
    return x.new_empty(x.shape), weight.new_empty(weight.shape), weight.new_empty(weight.shape[0])


def _setup_context(ctx, inputs, output) -> None:  # type: ignore[no-untyped-def]
    ctx.save_for_backward(*inputs)


def _conv_backward(ctx, gy):  # type: ignore[no-untyped-def]
    x, weight, bias = ctx.saved_tensors
    gy = gy if gy.stride(2) == 1 else gy.contiguous()
    dx, dw, db = torch.ops.plantbimoe.numba_conv_silu_backward(gy, x, weight, bias)
    return dx, dw, db if bias is not None else None


_conv_op.register_autograd(_conv_backward, setup_context=_setup_context)


def conv1d_silu_numba(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """silu(causal depthwise conv1d(x) + bias) on CPU: x (b, L, d) with contiguous channels
    (float64, float32 or bf16), weight (d, K) and bias (d,) cast to the compute dtype (float32 for
    bf16). Returns a contiguous (b, L, d) tensor in x's dtype."""
    if x.device.type != "cpu":
        raise ValueError(f"numba conv: x must be a CPU tensor, got {x.device}")
    dtype = compute_dtype(x.dtype)
    return torch.ops.plantbimoe.numba_conv_silu(x, weight.to(dtype), None if bias is None else bias.to(dtype))
