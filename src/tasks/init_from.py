"""Initialise a fine-tuning backbone from a pretraining checkpoint, with a key report.

Sources are read by `plantbimoe.pretrained.backbone_tensors` and compared by
`plantbimoe.checkpoints.compare_keys`: the same reader and report as `load_pretrained` and the CLI.
"""

from __future__ import annotations

import logging
from pathlib import Path

from torch import nn

from plantbimoe.checkpoints import KeyReport, compare_keys
from plantbimoe.pretrained import backbone_tensors
from plantbimoe.shipped import resolve_model

log = logging.getLogger(__name__)


def load_backbone(backbone: nn.Module, path: str | Path, strict: bool = True) -> KeyReport:
    """Copy the backbone tensors of checkpoint `path` (or a shipped model's short name) into `backbone`.

    The prefix (``model.backbone.`` for MLM runs, ``backbone.`` for fine-tuned runs, none for a
    bare backbone) is the one matching most of the backbone's keys. Missing, unexpected and
    mis-shaped keys are reported; with `strict` any of them raises before anything is copied.
    """
    try:
        path = resolve_model(path)
    except FileNotFoundError as error:
        raise FileNotFoundError(f"init_from: {error}") from None
    target = backbone.state_dict()
    prefix, source = backbone_tensors(path, target)
    report = compare_keys(target, source, prefix)
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
