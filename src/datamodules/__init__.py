"""Data components and LightningDataModules.

Names are imported lazily so that light users (the FASTA reader, the shard builder) do not pay
for importing Lightning.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "FastaChunk": "plantbimoe.fasta",
    "FastaFormatError": "plantbimoe.fasta",
    "FastaRecord": "plantbimoe.fasta",
    "fasta_index": "plantbimoe.fasta",
    "read_fasta": "plantbimoe.fasta",
    "read_fasta_chunks": "plantbimoe.fasta",
    "embedded_annotation": "plantbimoe.embedded",
    "embedded_assemblies": "plantbimoe.embedded",
    "MLMCollator": "datamodules.masking",
    "mask_tokens": "datamodules.masking",
    "FastaWindowDataModule": "datamodules.fasta_datamodule",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'datamodules' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
