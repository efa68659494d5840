"""Head refit: after fine-tuning, the head's output layer refitted by L2-penalised linear (or ridge)
regression on the fine-tuned features of the training split, its L2 strength chosen on
validation; the refit replaces the trained layer only when it scores better on validation.

Why: a few hundred Adam steps leave the fine-tuned features better than the layer that reads
them. A mean over hundreds of positions varies little from one sequence to the next, and a layer
that starts small needs large weights, and so many steps, to turn that variation into confident
outputs; the regression fits it to convergence on standardised features in seconds
(docs/results.md measures it). ``python train.py ... task.head_refit=true``; the run tests the
refitted checkpoint (``<best>-refit.ckpt``) and records the refit in ``results.json``.
"""

from __future__ import annotations

import logging
import operator
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader

from baselines.linear import DEFAULT_ALPHAS, evaluate, fit_linear, standardise, train_statistics
from plantbimoe.sequence_task import rc_averaged
from plantbimoe.task_types import metric_mode
from tasks.sequence import SequenceTask
from tasks.tiles import mean_by_sequence

log = logging.getLogger(__name__)


@dataclass
class RefitReport:
    """What the refit chose: its L2 strength, the validation headline of the trained layer and of
    the refit (on the same features), whether the refit was kept, and the seconds it took."""

    alpha: float
    val_trained: float
    val_refit: float
    kept: bool
    seconds: float


def head_features(task: SequenceTask, loader: DataLoader) -> tuple[torch.Tensor, torch.Tensor]:
    """(features the output layer reads, labels) of every batch, in eval mode, on CPU; averaged
    over each sequence and its reverse complement when the task evaluates that way, and over a
    sequence's tiles when the loader reads tiles (the output layer is linear, so this equals
    averaging its outputs)."""

    def features(input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = task.backbone(input_ids, attention_mask=attention_mask).last_hidden_state
        return task.head.features(hidden, attention_mask)

    task.eval()
    rows, labels, owners = [], [], []
    with torch.no_grad():
        for batch in loader:
            ids, mask = batch["input_ids"].to(task.device), batch["attention_mask"].to(task.device)
            out = rc_averaged(features, ids, mask) if task.rc_eval else features(ids, mask)
            rows.append(out.float().cpu())
            labels.append(batch["labels"].cpu())
            if "sequence_index" in batch:
                owners.append(batch["sequence_index"].cpu())
    if owners:  # tiles: a sequence's features are the mean of its tiles'
        return mean_by_sequence(torch.cat(rows), torch.cat(owners), torch.cat(labels))
    return torch.cat(rows), torch.cat(labels)


def refit_output_layer(
    task: SequenceTask, datamodule: Any, alphas: tuple[float, ...] = DEFAULT_ALPHAS
) -> RefitReport:
    """Refit `task.head.output_layer` on the train split's features (see the module docstring)."""
    start = time.perf_counter()
    x, y = {}, {}
    for split in ("train", "val"):
        x[split], y[split] = head_features(task, datamodule.eval_dataloader(split))
    mean, std = train_statistics(x["train"])  # folded into the layer below
    z = standardise(x)
    kind, labels, key = task.task_type, task.num_labels, f"val/{task.metric}"
    layer = task.head.output_layer
    trained = torch.nn.Linear(layer.in_features, layer.out_features)
    trained.load_state_dict({k: v.detach().float().cpu() for k, v in layer.state_dict().items()})
    val_trained = evaluate(trained, x["val"], y["val"], kind, labels, "val")[key]
    better = operator.gt if metric_mode(task.metric) == "max" else operator.lt
    best: tuple[float, float, torch.nn.Linear] | None = None
    for alpha in alphas:
        fit = fit_linear(z["train"], y["train"], kind, labels, alpha)
        score = evaluate(fit, z["val"], y["val"], kind, labels, "val")[key]
        if best is None or better(score, best[0]):
            best = (score, alpha, fit)
    val_refit, alpha, fit = best
    kept = better(val_refit, val_trained)
    if kept:  # fold the standardisation into the layer: W z + b = (W / s) x + b - (W / s) m
        with torch.no_grad():
            weight = fit.weight / std
            layer.weight.copy_(weight)
            layer.bias.copy_(fit.bias - weight @ mean)
    return RefitReport(alpha, val_trained, val_refit, kept, round(time.perf_counter() - start, 1))


def refit_checkpoint(trainer: L.Trainer, task: SequenceTask, datamodule: Any, best: str) -> str:
    """Load the best checkpoint (`best`; the weights in memory when empty), refit the output
    layer, save the result beside it as ``<best>-refit.ckpt`` and return that path."""
    if best:
        state = torch.load(best, map_location=task.device, weights_only=True)["state_dict"]
        task.load_state_dict(state)
    report = refit_output_layer(task, datamodule)
    task.refit_report = asdict(report)
    log.info(
        "head refit (alpha %g, %.1f s): val/%s %.4f trained, %.4f refit: %s", report.alpha, report.seconds,
        task.metric, report.val_trained, report.val_refit,
        "the refit is kept" if report.kept else "the trained layer is kept",
    )
    folder = Path(best).parent if best else Path(trainer.default_root_dir) / "checkpoints"
    path = folder / f"{Path(best).stem if best else 'last'}-refit.ckpt"
    trainer.save_checkpoint(path, weights_only=True)
    return str(path)
