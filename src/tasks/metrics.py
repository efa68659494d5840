"""Losses, output transforms and torchmetrics collections of the four sequence-task kinds.

Metric names (logged as ``<stage>/<name>``): classification ``auroc``, ``auprc``, ``mcc``,
``f1``, ``accuracy`` (macro over classes or labels for multi-class and multi-label AUROC, AUPRC
and F1); regression ``r2``, ``pearson``, ``spearman``, ``mse``.
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torchmetrics import MetricCollection, classification, regression

CLASSIFICATION_METRICS = ("auroc", "auprc", "mcc", "f1", "accuracy")
REGRESSION_METRICS = ("r2", "pearson", "spearman", "mse")


def metric_names(task_type: str) -> tuple[str, ...]:
    """Names of the metrics logged for `task_type`."""
    return REGRESSION_METRICS if task_type == "regression" else CLASSIFICATION_METRICS


def output_size(task_type: str, num_labels: int) -> int:
    """Head width: one logit for binary and regression, one per class or label otherwise."""
    return 1 if task_type in ("binary", "regression") else num_labels


def build_metrics(task_type: str, num_labels: int) -> MetricCollection:
    """The metric collection of a task kind, to be fed by `metric_inputs`."""
    if task_type == "binary":
        metrics = {
            "auroc": classification.BinaryAUROC(),
            "auprc": classification.BinaryAveragePrecision(),
            "mcc": classification.BinaryMatthewsCorrCoef(),
            "f1": classification.BinaryF1Score(),
            "accuracy": classification.BinaryAccuracy(),
        }
    elif task_type == "multiclass":
        k = num_labels
        metrics = {
            "auroc": classification.MulticlassAUROC(k, average="macro"),
            "auprc": classification.MulticlassAveragePrecision(k, average="macro"),
            "mcc": classification.MulticlassMatthewsCorrCoef(k),
            "f1": classification.MulticlassF1Score(k, average="macro"),
            "accuracy": classification.MulticlassAccuracy(k, average="micro"),
        }
    elif task_type == "multilabel":
        k = num_labels
        metrics = {
            "auroc": classification.MultilabelAUROC(k, average="macro"),
            "auprc": classification.MultilabelAveragePrecision(k, average="macro"),
            "mcc": classification.MultilabelMatthewsCorrCoef(k),
            "f1": classification.MultilabelF1Score(k, average="macro"),
            "accuracy": classification.MultilabelAccuracy(k, average="micro"),
        }
    elif task_type == "regression":
        with warnings.catch_warnings():  # Spearman keeps every prediction: fine at MPGB sizes
            warnings.filterwarnings("ignore", message=".*will save all targets and predictions.*")
            spearman = regression.SpearmanCorrCoef()
        metrics = {
            "r2": regression.R2Score(),
            "pearson": regression.PearsonCorrCoef(),
            "spearman": spearman,
            "mse": regression.MeanSquaredError(),
        }
    else:
        raise ValueError(f"unknown task_type {task_type!r}")
    return MetricCollection(metrics)


def compute_loss(task_type: str, outputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """BCE for binary and multi-label, cross-entropy for multi-class, MSE for regression."""
    if task_type == "binary":
        return F.binary_cross_entropy_with_logits(outputs.squeeze(-1), labels.float())
    if task_type == "multiclass":
        return F.cross_entropy(outputs, labels.long())
    if task_type == "multilabel":
        return F.binary_cross_entropy_with_logits(outputs, labels.float())
    return F.mse_loss(outputs.squeeze(-1), labels.float())


def metric_inputs(
    task_type: str, outputs: torch.Tensor, labels: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(predictions, targets) for the metrics: probabilities for classification, values for regression."""
    outputs = outputs.detach().float()
    if task_type == "binary":
        return torch.sigmoid(outputs.squeeze(-1)), labels.long()
    if task_type == "multiclass":
        return torch.softmax(outputs, dim=-1), labels.long()
    if task_type == "multilabel":
        return torch.sigmoid(outputs), labels.round().long()
    return outputs.squeeze(-1), labels.float()
