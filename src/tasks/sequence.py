"""One LightningModule for every MPGB sequence task: binary, multi-class, multi-label, regression."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.optim import Optimizer
from torchmetrics import MaxMetric, MeanMetric, MinMetric

from datamodules.mpgb.labels import check_task
from plantbimoe import PlantBiMoEConfig, PlantBiMoEModel
from plantbimoe.atomic import atomic_write_text
from plantbimoe.checkpoints import KeyReport
from plantbimoe.heads import SequenceHead, check_pooling
from plantbimoe.sequence_task import rc_averaged
from plantbimoe.task_types import metric_mode
from tasks.base import OptimizedTask, to_plain_dict
from tasks.init_from import load_backbone
from tasks.metrics import build_metrics, compute_loss, metric_inputs, metric_names, output_size
from tasks.tiles import TileAverager

RESULTS_FILE = "results.json"


class SequenceTask(OptimizedTask):
    """Backbone + pooled head, trained with the loss of `task_type`.

    Logs ``train/loss``, ``<stage>/loss`` and ``<stage>/<metric>`` for val and test (see
    tasks.metrics), ``val/<headline>_best`` (best validation value so far: the lowest for mse) and
    ``moe/*`` router losses. ``pooling`` (plantbimoe.heads.POOLINGS) and ``pooling_window`` choose
    how the head reads the sequence; ``max_length`` and ``add_special_tokens`` (the data's) let a
    pooling that cannot work fail at construction. ``rc_eval`` averages the outputs of each sequence
    and its reverse complement at evaluation. `init_from(path)` loads a pretraining checkpoint's
    backbone (train.py calls it for the top-level ``init_from``); ``freeze_backbone`` trains the
    head only; ``head_warmup_steps`` trains the head only for that many optimizer steps and then
    the whole network (a probe before fine-tuning); ``head_refit`` has train.py refit the output
    layer on the fine-tuned features before testing (tasks.head_refit); ``backbone_lr_factor``
    scales the backbone's learning rate. ``crop`` and ``eval_tiles`` (the data's) are only
    recorded, for ``plantbimoe predict``; batches of tiles (with ``sequence_index``) are scored
    per sequence, on the mean of its tiles' outputs (tasks.tiles).
    After testing, ``results.json`` (test metrics, dataset, seed, label) lands in the run folder.
    """

    def __init__(
        self,
        backbone: Mapping | nn.Module,
        optimizer: Callable[..., Optimizer],
        task_type: str,
        num_labels: int | None,
        metric: str,
        scheduler: Callable[..., Any] | None = None,
        pooling: str = "mean",
        pooling_window: int | None = None,
        head_hidden_size: int | None = None,
        dropout: float = 0.1,
        rc_eval: bool = False,
        freeze_backbone: bool = False,
        head_warmup_steps: int = 0,
        head_refit: bool = False,
        backbone_lr_factor: float = 1.0,
        aux_loss_weight: float = 1.0,
        init_strict: bool = True,
        run_label: str | None = None,
        max_length: int | None = None,
        add_special_tokens: bool = True,
        crop: int | None = None,
        eval_tiles: bool = False,
    ) -> None:
        hparams = {
            k: v for k, v in locals().items() if k not in ("self", "optimizer", "scheduler", "__class__")
        }
        super().__init__(optimizer, scheduler)
        check_task(task_type, num_labels)
        if isinstance(backbone, nn.Module):  # built by Hydra from its _target_ (backbone=hf)
            backbone_module, backbone_dict = backbone, dict(getattr(backbone, "init_args", {}))
        else:
            backbone_dict = to_plain_dict(backbone)
            backbone_module = PlantBiMoEModel(PlantBiMoEConfig.from_dict(backbone_dict))
        self.save_hyperparameters({**hparams, "backbone": backbone_dict})
        self.task_type, self.num_labels, self.metric = task_type, num_labels, metric
        if metric not in metric_names(task_type):
            raise ValueError(
                f"metric {metric!r} is not logged for {task_type}; one of {metric_names(task_type)}"
            )
        has_cls = add_special_tokens and getattr(backbone_module, "has_cls_token", True)
        check_pooling(pooling, pooling_window, max_length, has_cls)
        if not isinstance(head_warmup_steps, int) or head_warmup_steps < 0:
            raise ValueError(f"task.head_warmup_steps must be an integer >= 0, got {head_warmup_steps!r}")
        self.backbone = backbone_module
        self.head_options = (pooling, head_hidden_size, dropout, pooling_window)
        self.rc_eval, self.freeze_backbone = rc_eval, freeze_backbone
        self.head_warmup_steps = head_warmup_steps
        self.head_refit, self.refit_report = head_refit, None
        self.backbone_lr_factor, self.aux_loss_weight = backbone_lr_factor, aux_loss_weight
        self.init_strict, self.initialised_from = init_strict, None
        self.run_label = run_label or "random-init"
        self.val_loss, self.test_loss = MeanMetric(), MeanMetric()
        self.val_tiles, self.test_tiles = TileAverager(), TileAverager()
        self.val_best = MaxMetric() if metric_mode(metric) == "max" else MinMetric()
        if num_labels is not None:
            self._build_head(num_labels)
        if freeze_backbone:
            self.backbone.requires_grad_(False)

    def _build_head(self, num_labels: int) -> None:
        self.num_labels = self.hparams["num_labels"] = num_labels
        width = output_size(self.task_type, num_labels)
        self.head = SequenceHead(self.backbone.config.d_model, width, *self.head_options)
        self.val_metrics = build_metrics(self.task_type, num_labels).clone(prefix="val/")
        self.test_metrics = build_metrics(self.task_type, num_labels).clone(prefix="test/")

    def setup(self, stage: str) -> None:
        """With num_labels None (multi-label), take the label count the datamodule read from its
        files; refuse a head warm-up that would leave the backbone untrained for the whole run."""
        max_steps = self.trainer.max_steps
        processes = self.trainer.world_size
        if stage == "fit" and self.head_refit and processes > 1:
            raise ValueError(f"task.head_refit=true runs in one process, this run has {processes}: "
                             "set task.head_refit=false for multi-device fine-tuning")
        datamodule = getattr(self.trainer, "datamodule", None)
        if stage == "fit" and self.head_refit and not hasattr(datamodule, "eval_dataloader"):
            raise ValueError("task.head_refit=true needs an MPGB-format dataset (one with eval_dataloader), "
                             f"not {type(datamodule).__name__}")
        if stage == "fit" and self.head_warmup_steps and 0 < max_steps <= self.head_warmup_steps:
            raise ValueError(f"task.head_warmup_steps={self.head_warmup_steps} >= trainer.max_steps="
                             f"{max_steps}: the backbone would never train (use task.freeze_backbone=true)")
        if self.num_labels is None:
            num_labels = getattr(self.trainer.datamodule, "num_labels", None)
            if num_labels is None:
                raise ValueError("num_labels is unknown: set data.num_labels (or task.num_labels)")
            self._build_head(num_labels)

    def lr_groups(self) -> list[tuple[nn.Module, float]]:
        groups = [(self.head, 1.0)]
        if not self.freeze_backbone:
            groups.append((self.backbone, self.backbone_lr_factor))
        return groups

    def init_from(self, path: str | Path) -> KeyReport:
        """Load the backbone of a pretraining checkpoint (see tasks.init_from.load_backbone)."""
        report = load_backbone(self.backbone, path, strict=self.init_strict)
        self.initialised_from = str(path)
        if self.hparams.get("run_label") is None:
            self.run_label = Path(path).stem if Path(path).suffix else Path(path).name
        return report

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(outputs, MoE auxiliary loss): outputs are (B, 1) or (B, K) logits or regression values.

        A frozen backbone runs without autograd (a linear probe only trains the head), as it does
        in training during the first ``head_warmup_steps`` optimizer steps."""
        frozen = self.freeze_backbone or self.in_head_warmup()
        with torch.set_grad_enabled(torch.is_grad_enabled() and not frozen):
            out = self.backbone(input_ids, attention_mask=attention_mask)
        aux = None if frozen else out.aux_loss
        return self.head(out.last_hidden_state, attention_mask), aux

    def in_head_warmup(self) -> bool:
        """Whether a training step now trains the head only (``head_warmup_steps`` not yet done)."""
        return self.training and self._trainer is not None and self.global_step < self.head_warmup_steps

    def predict_batch(self, batch: Mapping[str, torch.Tensor], rc_average: bool) -> torch.Tensor:
        """Outputs for a batch; with `rc_average`, the mean over the batch and its reverse complement."""
        def outputs(input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            return self(input_ids, attention_mask)[0]

        if rc_average:
            return rc_averaged(outputs, batch["input_ids"], batch["attention_mask"])
        return outputs(batch["input_ids"], batch["attention_mask"])

    def training_step(self, batch: Mapping[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        outputs, aux = self(batch["input_ids"], batch["attention_mask"])
        task_loss = compute_loss(self.task_type, outputs, batch["labels"])
        loss = task_loss if aux is None else task_loss + self.aux_loss_weight * aux
        size = batch["input_ids"].shape[0]
        self.log("train/loss", loss, prog_bar=True, batch_size=size)
        self.log("train/task_loss", task_loss, batch_size=size)
        if aux is not None:
            self.log("moe/aux_loss", aux, batch_size=size)
        return loss

    def _score(self, outputs: torch.Tensor, labels: torch.Tensor, metrics, loss_metric: MeanMetric) -> None:
        loss_metric.update(compute_loss(self.task_type, outputs, labels), weight=labels.shape[0])
        metrics.update(*metric_inputs(self.task_type, outputs, labels))

    def _evaluate(self, batch: Mapping[str, torch.Tensor], metrics, loss_metric: MeanMetric,
                  tiles: TileAverager) -> None:
        outputs = self.predict_batch(batch, self.rc_eval)
        if "sequence_index" in batch:  # scored at the epoch's end, once every tile is in
            tiles.update(batch["sequence_index"], outputs, batch["labels"])
        else:
            self._score(outputs, batch["labels"], metrics, loss_metric)

    def validation_step(self, batch: Mapping[str, torch.Tensor], batch_idx: int) -> None:
        self._evaluate(batch, self.val_metrics, self.val_loss, self.val_tiles)

    def test_step(self, batch: Mapping[str, torch.Tensor], batch_idx: int) -> None:
        self._evaluate(batch, self.test_metrics, self.test_loss, self.test_tiles)

    def _epoch_end(
        self, stage: str, metrics, loss_metric: MeanMetric, tiles: TileAverager
    ) -> dict[str, float]:
        if tiles.update_called:
            self._score(*tiles.compute(), metrics, loss_metric)
            tiles.reset()
        values = {name: float(value) for name, value in metrics.compute().items()}
        values[f"{stage}/loss"] = float(loss_metric.compute())
        metrics.reset()
        loss_metric.reset()
        self.log_dict(values, prog_bar=False)
        return values

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking:
            for metric in (self.val_metrics, self.val_loss, self.val_tiles):
                metric.reset()
            return
        values = self._epoch_end("val", self.val_metrics, self.val_loss, self.val_tiles)
        self.val_best.update(torch.tensor(values[f"val/{self.metric}"], device=self.device))
        self.log(f"val/{self.metric}_best", self.val_best.compute(), prog_bar=True)

    def on_test_epoch_end(self) -> None:
        values = self._epoch_end("test", self.test_metrics, self.test_loss, self.test_tiles)
        if self.trainer.is_global_zero:
            self._write_results(values)

    def _write_results(self, values: dict[str, float]) -> None:
        datamodule = getattr(self.trainer, "datamodule", None)
        results = {
            "dataset": getattr(datamodule, "name", None),
            "task_group": getattr(datamodule, "task_group", None),
            "task_type": self.task_type,
            "metric": self.metric,
            "label": self.run_label,
            "seed": int(os.environ.get("PL_GLOBAL_SEED", -1)),
            "init_from": self.initialised_from,
            "metrics": values,
        }
        if self.refit_report is not None:
            results["head_refit"] = self.refit_report
        write_results(Path(self.trainer.default_root_dir), results)


def write_results(folder: Path, results: dict) -> Path:
    """Write `results` as `folder/results.json` atomically (temporary name, then rename)."""
    return atomic_write_text(folder / RESULTS_FILE, json.dumps(results, indent=2, sort_keys=True) + "\n")
