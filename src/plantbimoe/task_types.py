"""The four sequence-task kinds in one table: head width, loss, metric inputs and names, the
direction of each metric, probabilities and prediction strings.

Metrics are named here and built by `tasks.metrics.build_metrics` from the torchmetrics class
path each spec gives (the model library does not import torchmetrics). Metric names (logged as
``<stage>/<name>``): classification ``auroc``, ``auprc``, ``mcc``, ``f1``, ``accuracy`` (macro
over classes or labels for multi-class and multi-label AUROC, AUPRC and F1); regression ``r2``,
``pearson``, ``spearman``, ``mse``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

Tensor = torch.Tensor
# metric name -> (torchmetrics class path under `torchmetrics.`, keyword arguments)
MetricSpecs = dict[str, tuple[str, dict[str, Any]]]
# "max": a higher value is better; "min": a lower one
METRIC_MODES = {"auroc": "max", "auprc": "max", "mcc": "max", "f1": "max", "accuracy": "max",
                "r2": "max", "pearson": "max", "spearman": "max", "mse": "min"}


@dataclass(frozen=True)
class TaskType:
    """One task kind. `per_label`: one output per class or label (else a single output column);
    `scores` maps raw outputs (B, width) to what the metrics and users read (probabilities, or
    regression values); `targets` casts labels for the metrics."""

    name: str
    per_label: bool
    loss: Callable[[Tensor, Tensor], Tensor]
    scores: Callable[[Tensor], Tensor]
    targets: Callable[[Tensor], Tensor]
    predict: Callable[[np.ndarray, float], list[str]]
    metrics: MetricSpecs

    def width(self, num_labels: int) -> int:
        """Head width: one output for binary and regression, one per class or label otherwise."""
        return num_labels if self.per_label else 1

    @property
    def metric_names(self) -> tuple[str, ...]:
        return tuple(self.metrics)

    def metric_inputs(self, outputs: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        """(predictions, targets) for the metrics, from raw outputs and batch labels."""
        return self.scores(outputs.detach().float()), self.targets(labels)

    def probabilities(self, outputs: np.ndarray) -> np.ndarray:
        """Class or label probabilities (N, K) of raw outputs; regression values pass through (N, 1).
        Binary gives (N, 2): p(class 0), p(class 1)."""
        scores = self.scores(torch.from_numpy(outputs).double()).numpy()
        if self.name == "binary":
            return np.stack([1 - scores, scores], axis=1)
        return scores.reshape(len(outputs), -1)

    def predictions(self, probs: np.ndarray, threshold: float = 0.5) -> list[str]:
        """One prediction string per row: class id, ';'-joined 0/1 labels, or the regression value."""
        return self.predict(probs, threshold)


def metric_mode(metric: str) -> str:
    """"max" when a higher `metric` is better, "min" when a lower one is (mse)."""
    if metric not in METRIC_MODES:
        raise ValueError(f"unknown metric {metric!r}; one of {', '.join(METRIC_MODES)}")
    return METRIC_MODES[metric]


def _classification(prefix: str, per_label: bool) -> MetricSpecs:
    macro = {"average": "macro"} if per_label else {}
    micro = {"average": "micro"} if per_label else {}
    return {
        "auroc": (f"classification.{prefix}AUROC", macro),
        "auprc": (f"classification.{prefix}AveragePrecision", macro),
        "mcc": (f"classification.{prefix}MatthewsCorrCoef", {}),
        "f1": (f"classification.{prefix}F1Score", macro),
        "accuracy": (f"classification.{prefix}Accuracy", micro),
    }


TASK_TYPES: dict[str, TaskType] = {
    "binary": TaskType(
        "binary", False,
        loss=lambda out, y: F.binary_cross_entropy_with_logits(out.squeeze(-1), y.float()),
        scores=lambda out: torch.sigmoid(out.squeeze(-1)),
        targets=lambda y: y.long(),
        predict=lambda probs, t: [str(int(p >= t)) for p in probs[:, 1]],
        metrics=_classification("Binary", False),
    ),
    "multiclass": TaskType(
        "multiclass", True,
        loss=lambda out, y: F.cross_entropy(out, y.long()),
        scores=lambda out: torch.softmax(out, dim=-1),
        targets=lambda y: y.long(),
        predict=lambda probs, t: [str(int(i)) for i in probs.argmax(axis=1)],
        metrics=_classification("Multiclass", True),
    ),
    "multilabel": TaskType(
        "multilabel", True,
        loss=lambda out, y: F.binary_cross_entropy_with_logits(out, y.float()),
        scores=torch.sigmoid,
        targets=lambda y: y.round().long(),
        predict=lambda probs, t: [";".join(str(int(p >= t)) for p in row) for row in probs],
        metrics=_classification("Multilabel", True),
    ),
    "regression": TaskType(
        "regression", False,
        loss=lambda out, y: F.mse_loss(out.squeeze(-1), y.float()),
        scores=lambda out: out.squeeze(-1),
        targets=lambda y: y.float(),
        predict=lambda probs, t: [f"{v:.6g}" for v in probs[:, 0]],
        metrics={
            "r2": ("regression.R2Score", {}),
            "pearson": ("regression.PearsonCorrCoef", {}),
            "spearman": ("regression.SpearmanCorrCoef", {}),
            "mse": ("regression.MeanSquaredError", {}),
        },
    ),
}


def task_type(name: str) -> TaskType:
    """The spec of `name`; an unknown name raises, listing the known ones."""
    if name not in TASK_TYPES:
        raise ValueError(f"unknown task_type {name!r}; one of {', '.join(TASK_TYPES)}")
    return TASK_TYPES[name]
