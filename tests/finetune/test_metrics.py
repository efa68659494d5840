"""Metric collections equal hand computations on fixed predictions."""

from __future__ import annotations

import math

import pytest
import torch

from tasks.metrics import build_metrics, compute_loss, metric_inputs, output_size


def _compute(
    task_type: str, num_labels: int, outputs: torch.Tensor, labels: torch.Tensor
) -> dict[str, float]:
    metrics = build_metrics(task_type, num_labels)
    metrics.update(*metric_inputs(task_type, outputs, labels))
    return {k: float(v) for k, v in metrics.compute().items()}


def test_binary_by_hand() -> None:
    probs = torch.tensor([0.9, 0.2, 0.6, 0.4, 0.7, 0.1])
    labels = torch.tensor([1, 0, 1, 1, 0, 0])
    got = _compute("binary", 2, torch.logit(probs)[:, None], labels)
    # AUROC: positives 0.9, 0.6, 0.4 beat 3, 2, 2 of the 3 negatives (0.2, 0.7, 0.1)
    assert got["auroc"] == pytest.approx(7 / 9)
    # ranking P N P P N N: precision at each positive 1, 2/3, 3/4
    assert got["auprc"] == pytest.approx((1 + 2 / 3 + 3 / 4) / 3)
    tp, fn, fp, tn = 2, 1, 1, 2  # threshold 0.5
    assert got["mcc"] == pytest.approx(
        (tp * tn - fp * fn) / math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    )
    assert got["f1"] == pytest.approx(2 * tp / (2 * tp + fp + fn))
    assert got["accuracy"] == pytest.approx(4 / 6)


def test_multiclass_by_hand() -> None:
    probs = torch.tensor(
        [[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.3, 0.5], [0.5, 0.4, 0.1], [0.1, 0.35, 0.55]]
    )
    labels = torch.tensor([0, 1, 1, 1, 2])
    got = _compute("multiclass", 3, probs.log(), labels)
    # predicted 0 1 2 0 2; confusion (true x pred): [[1,0,0],[1,1,1],[0,0,1]]
    assert got["accuracy"] == pytest.approx(3 / 5)
    f1 = [2 * 1 / (2 + 1 + 0), 2 * 1 / (2 + 0 + 2), 2 * 1 / (2 + 1 + 0)]
    assert got["f1"] == pytest.approx(sum(f1) / 3)
    c, s = 3, 5  # Gorodkin's MCC: (c*s - sum p_k t_k) / sqrt((s^2 - sum p_k^2)(s^2 - sum t_k^2))
    p, t = [2, 1, 2], [1, 3, 1]
    expected = (c * s - sum(a * b for a, b in zip(p, t, strict=True))) / math.sqrt(
        (s**2 - sum(a * a for a in p)) * (s**2 - sum(b * b for b in t))
    )
    assert got["mcc"] == pytest.approx(expected)
    # one-vs-rest AUROC per class by pair counting, then the macro mean
    auroc0 = 4 / 4  # class 0 score 0.7 beats 0.1 0.2 0.5 0.1
    auroc1 = (2 + 1 + 2) / 6  # positives 0.8 0.3 0.4 against negatives 0.2 0.35
    auroc2 = 4 / 4  # 0.55 beats 0.1 0.1 0.5 0.1
    assert got["auroc"] == pytest.approx((auroc0 + auroc1 + auroc2) / 3)


def test_multilabel_by_hand() -> None:
    probs = torch.tensor([[0.9, 0.2], [0.3, 0.8], [0.6, 0.4], [0.2, 0.7]])
    labels = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0], [1.0, 1.0]])
    got = _compute("multilabel", 2, torch.logit(probs), labels)
    # label 0: positives 0.9, 0.2 vs negatives 0.3, 0.6 -> 2 + 0 of 4 pairs
    # label 1: positives 0.8, 0.7 beat 0.2, 0.4 -> 4 of 4 pairs
    assert got["auroc"] == pytest.approx((2 / 4 + 4 / 4) / 2)
    # predictions [1,0],[0,1],[1,0],[0,1]: 6 of 8 entries right
    assert got["accuracy"] == pytest.approx(6 / 8)
    f1_label0 = 2 * 1 / (2 * 1 + 1 + 1)
    f1_label1 = 2 * 2 / (2 * 2 + 0 + 0)
    assert got["f1"] == pytest.approx((f1_label0 + f1_label1) / 2)


def test_regression_by_hand() -> None:
    preds = torch.tensor([1.0, 2.0, 2.5, 4.0])
    target = torch.tensor([1.5, 1.8, 3.0, 3.9])
    got = _compute("regression", 1, preds[:, None], target)
    mse = float(((preds - target) ** 2).mean())
    mean = float(target.mean())
    r2 = 1 - float(((preds - target) ** 2).sum()) / float(((target - mean) ** 2).sum())
    dp, dt = preds - preds.mean(), target - target.mean()
    pearson = float((dp * dt).sum() / torch.sqrt((dp**2).sum() * (dt**2).sum()))
    assert got["mse"] == pytest.approx(mse)
    assert got["r2"] == pytest.approx(r2)
    assert got["pearson"] == pytest.approx(pearson, rel=1e-5)
    assert got["spearman"] == pytest.approx(1.0)  # same ranking


@pytest.mark.parametrize(
    ("task_type", "k", "width"),
    [("binary", 2, 1), ("multiclass", 3, 3), ("multilabel", 4, 4), ("regression", 1, 1)],
)
def test_losses_take_head_outputs(task_type: str, k: int, width: int) -> None:
    assert output_size(task_type, k) == width
    outputs = torch.zeros(5, width)
    labels = {
        "binary": torch.ones(5, dtype=torch.long),
        "multiclass": torch.zeros(5, dtype=torch.long),
        "multilabel": torch.ones(5, k),
        "regression": torch.ones(5),
    }[task_type]
    expected = {
        "binary": math.log(2),
        "multiclass": math.log(3),
        "multilabel": math.log(2),
        "regression": 1.0,
    }
    assert float(compute_loss(task_type, outputs, labels)) == pytest.approx(expected[task_type])
