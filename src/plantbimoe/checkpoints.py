"""Reading checkpoint files and comparing state dicts: the one place that opens weights.

Files: ``model.safetensors`` / ``pytorch_model.bin`` of a released-layout folder, a bare
``.safetensors``, a Lightning ``.ckpt`` file, or a sharded ``.ckpt`` folder of ``trainer=fsdp2``
(torch.distributed.checkpoint). Pickled files are read with ``weights_only=True``; nothing else
is ever unpickled. `plantbimoe.pretrained.read_checkpoint` interprets what these return.
"""

from __future__ import annotations

import pickle
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

StateDict = dict[str, torch.Tensor]

# where our Lightning tasks keep their modules in ``state_dict``
MLM_BACKBONE_PREFIX = "model.backbone."  # tasks.mlm.MaskedLMTask (model = PlantBiMoEForMaskedLM)
MLM_HEAD_KEY = "model.lm_head.weight"  # tied to MLM_BACKBONE_PREFIX + "embeddings.weight"
TASK_BACKBONE_PREFIX = "backbone."  # tasks.sequence.SequenceTask
HEAD_PREFIX = "head."  # its head; also the head tensors of an exported fine-tuned folder
BACKBONE_PREFIXES = (MLM_BACKBONE_PREFIX, TASK_BACKBONE_PREFIX, "")  # "" = a bare backbone
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def load_file(path: Path) -> Any:
    """A pickled checkpoint read with ``weights_only=True``; unreadable files raise a ValueError."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as e:
        raise ValueError(f"{path}: cannot read as a checkpoint (torch.load, weights_only=True): {e}") from e


def load_safetensors(path: Path) -> StateDict:
    from safetensors.torch import load_file as load

    return load(str(path))


def read_weights(folder: str | Path) -> StateDict:
    """Tensors of a released-layout folder: ``model.safetensors``, else ``pytorch_model.bin``."""
    folder = Path(folder)
    st, binary = (folder / name for name in WEIGHT_FILES)
    if st.is_file():
        return load_safetensors(st)
    if binary.is_file():
        return load_file(binary)
    raise FileNotFoundError(f"{folder}: no {' or '.join(WEIGHT_FILES)}")


def load_sharded(folder: Path) -> dict[str, Any]:
    """A sharded (torch.distributed.checkpoint) Lightning checkpoint folder, gathered in memory:
    its ``state_dict`` tensors only (not the optimizer state) with the Lightning metadata of
    ``meta.pt``."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.api import CheckpointException  # a BaseException
    from torch.distributed.checkpoint.metadata import TensorStorageMetadata

    prefix = "state_dict."
    try:
        reader = dcp.FileSystemReader(folder)
        entries = reader.read_metadata().state_dict_metadata
        state = {
            key[len(prefix) :]: torch.empty(entry.size, dtype=entry.properties.dtype)
            for key, entry in entries.items()
            if key.startswith(prefix) and isinstance(entry, TensorStorageMetadata)
        }
        with warnings.catch_warnings():  # "assuming ... a single process": what we want
            warnings.simplefilter("ignore", UserWarning)
            dcp.load({"state_dict": state}, storage_reader=reader, no_dist=True)
    except (Exception, CheckpointException) as e:  # noqa: BLE001 - all mean "unreadable"
        failures = getattr(e, "failures", None) or {0: e}  # CheckpointException: per rank
        reason = str(next(iter(failures.values()))).splitlines()[0][:300]
        raise ValueError(f"{folder}: cannot read the sharded checkpoint: {reason}") from None
    meta = load_file(folder / "meta.pt")
    if not state or not isinstance(meta, dict):
        raise ValueError(f"{folder}: not a sharded Lightning checkpoint (no state_dict tensors)")
    return {**meta, "state_dict": state}


def is_sharded(folder: Path) -> bool:
    return (folder / "meta.pt").is_file() and (folder / ".metadata").is_file()


def read_state_dict(path: Path) -> StateDict:
    """The tensors of a file or sharded folder as saved (a Lightning checkpoint's ``state_dict``)."""
    if path.is_dir() and is_sharded(path):
        return load_sharded(path)["state_dict"]
    if path.suffix == ".safetensors":
        return load_safetensors(path)
    checkpoint = load_file(path)
    state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        raise ValueError(f"{path}: holds no state_dict")
    return state


def _listed(keys: list[str], limit: int) -> str:
    more = f" ... (+{len(keys) - limit})" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


@dataclass
class KeyReport:
    """How tensors fit a module's state dict: the prefix they were read under, how many were
    loaded, and every key missing, unexpected or mis-shaped."""

    prefix: str = ""
    loaded: int = 0
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    def problems(self, limit: int = 10) -> str:
        """'N missing: ...; N unexpected: ...; N shape mismatch: ...' (empty when clean)."""
        parts = [
            f"{len(keys)} {title}: {_listed(keys, limit)}"
            for title, keys in (("missing", self.missing), ("unexpected", self.unexpected),
                                ("shape mismatch", self.mismatched))
            if keys
        ]
        return "; ".join(parts)

    def describe(self, limit: int = 10) -> str:
        loaded = f"{self.loaded} tensors loaded from prefix {self.prefix!r}"
        return "; ".join(p for p in (loaded, self.problems(limit)) if p)


def compare_keys(
    expected: Mapping[str, torch.Tensor], found: Mapping[str, torch.Tensor], prefix: str = ""
) -> KeyReport:
    """The key report of `found` against `expected` (names as given; `prefix` is recorded)."""
    return KeyReport(
        prefix=prefix,
        missing=sorted(k for k in expected if k not in found),
        unexpected=sorted(k for k in found if k not in expected),
        mismatched=sorted(
            f"{k} {tuple(found[k].shape)} vs expected {tuple(v.shape)}"
            for k, v in expected.items()
            if k in found and found[k].shape != v.shape
        ),
    )
