"""Data components and LightningDataModules.

Names are imported lazily so that light users (the FASTA reader, the shard builder) do not pay
for importing Lightning.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "FastaChunk": "datamodules.fasta",
    "FastaFormatError": "datamodules.fasta",
    "FastaRecord": "datamodules.fasta",
    "fasta_index": "datamodules.fasta",
    "read_fasta": "datamodules.fasta",
    "read_fasta_chunks": "datamodules.fasta",
    "embedded_annotation": "datamodules.embedded",
    "embedded_assemblies": "datamodules.embedded",
    "MLMCollator": "datamodules.masking",
    "mask_tokens": "datamodules.masking",
    "FastaWindowDataModule": "datamodules.fasta_datamodule",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'datamodules' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
