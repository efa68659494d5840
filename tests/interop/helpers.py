"""Tiny models and real Lightning checkpoints for the interop and inference tests."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import torch

from plantbimoe import PlantBiMoEConfig, PlantBiMoEForMaskedLM
from tests.model.helpers import GOLDEN_DIR, small_config

__all__ = ["GOLDEN_DIR", "tiny_config", "tiny_mlm", "save_lightning_checkpoint", "mlm_task", "sequence_task"]


def tiny_config() -> PlantBiMoEConfig:
    """2 layers (layer 1 MoE), d_model 32."""
    return small_config()


def tiny_mlm(seed: int = 0) -> PlantBiMoEForMaskedLM:
    torch.manual_seed(seed)
    return PlantBiMoEForMaskedLM(tiny_config()).eval()


def save_lightning_checkpoint(task, path: Path) -> Path:
    """Write `task` as Lightning's Trainer writes checkpoints (no training)."""
    from lightning import Trainer

    trainer = Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False,
                      enable_model_summary=False, accelerator="cpu", devices=1)
    trainer.strategy.connect(task)
    trainer.save_checkpoint(path)
    return path


def mlm_task(seed: int = 0):
    from tasks.mlm import MaskedLMTask

    torch.manual_seed(seed)
    return MaskedLMTask(tiny_config().to_dict(), partial(torch.optim.AdamW, lr=1e-3))


def sequence_task(task_type: str = "multiclass", num_labels: int = 3, seed: int = 0, **kwargs):
    from tasks.sequence import SequenceTask

    metric = "r2" if task_type == "regression" else "auroc"
    torch.manual_seed(seed)
    task = SequenceTask(tiny_config().to_dict(), partial(torch.optim.AdamW, lr=1e-3), task_type,
                        num_labels, metric, **kwargs)
    return task.eval()
