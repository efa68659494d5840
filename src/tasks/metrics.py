"""Losses, metric inputs and torchmetrics collections of the sequence-task kinds, read from the
one table of task types (`plantbimoe.task_types.TASK_TYPES`; metric names are listed there)."""

from __future__ import annotations

import importlib
import warnings

import torch
from torchmetrics import Metric, MetricCollection

from plantbimoe.task_types import metric_mode
from plantbimoe.task_types import task_type as spec_of


def metric_names(task_type: str) -> tuple[str, ...]:
    """Names of the metrics logged for `task_type`."""
    return spec_of(task_type).metric_names


def output_size(task_type: str, num_labels: int) -> int:
    """Head width: one logit for binary and regression, one per class or label otherwise."""
    return spec_of(task_type).width(num_labels)


def monitor_mode(monitor: str) -> str:
    """"min" or "max" for a logged name such as ``val/mse``, ``val/r2_best`` or ``val/loss``:
    losses and mse are better lower, every other metric higher (`plantbimoe.task_types.METRIC_MODES`)."""
    name = monitor.rsplit("/", 1)[-1].removesuffix("_best")
    return "min" if name.endswith("loss") else metric_mode(name)


def _metric(path: str, args: tuple, kwargs: dict) -> Metric:
    module, name = path.rsplit(".", 1)
    cls = getattr(importlib.import_module(f"torchmetrics.{module}"), name)
    with warnings.catch_warnings():  # Spearman keeps every prediction: fine at MPGB sizes
        warnings.filterwarnings("ignore", message=".*will save all targets and predictions.*")
        return cls(*args, **kwargs)


def build_metrics(task_type: str, num_labels: int) -> MetricCollection:
    """The metric collection of a task kind, to be fed by `metric_inputs`."""
    spec = spec_of(task_type)
    args = (num_labels,) if spec.per_label else ()
    return MetricCollection({name: _metric(path, args, kw) for name, (path, kw) in spec.metrics.items()})


def compute_loss(task_type: str, outputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """BCE for binary and multi-label, cross-entropy for multi-class, MSE for regression."""
    return spec_of(task_type).loss(outputs, labels)


def metric_inputs(
    task_type: str, outputs: torch.Tensor, labels: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(predictions, targets) for the metrics: probabilities for classification, values for regression."""
    return spec_of(task_type).metric_inputs(outputs, labels)
