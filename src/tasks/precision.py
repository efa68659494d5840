"""`trainer.precision` as a run will use it: ``auto`` picks bf16 where the hardware computes it.

Lightning's names are mapped onto the command-line tools' and resolved by the same rule,
`plantbimoe.cpu.resolve_precision`: ``auto`` (the CPU trainer's default) becomes ``bf16-mixed``
where the CPU or GPU computes bf16 natively, else ``32-true``, with one log line saying which; an
explicit bf16 request on a CPU without native bf16 warns and runs ``32-true`` (oneDNN would
emulate bf16 through float32, slower than float32 itself).
"""

from __future__ import annotations

import logging

import torch
from omegaconf import DictConfig, open_dict

from plantbimoe.cpu import native_bf16, resolve_precision

log = logging.getLogger(__name__)
BF16 = ("bf16-mixed", "bf16-true", "bf16")
LIGHTNING = {"bf16": "bf16-mixed", "fp32": "32-true"}


def _device(trainer: DictConfig) -> str:
    accelerator = str(trainer.get("accelerator") or "auto")
    on_cpu = accelerator == "cpu" or (accelerator == "auto" and not torch.cuda.is_available())
    return "cpu" if on_cpu else "cuda"


def resolve(trainer: DictConfig) -> str:
    """The precision `trainer` (a `trainer` config node) runs with; rewrites the node in place."""
    requested = str(trainer.get("precision", "32-true"))
    short = "auto" if requested == "auto" else "bf16" if requested in BF16 else None
    if short is None:
        return requested
    device = _device(trainer)
    got = resolve_precision(short, device, what=f"trainer.precision={requested}")
    chosen = requested if got == short else LIGHTNING[got]
    if short == "auto":
        native = native_bf16(device)
        why = f"native bf16: {native}" if native else f"no native bf16 on this {device.upper()}"
        log.info("trainer.precision=auto -> %s (%s; trainer.precision=32-true opts out)", chosen, why)
    with open_dict(trainer):
        trainer.precision = chosen
    return chosen
