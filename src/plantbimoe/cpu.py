"""What this CPU offers for bfloat16, and the precision a run on it should use.

bf16 "pays" on a CPU whose instructions compute with it natively: x86 AVX512-BF16 (dot products
of bf16 pairs into float32) or AMX-BF16 (tile matrix multiplies), Arm's BF16 extension. Without
them oneDNN emulates bf16 through float32 and autocast only adds conversions, so a bf16 request
runs in float32 there (with one warning).
"""

from __future__ import annotations

import os
import warnings
from functools import cache

import torch

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
"""Precision names of the command-line tools (fp32 = no autocast; auto = bf16 where the hardware
computes it natively, else fp32)."""

_FLAG_NAMES = (("amx_bf16", "AMX-BF16"), ("avx512_bf16", "AVX512-BF16"), ("bf16", "Arm BF16"))


@cache
def cpu_flags() -> frozenset[str]:
    """Feature flags of the first CPU in /proc/cpuinfo (x86 "flags", Arm "Features"); empty where
    the file is missing or unreadable (macOS, Windows)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in ("flags", "Features"):
                    return frozenset(value.split())
    except OSError:
        pass
    return frozenset()


@cache
def cpu_bf16_support() -> str | None:
    """The native bf16 instruction sets of this CPU, e.g. "AMX-BF16, AVX512-BF16", or None.

    Read from /proc/cpuinfo; where that is unavailable, torch's dispatch capability ("AMX" or
    "AVX512_BF16" on builds that report them) is the fallback."""
    flags = cpu_flags()
    found = [name for flag, name in _FLAG_NAMES if flag in flags]
    if found:
        return ", ".join(found)
    if not flags:
        capability = torch.backends.cpu.get_cpu_capability().upper()
        if "AMX" in capability or "BF16" in capability:
            return capability
    return None


def usable_cores() -> int:
    """The cores this process may run on: its CPU affinity (taskset, SLURM's or a container's CPU
    set) where the OS reports one, else every core of the machine."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def cpu_isa() -> str:
    """The widest x86 vector extension in the CPU flags (or torch's capability elsewhere)."""
    flags = cpu_flags()
    for flag, name in (("avx512f", "AVX512"), ("avx2", "AVX2"), ("asimd", "NEON")):
        if flag in flags:
            return name
    return torch.backends.cpu.get_cpu_capability()


def cpu_summary() -> str:
    """One line for headers and `plantbimoe info`, e.g. "AVX512, bf16: AVX512-BF16 (torch: AVX512)"."""
    bf16 = cpu_bf16_support() or "none (bf16 runs in float32)"
    return f"{cpu_isa()}, bf16: {bf16} (torch: {torch.backends.cpu.get_cpu_capability()})"


@cache
def _warn_no_bf16(what: str) -> None:
    warnings.warn(
        f"{what}: this CPU has no native bf16 instructions (no AVX512-BF16/AMX-BF16 flag); "
        "running in float32 instead",
        RuntimeWarning,
        stacklevel=3,
    )


def native_bf16(device: torch.device | str) -> str | None:
    """What computes bf16 natively on ``device``: the CPU's instruction sets (`cpu_bf16_support`),
    "GPU" for a CUDA device that supports bf16, or None."""
    device = torch.device(device)
    if device.type == "cpu":
        return cpu_bf16_support()
    return "GPU" if device.type == "cuda" and torch.cuda.is_bf16_supported() else None


def resolve_precision(
    precision: str, device: torch.device | str = "cpu", what: str = "--precision bf16"
) -> str:
    """``precision`` (one of ``PRECISIONS``) as it will run on ``device``: "auto" becomes "bf16"
    where `native_bf16` finds support, else "fp32"; "bf16" on a CPU without native bf16 becomes
    "fp32" with one warning per process (naming ``what``); an unknown name raises ValueError."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; expected one of {', '.join(PRECISIONS)}")
    device = torch.device(device)
    if precision == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    if precision == "bf16" and device.type == "cpu" and cpu_bf16_support() is None:
        _warn_no_bf16(what)
        return "fp32"
    return precision
