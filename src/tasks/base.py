"""Shared LightningModule plumbing: optimizer and schedule from Hydra partials."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from lightning import LightningModule
from omegaconf import DictConfig, OmegaConf
from torch import nn
from torch.optim import Optimizer

from tasks.optim import build_param_groups


def to_plain_dict(cfg: Mapping | DictConfig | None) -> dict:
    """A Hydra/OmegaConf node (or mapping) as a plain, picklable dict."""
    if cfg is None:
        return {}
    if isinstance(cfg, DictConfig):
        return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
    return dict(cfg)


class OptimizedTask(LightningModule):
    """Builds AdamW-style parameter groups and a per-step schedule.

    ``optimizer`` and ``scheduler`` are Hydra ``_partial_`` callables: ``optimizer(params)`` and
    ``scheduler(optimizer=..., total_steps=...)``. Subclasses list their modules with their own
    learning-rate factor in ``lr_groups()`` (e.g. a backbone at a lower rate than a head).
    """

    def __init__(self, optimizer: Callable[..., Optimizer], scheduler: Callable[..., Any] | None) -> None:
        super().__init__()
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler

    def configure_model(self) -> None:
        """Under ``FSDP2Strategy`` (a device mesh is set), shard each block and then each child
        module with parameters; a no-op for every other strategy."""
        if self.device_mesh is None:
            return
        from plantbimoe.fsdp import fully_shard_blocks

        roots = [m for m in self.children() if next(m.parameters(), None) is not None]
        reshard = getattr(self.trainer.strategy, "reshard_after_forward", True)
        fully_shard_blocks(roots, self.device_mesh["data_parallel"], reshard_after_forward=reshard)

    def compile_network(self, backend: str = "inductor") -> None:
        """torch.compile each child module that has parameters, in place (``nn.Module.compile``:
        parameter names, checkpoints and exported weights stay as they are), with `backend`."""
        for module in self.children():
            if next(module.parameters(), None) is not None:
                module.compile(backend=backend)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Keep torch's random state (dropout) so a resumed run continues the same draws."""
        checkpoint["torch_rng_state"] = torch.get_rng_state()
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            checkpoint["cuda_rng_states"] = torch.cuda.get_rng_state_all()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if "torch_rng_state" in checkpoint:
            torch.set_rng_state(checkpoint["torch_rng_state"])
        if "cuda_rng_states" in checkpoint and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(checkpoint["cuda_rng_states"])

    def lr_groups(self) -> list[tuple[nn.Module, float]]:
        """(module, lr factor) pairs whose parameters are optimized; default: the whole module."""
        return [(self, 1.0)]

    def configure_optimizers(self) -> dict:
        keywords = getattr(self.optimizer_factory, "keywords", {})
        base_lr = float(keywords.get("lr", 1e-3))
        weight_decay = float(keywords.get("weight_decay", 0.0))
        groups = []
        for module, factor in self.lr_groups():
            groups += build_param_groups(module.named_parameters(), weight_decay, lr=base_lr * factor)
        if not groups:
            raise ValueError("No trainable parameters: is everything frozen?")
        optimizer = self.optimizer_factory(params=groups)
        if self.scheduler_factory is None:
            return {"optimizer": optimizer}
        total = int(self.trainer.estimated_stepping_batches)
        scheduler = self.scheduler_factory(optimizer=optimizer, total_steps=max(1, total))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
