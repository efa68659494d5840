"""Linear models on fixed features, shared by the k-mer floor and the linear probe: ridge or L2
logistic regression, the L2 strength chosen on validation by the headline metric, and the run's
record (TensorBoard, results.json) in the same form as a fine-tuning run's."""

from __future__ import annotations

import logging
import operator
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.loggers import TensorBoardLogger
from omegaconf import DictConfig

from plantbimoe.task_types import metric_mode
from tasks.metrics import build_metrics, metric_inputs, output_size
from tasks.sequence import write_results

log = logging.getLogger(__name__)
DEFAULT_ALPHAS = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0)
SPLITS = ("train", "val", "test")


def fit_linear(
    x: torch.Tensor, y: torch.Tensor, task_type: str, num_labels: int, alpha: float
) -> torch.nn.Linear:
    """Ridge regression (closed form) or L2-penalised logistic / softmax regression (L-BFGS)."""
    model = torch.nn.Linear(x.shape[1], output_size(task_type, num_labels))
    if task_type == "regression":
        design = torch.cat([x, torch.ones(len(x), 1)], dim=1).double()
        penalty = alpha * len(x) * torch.eye(design.shape[1], dtype=torch.float64)
        penalty[-1, -1] = 0.0  # the intercept is not penalised
        solution = torch.linalg.solve(design.T @ design + penalty, design.T @ y.double()[:, None])
        model.weight.data, model.bias.data = solution[:-1].T.float(), solution[-1].float()
        return model
    torch.nn.init.zeros_(model.weight)
    torch.nn.init.zeros_(model.bias)
    optimizer = torch.optim.LBFGS(model.parameters(), max_iter=300, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        out = model(x)
        if task_type == "multiclass":
            loss = torch.nn.functional.cross_entropy(out, y.long())
        else:
            target = y.float() if task_type == "multilabel" else y.float()[:, None]
            loss = torch.nn.functional.binary_cross_entropy_with_logits(out, target)
        loss = loss + alpha * model.weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return model


def evaluate(
    model: torch.nn.Linear, x: torch.Tensor, y: torch.Tensor, task_type: str, num_labels: int, prefix: str
) -> dict[str, float]:
    """The task's metric collection on (x, y), keys ``<prefix>/<metric>``."""
    metrics = build_metrics(task_type, num_labels)
    with torch.no_grad():
        metrics.update(*metric_inputs(task_type, model(x), y))
    return {f"{prefix}/{name}": float(value) for name, value in metrics.compute().items()}


def train_statistics(train: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-feature mean and standard deviation (at least 1e-6) of the train split's features."""
    return train.mean(0), train.std(0).clamp_min(1e-6)


def standardise(features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Every split scaled by the train split's per-feature mean and standard deviation."""
    mean, std = train_statistics(features["train"])
    return {split: (f - mean) / std for split, f in features.items()}


@dataclass
class LinearFit:
    """The fit kept on validation: its L2 strength and its val + test metrics."""

    alpha: float
    val_metric: float
    metrics: dict[str, float]


def fit_best_alpha(
    x: dict[str, torch.Tensor], y: dict[str, torch.Tensor], task_type: str, num_labels: int | None,
    headline: str, alphas: Sequence[float] = DEFAULT_ALPHAS, what: str = "linear",
) -> LinearFit:
    """Fit on train for every alpha, keep the best on validation by `headline` (highest, lowest
    for mse); its val metrics, ``val/<headline>_best`` and its test metrics."""
    better = _better(headline)
    best = None
    for alpha in alphas:
        model = fit_linear(x["train"], y["train"], task_type, num_labels, alpha)
        val = evaluate(model, x["val"], y["val"], task_type, num_labels, "val")
        log.info("%s alpha=%g val/%s=%.4f", what, alpha, headline, val[f"val/{headline}"])
        if best is None or better(val[f"val/{headline}"], best[1][f"val/{headline}"]):
            best = (model, val, alpha)
    model, val, alpha = best
    metrics = {**val, f"val/{headline}_best": val[f"val/{headline}"]}
    metrics.update(evaluate(model, x["test"], y["test"], task_type, num_labels, "test"))
    return LinearFit(alpha, val[f"val/{headline}"], metrics)


def fit_best_features(
    candidates: Iterable[tuple[Any, dict[str, torch.Tensor]]], y: dict[str, torch.Tensor], task_type: str,
    num_labels: int | None, headline: str, alphas: Sequence[float] = DEFAULT_ALPHAS, what: str = "linear",
) -> tuple[Any, LinearFit, dict[Any, LinearFit]]:
    """For each (key, features by split) candidate, e.g. a positional width or a layer: standardise,
    `fit_best_alpha`; keep the candidate with the best validation headline (the first on ties).
    Returns (its key, its fit, every candidate's fit by key)."""
    better = _better(headline)
    fits: dict[Any, LinearFit] = {}
    best = None
    for key, features in candidates:
        fits[key] = fit = fit_best_alpha(standardise(features), y, task_type, num_labels, headline, alphas,
                                         f"{what}{key}")
        if best is None or better(fit.val_metric, fits[best].val_metric):
            best = key
    return best, fits[best], fits


def _better(headline: str):  # type: ignore[no-untyped-def]
    """operator.gt for a metric to maximise, operator.lt for one to minimise (mse)."""
    return operator.gt if metric_mode(headline) == "max" else operator.lt


def record_run(cfg: DictConfig, datamodule: Any, label: str, metrics: dict[str, float],
               hparams: dict[str, Any], init_from: str | None) -> float:
    """TensorBoard (hparams and metrics at step 0) and results.json in the run folder, one log line;
    returns the validation headline (what a sweeper optimises)."""
    out = Path(cfg.paths.output_dir)
    logger = TensorBoardLogger(save_dir=str(out), name="tensorboard", version="")
    logger.log_hyperparams({"model": label, **hparams})
    logger.log_metrics(metrics, step=0)
    logger.finalize("success")
    write_results(out, {
        "dataset": datamodule.name,
        "task_group": datamodule.task_group,
        "task_type": datamodule.task_type,
        "metric": datamodule.metric,
        "label": label,
        "seed": int(cfg.seed),
        "init_from": init_from,
        "metrics": metrics,
        **hparams,
    })
    headline = f"test/{datamodule.metric}"
    log.info("%s on %s: %s = %.4f (%s)", label, datamodule.name, headline, metrics[headline], hparams)
    return metrics[f"val/{datamodule.metric}_best"]
