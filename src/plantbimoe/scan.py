"""Mamba-1 selective scan: h_t = exp(dt*A) h_{t-1} + dt*B_t x_t,  y_t = C_t h_t + D x_t.

Layout follows mamba-ssm: u, delta, z are (batch, d_inner, length); A is (d_inner, d_state);
B, C are (batch, d_state, length); D and delta_bias are (d_inner,).

Backends: ``reference`` (the sequential loop below, the test oracle), ``torch`` (the chunked
pure-PyTorch scan of ``scan_torch``: CPU and GPU, hand-written backward), ``numba`` (compiled CPU
kernels, see ``scan_numba``), ``cuda`` (mamba-ssm's fused kernel, see ``scan_cuda``), ``triton``
(Triton kernels for CUDA tensors, see ``scan_triton``) and ``auto``: for fp32/fp16/bf16 CUDA
tensors ``cuda`` when mamba-ssm imports, else ``triton`` when Triton imports; ``numba`` for CPU
tensors when numba imports; else ``torch``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from plantbimoe.scan_cuda import KERNEL_DTYPES, cuda_scan_available, cuda_selective_scan
from plantbimoe.scan_numba import numba_available, selective_scan_numba
from plantbimoe.scan_torch import selective_scan_chunked
from plantbimoe.scan_triton import selective_scan_triton, triton_available

BACKENDS = ("auto", "torch", "numba", "cuda", "triton", "reference")


def selective_scan_reference(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None = None,
    z: torch.Tensor | None = None,
    delta_bias: torch.Tensor | None = None,
    delta_softplus: bool = True,
) -> torch.Tensor:
    """Plain sequential loop; the oracle every backend is tested against."""
    if delta_bias is not None:
        delta = delta + delta_bias[:, None]
    if delta_softplus:
        delta = F.softplus(delta)
    dt = delta.transpose(1, 2)  # (b, L, d)
    decay = torch.exp(dt.unsqueeze(-1) * A)  # (b, L, d, n)
    drive = (dt * u.transpose(1, 2)).unsqueeze(-1) * B.transpose(1, 2).unsqueeze(2)  # (b, L, d, n)
    h = torch.zeros_like(decay[:, 0])
    ys = []
    for a_t, x_t, c_t in zip(decay.unbind(1), drive.unbind(1), C.transpose(1, 2).unbind(1), strict=True):
        h = a_t * h + x_t
        ys.append(torch.einsum("bdn,bn->bd", h, c_t))
    y = torch.stack(ys, dim=2)  # (b, d, L)
    if D is not None:
        y = y + u * D[:, None]
    if z is not None:
        y = y * F.silu(z)
    return y


def _cast(tensors: tuple[torch.Tensor | None, ...], dtype: torch.dtype) -> list[torch.Tensor | None]:
    return [t if t is None else t.to(dtype) for t in tensors]


def resolve_backend(backend: str, u: torch.Tensor) -> str:
    """The concrete backend (any but "auto") that ``backend`` means for ``u``."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown scan backend {backend!r}; expected one of {BACKENDS}")
    if backend != "auto":
        return backend
    if u.is_cuda and u.dtype in KERNEL_DTYPES:
        if cuda_scan_available():
            return "cuda"
        if triton_available():
            return "triton"
    if u.device.type == "cpu" and numba_available():
        return "numba"
    return "torch"


def selective_scan(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None = None,
    z: torch.Tensor | None = None,
    delta_bias: torch.Tensor | None = None,
    delta_softplus: bool = True,
    backend: str = "auto",
    *,
    chunk_size: int | None = None,
    checkpoint_segment: int | None = None,
) -> torch.Tensor:
    """Selective scan through ``backend`` (one of ``BACKENDS``).

    fp32/fp64 inputs are computed in their own dtype; fp16/bf16 inputs are computed in fp32 by
    the ``torch`` and ``reference`` backends (read natively, with a float32 state, by ``cuda``,
    ``triton`` and, for bf16, ``numba``; ``numba`` takes fp16 as an fp32 copy) and the result is
    returned in u's dtype. ``chunk_size`` and ``checkpoint_segment`` tune the ``torch`` backend
    only (defaults: ``scan_torch.CHUNK_SIZE`` / ``scan_torch.CHECKPOINT_SEGMENT``).
    """
    name = resolve_backend(backend, u)
    if name == "cuda":
        return cuda_selective_scan(u, delta, A, B, C, D, z, delta_bias, delta_softplus)
    if name == "triton":
        return selective_scan_triton(u, delta, A, B, C, D, z, delta_bias, delta_softplus)
    dtype = u.dtype if u.dtype == torch.float64 else torch.float32
    if name == "numba":  # bf16 activations as stored (float32 inside the kernels), fp16 as fp32
        act = u.dtype if u.dtype == torch.bfloat16 else dtype
        y = selective_scan_numba(
            *_cast((u, delta), act), *_cast((A,), dtype), *_cast((B, C), act), *_cast((D,), dtype),
            *_cast((z,), act), *_cast((delta_bias,), dtype), delta_softplus,
        )  # fmt: skip
        return y.to(u.dtype)
    up = _cast((u, delta, A, B, C, D, z, delta_bias), dtype)
    if name == "reference":
        y = selective_scan_reference(*up, delta_softplus)
    else:
        y = selective_scan_chunked(*up, delta_softplus, chunk_size, checkpoint_segment)
    return y.to(u.dtype)
