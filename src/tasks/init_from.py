"""Initialise a fine-tuning backbone from a pretraining checkpoint, with a key report."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from plantbimoe import load_backbone_state

log = logging.getLogger(__name__)
# where a backbone's weights sit in the checkpoints this project writes
BACKBONE_PREFIXES = ("model.backbone.", "backbone.", "")


@dataclass
class LoadReport:
    """What `load_backbone` matched: the prefix used and every key that did not fit."""

    prefix: str
    loaded: int
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    def describe(self, limit: int = 10) -> str:
        parts = [f"{self.loaded} tensors loaded from prefix {self.prefix!r}"]
        for title, keys in (
            ("missing", self.missing),
            ("unexpected", self.unexpected),
            ("shape mismatch", self.mismatched),
        ):
            if keys:
                more = f" ... (+{len(keys) - limit})" if len(keys) > limit else ""
                parts.append(f"{len(keys)} {title}: {', '.join(keys[:limit])}{more}")
        return "; ".join(parts)


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a Lightning ``.ckpt`` (as saved), or the backbone of a released/exported folder or
    of a ``.safetensors`` beside its ``config.json`` (in `PlantBiMoEModel` names, via
    `plantbimoe.load_backbone_state`); a bare ``.safetensors`` is returned as saved.
    Pickled checkpoints are read with ``weights_only=True``; nothing else is unpickled.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"init_from: checkpoint not found: {path}")
    configured = path.is_dir() or (path.suffix == ".safetensors" and (path.parent / "config.json").is_file())
    if configured:
        return load_backbone_state(path)[1]
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        raise ValueError(f"init_from: {path} holds no state_dict")
    return state


def load_backbone(backbone: nn.Module, path: str | Path, strict: bool = True) -> LoadReport:
    """Copy the backbone tensors of checkpoint `path` into `backbone`.

    The prefix (``model.backbone.`` for MLM runs, ``backbone.`` for fine-tuned runs, none for a
    bare backbone) is the one matching most of the backbone's keys. Missing, unexpected and
    mis-shaped keys are reported; with `strict` any of them raises before anything is copied.
    """
    state = read_state_dict(path)
    target = backbone.state_dict()
    prefix = max(BACKBONE_PREFIXES, key=lambda p: sum(p + k in state for k in target))
    source = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    report = LoadReport(prefix=prefix, loaded=0)
    report.missing = sorted(k for k in target if k not in source)
    report.unexpected = sorted(k for k in source if k not in target)
    report.mismatched = sorted(
        f"{k} {tuple(source[k].shape)} vs {tuple(v.shape)}"
        for k, v in target.items()
        if k in source and source[k].shape != v.shape
    )
    matched = {k: v for k, v in source.items() if k in target and v.shape == target[k].shape}
    if not matched:
        raise ValueError(f"init_from: no backbone tensors in {path} ({report.describe()})")
    if strict and not report.clean:
        raise ValueError(
            f"init_from: {path} does not fit the backbone: {report.describe()} "
            "(set init_strict=false to load the matching tensors anyway)"
        )
    backbone.load_state_dict(matched, strict=False)
    report.loaded = len(matched)
    log.info("init_from %s: %s", path, report.describe())
    return report
