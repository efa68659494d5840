"""MPGBDataModule: seeded validation split, length buckets, RC augmentation, training crops, batches."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from lightning import LightningModule, Trainer

from datamodules.mpgb import DatasetFormatError, MPGBDataModule
from datamodules.mpgb.bucketing import BucketBatchSampler
from datamodules.mpgb.dataset import SequenceDataset
from datamodules.mpgb.sequences import LabeledSequences
from plantbimoe.tokenizer import CLS_ID, PAD_ID, SEP_ID, add_special_tokens, decode, reverse_complement
from tests.finetune.helpers import labelled_rows, random_sequences, write_fasta


def _module(root: Path, **kwargs) -> MPGBDataModule:
    rng = np.random.default_rng(0)
    rows = labelled_rows("binary", 2, random_sequences(rng, 60, 10, 200), rng)
    write_fasta(root / "sp_train.fa", rows[:50])
    write_fasta(root / "sp_test.fa", rows[50:])
    options = dict(
        name="toy",
        root=str(root),
        format="fasta",
        task_type="binary",
        num_labels=2,
        metric="auroc",
        train_file="sp_train.fa",
        test_file="sp_test.fa",
        batch_size=8,
    )
    return MPGBDataModule(**(options | kwargs))


def _texts(data) -> list[str]:
    return [decode(data.sequence(i)) for i in range(len(data))]


def test_seeded_validation_split_is_disjoint_and_reproducible(tmp_path: Path) -> None:
    first, again, other = (_module(tmp_path, val_fraction=0.2, split_seed=s) for s in (7, 7, 8))
    for module in (first, again, other):
        module.setup("fit")
    train, val = _texts(first.splits["train"]), _texts(first.splits["val"])
    assert len(val) == 10 and len(train) == 40
    assert not set(train) & set(val)
    assert val == _texts(again.splits["val"])
    assert val != _texts(other.splits["val"])


def test_sample_caps_are_seeded_subsets(tmp_path: Path) -> None:
    module = _module(tmp_path, max_train_samples=12, max_test_samples=4)
    module.setup("fit")
    module.setup("test")
    assert len(module.splits["train"]) == 12 and len(module.splits["test"]) == 4
    again = _module(tmp_path, max_train_samples=12)
    again.setup("fit")
    assert _texts(again.splits["train"]) == _texts(module.splits["train"])


def test_batches_are_right_padded_with_special_tokens(tmp_path: Path) -> None:
    module = _module(tmp_path)
    module.setup("test")
    batch = next(iter(module.test_dataloader()))
    ids, mask = batch["input_ids"], batch["attention_mask"]
    assert mask.dtype == torch.bool and batch["labels"].dtype == torch.long
    lengths = mask.sum(1)
    assert torch.all(ids[:, 0] == CLS_ID)
    assert torch.all(ids[torch.arange(len(ids)), lengths - 1] == SEP_ID)
    assert torch.all(ids[~mask] == PAD_ID)
    assert torch.all(mask[:, :-1] >= mask[:, 1:])  # padding only on the right


def test_rc_augmentation_switch(tmp_path: Path) -> None:
    module = _module(tmp_path, rc_augment=True, rc_prob=1.0)
    module.setup("fit")
    loader = module.train_dataloader()
    keys = next(iter(loader.batch_sampler))  # (index, reverse-complement flag) pairs
    assert all(flip for _, flip in keys)
    item, _ = loader.dataset[keys[0]]
    expected = reverse_complement(module.splits["train"].sequence(keys[0][0]))
    assert np.array_equal(item, add_special_tokens(expected))
    batch = next(iter(loader))
    assert batch["input_ids"][0].tolist()[: len(item)] == item.tolist()
    val_keys = next(iter(module.val_dataloader().batch_sampler))  # evaluation is never augmented
    assert all(isinstance(k, int) for k in val_keys)
    plain = _module(tmp_path, rc_augment=False, rc_prob=1.0)
    plain.setup("fit")
    assert all(isinstance(k, int) for k in next(iter(plain.train_dataloader().batch_sampler)))


class _NoTraining(LightningModule):
    """Fails the test if a training step runs."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(1, 1)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        raise AssertionError("training started before the test split was checked")

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        raise AssertionError("validation started before the test split was checked")

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_a_malformed_test_split_fails_before_training(tmp_path: Path) -> None:
    module = _module(tmp_path)
    test_file = tmp_path / "sp_test.fa"
    lines = test_file.read_text().splitlines()
    lines[5] = lines[5][:5] + "X" + lines[5][6:]  # record 3's sequence
    test_file.write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetFormatError, match=r"sp_test.fa: record 3 \('seq2', header at line 5\): inv"):
        module.setup("fit")
    trainer = Trainer(max_steps=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                      enable_model_summary=False, default_root_dir=str(tmp_path))
    with pytest.raises(DatasetFormatError, match="sp_test.fa: record 3"):
        trainer.fit(_NoTraining(), datamodule=module)


