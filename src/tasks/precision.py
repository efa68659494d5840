"""`trainer.precision` as a run will use it: ``auto`` picks bf16 where the hardware computes it.

``auto`` (the CPU trainer's default) becomes ``bf16-mixed`` on a CPU with native bf16
(AVX512-BF16, AMX or Arm BF16; `plantbimoe.cpu`) or a GPU that supports it, else ``32-true``.
An explicit bf16 request on a CPU without native bf16 runs ``32-true`` with a warning: oneDNN
would emulate bf16 through float32, slower than float32 itself. One log line says what was chosen.
"""

from __future__ import annotations

import logging
import warnings

import torch
from omegaconf import DictConfig, open_dict

from plantbimoe.cpu import cpu_bf16_support

log = logging.getLogger(__name__)
AUTO = "auto"
BF16 = ("bf16-mixed", "bf16-true", "bf16")


def _on_cpu(trainer: DictConfig) -> bool:
    accelerator = str(trainer.get("accelerator") or "auto")
    return accelerator == "cpu" or (accelerator == "auto" and not torch.cuda.is_available())


def _gpu_bf16() -> bool:
    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def resolve(trainer: DictConfig) -> str:
    """The precision `trainer` (a `trainer` config node) runs with; rewrites the node in place."""
    requested = str(trainer.get("precision", "32-true"))
    on_cpu = _on_cpu(trainer)
    native = cpu_bf16_support() if on_cpu else ("GPU" if _gpu_bf16() else None)
    if requested == AUTO:
        chosen = "bf16-mixed" if native else "32-true"
        why = f"native bf16: {native}" if native else "no native bf16 on this " + ("CPU" if on_cpu else "GPU")
        log.info("trainer.precision=auto -> %s (%s; trainer.precision=32-true opts out)", chosen, why)
    elif requested in BF16 and on_cpu and not native:
        chosen = "32-true"
        warnings.warn(f"trainer.precision={requested}: this CPU has no native bf16 instructions "
                      "(no AVX512-BF16/AMX-BF16 flag); running 32-true instead", RuntimeWarning, stacklevel=2)
    else:
        return requested
    with open_dict(trainer):
        trainer.precision = chosen
    return chosen
