"""What train.py does, step by step: instantiate from the config, fit, test, return the metric."""

from __future__ import annotations

import logging

import hydra
import lightning as L
from lightning import Callback, LightningDataModule, LightningModule, Trainer
from lightning.pytorch.loggers import Logger
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)


def instantiate_dict(cfg: DictConfig | None) -> list:
    """Instantiate every ``_target_`` node of a mapping (callbacks, loggers); None -> []."""
    if not cfg:
        return []
    return [hydra.utils.instantiate(node) for node in cfg.values() if node and "_target_" in node]


def build(cfg: DictConfig) -> tuple[LightningDataModule, LightningModule, Trainer]:
    """Datamodule, task module and trainer of a composed config (no training)."""
    if cfg.get("data") is None:
        raise ValueError("No data selected: choose data/pretrain=<corpus> or data/mpgb=<dataset>.")
    # plain dicts/lists, not DictConfig, reach the constructors: checkpoints stay weights_only-loadable
    datamodule = hydra.utils.instantiate(cfg.data, _convert_="all")
    task = hydra.utils.instantiate(cfg.task, _convert_="all")
    callbacks: list[Callback] = instantiate_dict(cfg.get("callbacks"))
    loggers: list[Logger] = instantiate_dict(cfg.get("logger"))
    trainer = hydra.utils.instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    return datamodule, task, trainer


def run(cfg: DictConfig) -> float | None:
    """Seed, build, optionally initialise from a checkpoint, fit, test; return the optimized metric."""
    L.seed_everything(cfg.seed, workers=True)
    datamodule, task, trainer = build(cfg)
    if cfg.get("init_from"):
        if not hasattr(task, "init_from"):
            raise ValueError(f"{type(task).__name__} cannot initialise from a checkpoint (init_from).")
        task.init_from(cfg.init_from)
    for lg in trainer.loggers:
        lg.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    if cfg.get("train", True):
        trainer.fit(task, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
    if cfg.get("test", False):
        best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
        if not cfg.get("train", True):
            best = cfg.get("ckpt_path") or ""
        trainer.test(task, datamodule=datamodule, ckpt_path=best or None, weights_only=True)
        metrics.update({k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1})
    name = cfg.get("optimized_metric")
    if name and name not in metrics:
        log.warning("Optimized metric %r was not logged; available: %s", name, sorted(metrics))
    return metrics.get(name) if name else None