def test_bucket_sampler_covers_everything_once_and_groups_lengths() -> None:
    lengths = np.random.default_rng(3).integers(50, 6000, size=203)
    evaluation = list(BucketBatchSampler(lengths, 16, shuffle=False))
    assert sorted(i for b in evaluation for i in b) == list(range(203))
    flat = [int(lengths[i]) for b in evaluation for i in b]
    assert flat == sorted(flat)
    capped = BucketBatchSampler(lengths, 16, shuffle=True, seed=1, max_tokens=20000)
    batches = list(capped)
    assert sorted(i for b in batches for i in b) == list(range(203))
    assert all(len(b) == 1 or len(b) * max(lengths[b]) <= 20000 for b in batches)
    capped.set_epoch(1)
    assert list(capped) != batches


@pytest.mark.parametrize("shuffle", [True, False])
def test_bucket_sampler_splits_across_ranks_without_duplicates(shuffle: bool) -> None:
    lengths = np.arange(100)
    ranks = [
        list(BucketBatchSampler(lengths, 8, shuffle=shuffle, seed=2, num_replicas=2, rank=r)) for r in (0, 1)
    ]
    seen = [i for batches in ranks for b in batches for i in b]
    assert len(seen) == len(set(seen))
    if shuffle:
        assert len(ranks[0]) == len(ranks[1])
    else:
        assert sorted(seen) == list(range(100))


def test_prepare_hook_runs_once_in_prepare_data(tmp_path: Path) -> None:
    calls = []
    module = _module(tmp_path, prepare=lambda: calls.append(1))
    module.prepare_data()
    assert calls == [1]


def test_bad_configuration_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown format 'xlsx'"):
        _module(tmp_path, format="xlsx")
    with pytest.raises(ValueError, match="a regression task has one target"):
        _module(tmp_path, task_type="regression", num_labels=2)
    module = _module(tmp_path)
    with pytest.raises(RuntimeError, match="split 'train' is not set up"):
        module.train_dataloader()


def test_crop_takes_random_training_windows_and_central_evaluation_ones(tmp_path: Path) -> None:
    module = _module(tmp_path, crop=50, seed=3)
    module.setup("fit")
    train = _texts(module.splits["train"])
    windows = []
    for epoch in (0, 1):
        loader = module.train_dataloader()
        loader.batch_sampler.set_epoch(epoch)
        keys = [key for batch in loader.batch_sampler for key in batch]
        assert all(0.0 <= where < 1.0 for _, _, where in keys)
        items = [loader.dataset[key] for key in keys]
        texts = [decode(ids[1:-1]) for ids, _ in items]
        for (index, _, _), text in zip(keys, texts, strict=True):
            whole = train[index]
            assert len(text) == min(len(whole), 50) and text in whole
        windows.append(texts)
    assert windows[0] != windows[1]  # a new window each epoch
    again = _module(tmp_path, crop=50, seed=3)
    again.setup("fit")
    replay = again.train_dataloader()
    replay.batch_sampler.set_epoch(0)
    assert [decode(replay.dataset[k][0][1:-1]) for b in replay.batch_sampler for k in b] == windows[0]
    evaluation = [decode(ids[1:-1]) for batch in module.val_dataloader() for ids in _unpadded(batch)]
    assert sorted(evaluation) == sorted(_central(text, 50) for text in _texts(module.splits["val"]))


def _central(text: str, crop: int) -> str:
    start = max(0, len(text) - crop) // 2
    return text[start : start + crop]


def _unpadded(batch: dict[str, torch.Tensor]) -> list[torch.Tensor]:
    return [ids[mask] for ids, mask in zip(batch["input_ids"], batch["attention_mask"], strict=True)]


def test_crop_positions_span_the_whole_sequence() -> None:
    ids = np.arange(10, dtype=np.uint8) % 4 + 7
    data = LabeledSequences(ids, np.array([0, 10], np.int64), np.zeros(1, np.int64), "toy")
    dataset = SequenceDataset(data, add_special=False, crop=4)
    assert dataset.lengths().tolist() == [4]
    assert dataset[(0, False, 0.0)][0].tolist() == ids[:4].tolist()
    assert dataset[(0, False, 0.999)][0].tolist() == ids[6:].tolist()
    assert dataset[0][0].tolist() == ids[3:7].tolist()  # no crop position (evaluation): the centre
    assert dataset[(0, True)][0].tolist() == reverse_complement(ids[3:7]).tolist()
    assert SequenceDataset(data, add_special=False)[(0, False, 0.5)][0].tolist() == ids.tolist()
    with pytest.raises(ValueError, match="crop must be a positive number of bases"):
        SequenceDataset(data, crop=0)


def test_crop_draws_leave_reverse_complement_flags_unchanged() -> None:
    lengths = np.random.default_rng(5).integers(50, 600, size=40)
    plain = BucketBatchSampler(lengths, 8, shuffle=True, seed=2, rc_prob=0.5)
    cropped = BucketBatchSampler(lengths, 8, shuffle=True, seed=2, rc_prob=0.5, crop_draws=True)
    assert [k for b in plain for k in b] == [(i, flip) for b in cropped for i, flip, _ in b]
    assert "crop_draws" not in plain.identity() and cropped.identity()["crop_draws"] is True


@pytest.mark.parametrize("bad", [0, -5, 2.5, True])
def test_bad_training_crop_is_refused(tmp_path: Path, bad: object) -> None:
    with pytest.raises(ValueError, match=r"dataset toy: crop must be a positive number of bases"):
        _module(tmp_path, crop=bad)
