"""What train.py does, step by step: instantiate from the config, fit, test, return the metric."""

from __future__ import annotations

import logging
import zipfile
from pathlib import Path

import hydra
import lightning as L
from lightning import Callback, LightningDataModule, LightningModule, Trainer
from lightning.pytorch.callbacks import ProgressBar
from lightning.pytorch.loggers import Logger
from omegaconf import DictConfig, OmegaConf, open_dict

from tasks import precision, quiet
from tasks.callbacks import StepProgressBar
from tasks.head_refit import refit_checkpoint
from tasks.metrics import monitor_mode

log = logging.getLogger(__name__)
RICH_BARS = ("lightning.pytorch.callbacks.RichProgressBar",
             "lightning.pytorch.callbacks.progress.RichProgressBar")


def instantiate_dict(cfg: DictConfig | None) -> list:
    """Instantiate every ``_target_`` node of a mapping (callbacks, loggers); None -> []."""
    if not cfg:
        return []
    return [hydra.utils.instantiate(node) for node in cfg.values() if node and "_target_" in node]


def _callbacks(cfg: DictConfig | None) -> list[Callback]:
    """The configured callbacks; Lightning's rich bar becomes `StepProgressBar` (same options),
    which shows steps instead of "Epoch 0/-2" when the run is bounded by max_steps; ``mode: auto``
    (checkpointing, early stopping) becomes the monitored metric's direction (`monitor_mode`)."""
    step_bar = f"{StepProgressBar.__module__}.{StepProgressBar.__name__}"
    callbacks = []
    for node in (cfg or {}).values():
        if not node or "_target_" not in node:
            continue
        extra = {"_target_": step_bar} if node._target_ in RICH_BARS else {}
        if node.get("mode") == "auto":
            extra["mode"] = monitor_mode(node.monitor)
        callbacks.append(hydra.utils.instantiate(node, **extra))
    return callbacks


def clamp_validation(cfg: DictConfig) -> None:
    """An integer `trainer.val_check_interval` beyond the run's last batch would never validate
    (no checkpoint, no val metric): clamp it to the last batch, with one info line."""
    trainer = cfg.trainer
    interval, steps = trainer.get("val_check_interval"), trainer.get("max_steps") or -1
    if trainer.get("fast_dev_run") or trainer.get("limit_val_batches") == 0:
        return
    if not isinstance(interval, int) or isinstance(interval, bool) or steps <= 0:
        return
    last = steps * int(trainer.get("accumulate_grad_batches") or 1)
    if interval > last:
        log.info("trainer.val_check_interval=%d is beyond this run's %d training batches "
                 "(trainer.max_steps=%d): validating and checkpointing at batch %d instead",
                 interval, last, steps, last)
        with open_dict(cfg):
            trainer.val_check_interval = last


def resume_path(cfg: DictConfig) -> str | None:
    """`ckpt_path`, with ``last`` meaning <run folder>/checkpoints/last.ckpt; a missing file raises."""
    path = cfg.get("ckpt_path")
    if not path:
        return None
    if path == "last":
        path = str(Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt")
        if not Path(path).is_file():
            raise FileNotFoundError(f"ckpt_path=last: no checkpoint at {path}; resume into the folder of "
                                    "the run to continue: hydra.run.dir=<that run folder> ckpt_path=last")
    elif not Path(path).is_file():
        raise FileNotFoundError(f"ckpt_path={path}: no such checkpoint file")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"ckpt_path={path}: not a PyTorch checkpoint (no zip archive; truncated or another "
                         "format); resume from another checkpoint, e.g. an earlier step*.ckpt")
    run_dir = Path(path).resolve().parent.parent
    if cfg.get("train", True) and run_dir != Path(cfg.paths.output_dir).resolve():
        log.info("resuming %s into a new run folder %s; to continue that run (same TensorBoard run) "
                 "instead: hydra.run.dir=%s ckpt_path=last", path, cfg.paths.output_dir, run_dir)
    return path


def build(cfg: DictConfig) -> tuple[LightningDataModule, LightningModule, Trainer]:
    """Datamodule, task module and trainer of a composed config (no training)."""
    if cfg.get("data") is None:
        raise ValueError("No data selected: choose data/pretrain=<corpus> or data/mpgb=<dataset>.")
    quiet.install()
    clamp_validation(cfg)
    precision.resolve(cfg.trainer)
    # plain dicts/lists, not DictConfig, reach the constructors: checkpoints stay weights_only-loadable
    datamodule = hydra.utils.instantiate(cfg.data, _convert_="all")
    task = hydra.utils.instantiate(cfg.task, _convert_="all")
    callbacks = _callbacks(cfg.get("callbacks"))
    bar = any(isinstance(c, ProgressBar) for c in callbacks)
    if cfg.trainer.get("enable_progress_bar", True) and not bar:
        callbacks.append(StepProgressBar())  # the bar Lightning would add, minus "Epoch 0/-2"
    loggers: list[Logger] = instantiate_dict(cfg.get("logger"))
    trainer = hydra.utils.instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    return datamodule, task, trainer


def run(cfg: DictConfig) -> float | None:
    """Seed, build, optionally initialise from a checkpoint, fit, test; return the optimized metric."""
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    ckpt_path = resume_path(cfg)
    datamodule, task, trainer = build(cfg)
    if cfg.get("init_from"):
        if not hasattr(task, "init_from"):
            raise ValueError(f"{type(task).__name__} cannot initialise from a checkpoint (init_from).")
        task.init_from(cfg.init_from)
    if cfg.get("compile"):
        backend = "inductor" if cfg.compile is True else str(cfg.compile)
        log.info("compile=%s: torch.compile (%s) of the network; each new input shape compiles first",
                 cfg.compile, backend)
        task.compile_network(backend)
    for lg in trainer.loggers:
        lg.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    if cfg.get("train", True):
        trainer.fit(task, datamodule=datamodule, ckpt_path=ckpt_path)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
    if cfg.get("test", False):
        best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
        if not cfg.get("train", True):
            best = ckpt_path or ""
        elif getattr(task, "head_refit", False):
            best = refit_checkpoint(trainer, task, datamodule, best)
        trainer.test(task, datamodule=datamodule, ckpt_path=best or None, weights_only=True)
        metrics.update({k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1})
    name = cfg.get("optimized_metric")
    if name and name not in metrics:
        log.warning("Optimized metric %r was not logged; available: %s", name, sorted(metrics))
    return metrics.get(name) if name else None
