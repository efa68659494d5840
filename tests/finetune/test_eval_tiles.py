"""Tiled evaluation (data.eval_tiles): a long sequence is read whole as crop-long tiles, and the
task scores each sequence once, on the mean of its tiles' outputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from lightning import Trainer

from datamodules.mpgb import MPGBDataModule
from datamodules.mpgb.dataset import SequenceCollator, SequenceDataset, tile_table
from datamodules.mpgb.sequences import LabeledSequences
from plantbimoe.tokenizer import add_special_tokens
from tasks.head_refit import head_features
from tasks.metrics import build_metrics, compute_loss, metric_inputs
from tasks.tiles import mean_by_sequence
from tests.finetune.helpers import labelled_rows, random_sequences, write_table
from tests.finetune.test_sequence_task import KINDS, make_task

CROP = 16


def _datamodule(root: Path, task_type: str, num_labels: int, metric: str, **kwargs) -> MPGBDataModule:
    rng = np.random.default_rng(4)
    rows = labelled_rows(task_type, num_labels, random_sequences(rng, 40, 8, 70), rng)
    for name, part in (("train.csv", rows[:24]), ("dev.csv", rows[24:32]), ("test.csv", rows[32:])):
        write_table(root / name, part)
    options = dict(name="toy_tiles", root=str(root), format="csv", task_type=task_type,
                   num_labels=num_labels, metric=metric, train_file="train.csv", val_file="dev.csv",
                   test_file="test.csv", batch_size=5, crop=CROP, eval_tiles=True)
    return MPGBDataModule(**(options | kwargs))


def test_tiles_cover_each_sequence_and_carry_its_index() -> None:
    lengths = np.array([5, 16, 17, 40])
    table = tile_table(lengths, CROP)
    for index, n in enumerate(lengths):
        rows = table[table[:, 0] == index]
        covered = np.zeros(n, dtype=bool)
        for _, start, end in rows:
            assert end - start == min(n, CROP)
            covered[start:end] = True
        assert covered.all()
    assert len(table[table[:, 0] == 3]) == 4  # 40 bases: starts 0, 8, 16, 24
    ids = np.arange(78, dtype=np.uint8) % 4 + 7
    data = LabeledSequences(ids, np.cumsum([0, *lengths]), np.arange(4), "toy")
    dataset = SequenceDataset(data, add_special=True, crop=CROP, tiles=True)
    assert len(dataset) == len(table)
    assert dataset.lengths().tolist() == (table[:, 2] - table[:, 1] + 2).tolist()
    tokens, label, index = dataset[len(table) - 1]
    assert index == 3 and int(label) == 3
    assert tokens.tolist() == add_special_tokens(data.sequence(3)[24:40]).tolist()
    batch = SequenceCollator()([dataset[i] for i in range(3)])
    assert batch["sequence_index"].tolist() == table[:3, 0].tolist()
    with pytest.raises(ValueError, match="tiles need a crop"):
        SequenceDataset(data, tiles=True)


def test_evaluation_loaders_read_tiles_and_training_crops(tmp_path: Path) -> None:
    module = _datamodule(tmp_path, "binary", 2, "auroc")
    module.setup("fit")
    val = list(module.val_dataloader())
    owners = torch.cat([b["sequence_index"] for b in val])
    assert sorted(set(owners.tolist())) == list(range(len(module.splits["val"])))
    bases = sum(int(b["attention_mask"].sum()) - 2 * len(b["labels"]) for b in val)
    assert bases >= int(module.splits["val"].lengths().sum())  # every base read, some twice
    train = next(iter(module.train_dataloader()))
    assert "sequence_index" not in train and train["input_ids"].shape[1] <= CROP + 2
    with pytest.raises(ValueError, match="dataset toy_tiles: eval_tiles=true needs crop"):
        _datamodule(tmp_path, "binary", 2, "auroc", crop=None)


def test_mean_by_sequence_averages_rows_of_one_owner() -> None:
    values = torch.tensor([[1.0, 2.0], [3.0, 4.0], [10.0, 0.0], [5.0, 6.0]])
    owners = torch.tensor([7, 2, 7, 7])
    labels = torch.tensor([1, 0, 1, 1])
    means, first = mean_by_sequence(values, owners, labels)
    torch.testing.assert_close(means, torch.tensor([[3.0, 4.0], [16 / 3, 8 / 3]]))
    assert first.tolist() == [0, 1]


@pytest.mark.parametrize(("task_type", "num_labels", "metric"), KINDS)
def test_a_tiled_test_scores_each_sequence_on_its_tiles_mean(
    tmp_path: Path, task_type: str, num_labels: int, metric: str
) -> None:
    datamodule = _datamodule(tmp_path, task_type, num_labels, metric)
    task = make_task(task_type, num_labels, metric, crop=CROP, eval_tiles=True)
    trainer = Trainer(max_steps=2, val_check_interval=1, logger=False, enable_checkpointing=False,
                      enable_progress_bar=False, enable_model_summary=False, default_root_dir=str(tmp_path))
    trainer.fit(task, datamodule=datamodule)
    trainer.test(task, datamodule=datamodule, verbose=False)
    results = json.loads((tmp_path / "results.json").read_text())["metrics"]
    # by hand: each test sequence's tiles in one batch of their own, outputs averaged
    test, collate, outputs, labels = datamodule.splits["test"], SequenceCollator(), [], []
    pieces = SequenceDataset(test, crop=CROP, tiles=True)
    task.eval()
    with torch.no_grad():
        for index in range(len(test)):
            batch = collate([pieces[i] for i in np.flatnonzero(pieces.tiles[:, 0] == index)])
            outputs.append(task.predict_batch(batch, rc_average=False).float().mean(0))
            labels.append(batch["labels"][0])
    outputs_t, labels_t = torch.stack(outputs), torch.stack(labels)
    metrics = build_metrics(task_type, num_labels)
    metrics.update(*metric_inputs(task_type, outputs_t, labels_t))
    expected = {f"test/{k}": float(v) for k, v in metrics.compute().items()}
    expected["test/loss"] = float(compute_loss(task_type, outputs_t, labels_t))
    assert results == pytest.approx(expected, abs=1e-4)


def test_refit_features_are_the_mean_of_a_sequences_tiles(tmp_path: Path) -> None:
    datamodule = _datamodule(tmp_path, "binary", 2, "auroc")
    datamodule.setup("fit")
    task = make_task(crop=CROP, eval_tiles=True).eval()
    x, y = head_features(task, datamodule.eval_dataloader("val"))
    assert x.shape[0] == len(datamodule.splits["val"]) == y.shape[0]
    pieces = SequenceDataset(datamodule.splits["val"], crop=CROP, tiles=True)
    batch = SequenceCollator()([pieces[i] for i in np.flatnonzero(pieces.tiles[:, 0] == 3)])
    with torch.no_grad():
        hidden = task.backbone(batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
        expected = task.head.features(hidden, batch["attention_mask"]).mean(0)
    torch.testing.assert_close(x[3], expected, atol=1e-5, rtol=1e-5)
    assert int(y[3]) == int(datamodule.splits["val"].label(3))
