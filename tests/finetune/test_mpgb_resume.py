"""Mid-epoch resume of the MPGB training loader: the batch sampler's state, the loader's count,
and a fine-tuning run stopped at step k and resumed from its checkpoint ending bit for bit
where an uninterrupted run ends."""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
from lightning import Trainer
from lightning.pytorch.callbacks import ModelCheckpoint

from datamodules.mpgb import MPGBDataModule
from datamodules.mpgb.bucketing import BucketBatchSampler
from datamodules.mpgb.dataset import SequenceCollator, SequenceDataset
from datamodules.mpgb.loader import ResumableLoader
from datamodules.mpgb.sequences import LabeledSequences
from tasks.sequence import SequenceTask
from tests.finetune.helpers import labelled_rows, random_sequences, tiny_backbone, write_table

LENGTHS = np.random.default_rng(5).integers(20, 400, size=150)


def _sampler(seed: int = 3, rc_prob: float = 0.5) -> BucketBatchSampler:
    return BucketBatchSampler(LENGTHS, 8, shuffle=True, seed=seed, max_tokens=1600, rc_prob=rc_prob)


def test_sampler_state_continues_the_same_epoch_order() -> None:
    straight = _sampler()
    straight.set_epoch(2)
    expected = list(straight)
    stopped = _sampler()
    stopped.set_epoch(2)
    for _ in zip(range(5), stopped, strict=False):
        stopped.position += 1  # what the loader does for each batch it hands over
    state = stopped.state_dict()
    assert (state["epoch"], state["position"], state["seed"]) == (2, 5, 3)
    resumed = _sampler()
    resumed.load_state_dict(state)
    resumed.set_epoch(2)
    assert list(resumed) == expected[5:]
    assert list(resumed) == expected  # the next pass of the epoch starts from its beginning


def test_a_state_of_another_seed_restarts_the_epoch(caplog: pytest.LogCaptureFixture) -> None:
    state = {**_sampler(seed=4).state_dict(), "position": 3}
    resumed = _sampler(seed=3)
    with caplog.at_level(logging.WARNING):
        resumed.load_state_dict(state)
    assert "differs in seed" in caplog.text
    assert len(list(resumed)) == len(resumed)


def test_reverse_complement_flags_are_seeded_per_epoch_and_batch() -> None:
    first, again = _sampler(), _sampler()
    flags = [flip for batch in first for _, flip in batch]
    assert flags == [flip for batch in again for _, flip in batch]
    assert 0.35 < np.mean(flags) < 0.65
    again.set_epoch(1)
    assert flags != [flip for batch in again for _, flip in batch]


def test_loader_counts_batches_handed_over_not_prefetched() -> None:
    offsets = np.concatenate([[0], np.cumsum(LENGTHS)]).astype(np.int64)
    labels = np.zeros(len(LENGTHS), np.int64)
    data = LabeledSequences(np.full(offsets[-1], 7, np.uint8), offsets, labels, "toy")
    loader = ResumableLoader(SequenceDataset(data), _sampler(), lambda: 0, collate_fn=SequenceCollator(),
                             num_workers=1, prefetch_factor=4)
    batches = iter(loader)
    for _ in range(3):
        next(batches)
    assert loader.state_dict()["position"] == 3


def _datamodule(root: Path) -> MPGBDataModule:
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    rows = labelled_rows("binary", 2, random_sequences(rng, 64, 20, 60), rng)
    for name, part in (("train.csv", rows[:48]), ("dev.csv", rows[48:56]), ("test.csv", rows[56:])):
        write_table(root / name, part)
    return MPGBDataModule(name="toy", root=str(root), format="csv", task_type="binary", num_labels=2,
                          metric="auroc", train_file="train.csv", val_file="dev.csv", test_file="test.csv",
                          batch_size=8, rc_augment=True, seed=11)


def _fit(root: Path, steps: int, ckpt_path: Path | None = None, save_at: int | None = None) -> SequenceTask:
    torch.manual_seed(0)  # the head's dropout draws from torch's RNG: the task checkpoints its state
    task = SequenceTask(tiny_backbone(), partial(torch.optim.AdamW, lr=1e-3), "binary", 2, "auroc",
                        dropout=0.1)
    callbacks = [ModelCheckpoint(dirpath=root / "ckpt", every_n_train_steps=save_at, save_top_k=-1)]
    trainer = Trainer(max_steps=steps, val_check_interval=3, num_sanity_val_steps=0, logger=False,
                      callbacks=callbacks if save_at else None, enable_checkpointing=bool(save_at),
                      enable_progress_bar=False, enable_model_summary=False, default_root_dir=str(root))
    trainer.fit(task, datamodule=_datamodule(root), ckpt_path=ckpt_path)
    return task


@pytest.mark.slow
def test_stopped_and_resumed_fine_tuning_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    straight = _fit(tmp_path, 9).state_dict()  # 6 batches per epoch: the run crosses into epoch 1
    for stop, epoch, position in ((4, 0, 4), (7, 1, 1)):
        folder = tmp_path / f"stop{stop}"
        _fit(folder, stop, save_at=stop)
        checkpoint = next((folder / "ckpt").glob(f"*step={stop}.ckpt"))
        saved = torch.load(checkpoint, map_location="cpu", weights_only=True)
        loader_state = saved["loops"]["fit_loop"]["state_dict"]["combined_loader"][0]
        assert (loader_state["epoch"], loader_state["position"]) == (epoch, position)
        resumed = _fit(folder, 9, ckpt_path=checkpoint).state_dict()
        different = [k for k in straight if not torch.equal(straight[k], resumed[k])]
        assert not different, f"stopped at step {stop}: weights differ after resume: {different[:5]}"
