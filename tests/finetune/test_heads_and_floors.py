"""Pooling options fail at config time with the allowed values; the CNN floor and the positional
k-mer features behave; the CNN trains through SequenceTask and writes results.json."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
from lightning import Trainer

from baselines.cnn import CNNBackbone
from baselines.kmer import central_one_hot, features
from datamodules.mpgb.readers import LabeledSequences
from plantbimoe.tokenizer import A_ID, add_special_tokens, encode, pad_batch
from tasks.heads import check_pooling
from tasks.sequence import SequenceTask
from tests.finetune.helpers import tiny_backbone
from tests.finetune.test_sequence_task import make_datamodule

OPTIMIZER = partial(torch.optim.AdamW, lr=1e-3)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"pooling": "max"}, r"task.pooling=.max. is not a pooling; allowed: mean, cls, center, center_"),
        ({"pooling": "center_window"}, r"needs task.pooling_window >= 1"),
        ({"pooling": "center_window", "pooling_window": 500, "max_length": 398}, r"wider than the sequences"),
        ({"pooling": "positional"}, r"task.pooling=positional needs task.pooling_window >= 1"),
        ({"pooling": "positional", "pooling_window": 400, "max_length": 300}, r"wider than the sequences"),
        ({"pooling": "cls", "add_special_tokens": False}, r"task.pooling=cls needs a \[CLS\] token"),
    ],
)
def test_bad_pooling_fails_at_construction(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SequenceTask(tiny_backbone(), OPTIMIZER, "binary", 2, "auroc", **kwargs)


def test_cls_pooling_refused_on_the_cnn() -> None:
    with pytest.raises(ValueError, match="allowed here: mean, center, center_window, attention"):
        SequenceTask(CNNBackbone(d_model=8, n_layer=2), OPTIMIZER, "binary", 2, "auroc", pooling="cls")
    check_pooling("center_window", 398, 398)  # as wide as the sequences is fine


def test_cnn_ignores_padding_and_special_tokens() -> None:
    torch.manual_seed(0)
    cnn = CNNBackbone(d_model=8, n_layer=3, kernel_size=5).eval()
    short = add_special_tokens(encode("ACGTTGCAAGGCTTAACG"))
    alone_ids, alone_mask = pad_batch([short])
    padded_ids, padded_mask = pad_batch([short, add_special_tokens(encode("T" * 50))], pad_to_multiple_of=64)
    with torch.no_grad():
        alone = cnn(alone_ids, alone_mask).last_hidden_state
        padded = cnn(padded_ids, padded_mask).last_hidden_state
    torch.testing.assert_close(alone[0], padded[0, : alone.shape[1]], atol=1e-6, rtol=1e-6)
    assert torch.all(padded[0, alone.shape[1]:] == 0)
    with pytest.raises(ValueError, match="kernel_size must be odd"):
        CNNBackbone(kernel_size=4)


def test_cnn_trains_through_sequence_task_and_writes_results(tmp_path: Path) -> None:
    datamodule = make_datamodule(tmp_path, "binary", 2, "auroc")
    torch.manual_seed(0)
    task = SequenceTask(CNNBackbone(d_model=8, n_layer=2), OPTIMIZER, "binary", 2, "auroc",
                        pooling="center_window", pooling_window=9, run_label="cnn")
    before = task.backbone.stem.weight.detach().clone()
    trainer = Trainer(max_steps=3, val_check_interval=3, logger=False, enable_checkpointing=False,
                      enable_progress_bar=False, enable_model_summary=False, default_root_dir=str(tmp_path))
    trainer.fit(task, datamodule=datamodule)
    assert not torch.equal(before, task.backbone.stem.weight)
    trainer.test(task, datamodule=datamodule, verbose=False)
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["label"] == "cnn" and "test/auroc" in results["metrics"]
    assert task.hparams["backbone"]["_target_"] == "baselines.cnn.CNNBackbone"


def _data(seqs: list[str]) -> LabeledSequences:
    tokens = [encode(s) for s in seqs]
    offsets = np.concatenate([[0], np.cumsum([len(t) for t in tokens])]).astype(np.int64)
    return LabeledSequences(np.concatenate(tokens), offsets, np.zeros(len(seqs), np.int64), "toy")


def test_central_one_hot_by_hand() -> None:
    data = _data(["AACGTTA", "GN", "TTTTTTTT"])
    got = central_one_hot(data, 3).reshape(3, 3, 4)
    # row 0: n = 7, start 3 - 1 = 2 -> C G T; row 1: n = 2, start 0 -> G, N, (outside)
    np.testing.assert_array_equal(got[0].argmax(1), encode("CGT") - A_ID)
    np.testing.assert_array_equal(got[1], [[0, 0, 1, 0], [0, 0, 0, 0], [0, 0, 0, 0]])
    np.testing.assert_array_equal(got[2].argmax(1), [3, 3, 3])
    assert got.sum() == 3 + 1 + 3
    assert features(data, (1,), 3).shape == (3, 4 + 12)
    with pytest.raises(ValueError, match="positional_width must be >= 1"):
        central_one_hot(data, 0)
