"""The MLM task's evaluation statistics: masked accuracy and the base-frequency baseline."""

from __future__ import annotations

import math
from functools import partial

import pytest
import torch
import yaml

from tasks.mlm import MaskedLMTask, NucleotideCounts
from tests.framework.hydra_utils import CONF_DIR


def _task() -> MaskedLMTask:
    backbone = yaml.safe_load((CONF_DIR / "backbone" / "tiny.yaml").read_text())
    backbone.update(d_model=32, n_layer=2, intermediate_size=48)
    return MaskedLMTask(backbone, optimizer=partial(torch.optim.AdamW, lr=1e-3))


def test_nucleotide_counts_are_per_base() -> None:
    metric = NucleotideCounts()
    metric.update(torch.tensor([7, 7, 8, 10, 10, 10]))  # A A C T T T
    assert metric.compute().tolist() == [2.0, 1.0, 0.0, 3.0]


def test_baseline_is_the_cross_entropy_of_base_frequencies() -> None:
    task = _task()
    uniform = task._baseline_loss(torch.tensor([5.0, 5.0, 5.0, 5.0]))
    assert uniform == pytest.approx(math.log(4))
    skewed = task._baseline_loss(torch.tensor([3.0, 1.0, 0.0, 0.0]))
    assert skewed == pytest.approx(-(0.75 * math.log(0.75) + 0.25 * math.log(0.25)))


def test_evaluation_logs_loss_accuracy_and_baseline() -> None:
    task = _task()
    ids = torch.randint(7, 11, (2, 30))
    labels = torch.where(torch.rand(ids.shape) < 0.3, ids, torch.full_like(ids, -100))
    labels[0, 0] = ids[0, 0]
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids, dtype=torch.bool), "labels": labels}
    task._evaluate(batch)
    counts = task.val_target_counts.compute()
    assert counts.sum() == (labels != -100).sum()
    assert 0 < task.val_loss.compute() < 10
