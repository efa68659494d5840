"""The context-count MLM floor equals a hand count, backs off where the input hides neighbours,
and the MLM task logs it on the embedded shards."""

from __future__ import annotations

import math
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from lightning import Trainer

from baselines.context_counts import ContextCounts
from datamodules.shards.datamodule import ShardDataModule
from plantbimoe.tokenizer import MASK_ID, encode
from tasks.mlm import MaskedLMTask
from tests.framework.hydra_utils import CONF_DIR

A, C, G, T = (int(x) for x in encode("ACGT"))


def test_counts_and_probabilities_by_hand() -> None:
    model = ContextCounts(k=1).fit([encode("ACAGACA"), encode("ACT")])
    # order 1 (one base each side): contexts with a base in the middle of the row
    # ACAGACA: A|C|A, C|A|G, A|G|A, G|A|C, A|C|A ; ACT: A|C|T
    order1 = model.counts[1]
    assert order1[(0 * 4 + 0)].tolist() == [0, 2, 1, 0]  # context (A, A) -> C twice, G once
    assert order1[(0 * 4 + 3), 1] == 1  # (A, T) -> C
    assert order1.sum() == 6
    assert model.counts[0].sum(0).tolist() == [5, 3, 1, 1]  # A C G T over both rows
    ids = np.array([encode("ACA")])
    log_p = model.log_probs(ids, (np.array([0]), np.array([1])))
    expected = (np.array([0, 2, 1, 0]) + 1) / (3 + 4)  # add-one smoothing over the (A, A) context
    np.testing.assert_allclose(np.exp(log_p[0]), expected)


def test_masked_neighbour_backs_off_to_a_shorter_context() -> None:
    model = ContextCounts(k=1).fit([encode("ACAGACA")])
    ids = np.array([[A, C, MASK_ID]])  # the right neighbour of position 1 is hidden
    log_p = model.log_probs(ids, (np.array([0]), np.array([1])))
    unigram = (model.counts[0][0] + 1) / (model.counts[0][0].sum() + 4)
    np.testing.assert_allclose(np.exp(log_p[0]), unigram)
    labels = np.full((1, 3), -100)
    labels[0, 1] = C
    total, n = model.loss(ids, labels)
    assert n == 1 and total == pytest.approx(-math.log(unigram[1]))
    with pytest.raises(ValueError, match="k must lie in 0..6"):
        ContextCounts(k=7)


@pytest.mark.slow
def test_mlm_run_logs_the_context_floor(embedded_shards: Path, tmp_path: Path) -> None:
    backbone = yaml.safe_load((CONF_DIR / "backbone" / "tiny.yaml").read_text())
    backbone.update(d_model=32, n_layer=2, intermediate_size=48)
    task = MaskedLMTask(backbone, optimizer=partial(torch.optim.AdamW, lr=1e-3), context_max_bases=200_000)
    data = ShardDataModule(str(embedded_shards), window_length=128, batch_size=4, val_windows=8,
                           test_windows=8)
    trainer = Trainer(max_steps=2, val_check_interval=2, logger=False, enable_checkpointing=False,
                      enable_progress_bar=False, enable_model_summary=False, default_root_dir=str(tmp_path))
    trainer.fit(task, datamodule=data)
    logged = {k: float(v) for k, v in trainer.callback_metrics.items()}
    assert 0.5 < logged["val/context_baseline_loss"] < math.log(4) + 0.1
    assert task._context is not None and task._context.counts[0].sum() <= 200_000
