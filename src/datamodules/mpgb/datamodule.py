"""LightningDataModule for one MPGB dataset (or any dataset in an MPGB format)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
from lightning import LightningDataModule
from torch.utils.data import DataLoader

from datamodules.mpgb.bucketing import BucketBatchSampler
from datamodules.mpgb.dataset import SequenceCollator, SequenceDataset
from datamodules.mpgb.labels import check_task
from datamodules.mpgb.readers import FORMATS, LabeledSequences, infer_label_count, read_dataset

log = logging.getLogger(__name__)
SPLITS = ("train", "val", "test")


class MPGBDataModule(LightningDataModule):
    """Reads `root/<train|val|test>_file` in `format`, batches by length, right-pads.

    - no `val_file`: a seeded `val_fraction` of train (seed `split_seed`) becomes validation;
    - `rc_augment`: training sequences are reverse-complemented with probability `rc_prob`;
    - `max_<split>_samples`: a seeded random subset of that split (quick CPU runs);
    - `prepare`: an optional callable run once in `prepare_data` (e.g. building embedded data).
    `task_type`, `num_labels` and `metric` describe the task for the task module and the runs
    (a multi-label set may leave `num_labels` None: `setup` reads it from the validation or test file);
    `task_group` (the MPGB task type, e.g. polyadenylation), `length` and `source` are for reports.
    """

    def __init__(
        self,
        name: str,
        root: str,
        format: str,
        task_type: str,
        num_labels: int | None,
        metric: str,
        train_file: str,
        test_file: str,
        val_file: str | None = None,
        max_length: int | None = None,
        too_long: str = "truncate",
        batch_size: int = 32,
        eval_batch_size: int | None = None,
        max_tokens: int | None = None,
        bucket: bool = True,
        num_workers: int = 0,
        val_fraction: float = 0.1,
        split_seed: int = 42,
        seed: int = 42,
        rc_augment: bool = False,
        rc_prob: float = 0.5,
        add_special_tokens: bool = True,
        pad_to_multiple_of: int | None = None,
        max_train_samples: int | None = None,
        max_val_samples: int | None = None,
        max_test_samples: int | None = None,
        prepare: Callable[[], object] | None = None,
        task_group: str | None = None,
        length: str | int | None = None,
        source: str | None = None,
    ) -> None:
        super().__init__()
        if format not in FORMATS:
            raise ValueError(f"dataset {name}: unknown format {format!r}; expected one of {FORMATS}")
        check_task(task_type, num_labels)
        if val_file is None and not 0.0 < val_fraction < 1.0:
            raise ValueError(f"dataset {name}: val_fraction must lie in (0, 1), got {val_fraction}")
        self.name, self.root, self.format = name, Path(root), format
        self.task_type, self.num_labels, self.metric = task_type, num_labels, metric
        self.files = {"train": train_file, "val": val_file, "test": test_file}
        self.max_length, self.too_long = max_length, too_long
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size or batch_size
        self.max_tokens, self.bucket, self.num_workers = max_tokens, bucket, num_workers
        self.val_fraction, self.split_seed, self.seed = val_fraction, split_seed, seed
        self.rc_prob = rc_prob if rc_augment else 0.0
        self.add_special = add_special_tokens
        self.collator = SequenceCollator(pad_to_multiple_of)
        self.max_samples = {"train": max_train_samples, "val": max_val_samples, "test": max_test_samples}
        self.prepare = prepare
        self.task_group, self.length, self.source = task_group, length, source
        self.splits: dict[str, LabeledSequences] = {}

    def prepare_data(self) -> None:
        if self.prepare is not None:
            self.prepare()

    def _read(self, split: str) -> LabeledSequences:
        return read_dataset(
            self.root / self.files[split],
            self.format,
            self.task_type,
            self.num_labels,
            self.max_length,
            self.too_long,
        )

    def setup(self, stage: str | None = None) -> None:
        if self.num_labels is None:  # multi-label without a declared count: the smallest split tells
            first = self.files["val"] or self.files["test"]
            self.num_labels = infer_label_count(self.root / first, self.format)
            log.info("%s: %d labels, read from %s", self.name, self.num_labels, first)
        wanted = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",)}.get(stage or "", SPLITS)
        if any(s in wanted and s not in self.splits for s in ("train", "val")):
            if self.files["val"] is None:
                self.splits["train"], self.splits["val"] = self._split_train(self._read("train"))
            else:
                self.splits["train"], self.splits["val"] = self._read("train"), self._read("val")
        if "test" in wanted and "test" not in self.splits:
            self.splits["test"] = self._read("test")
        for split in wanted:
            self.splits[split] = self._limit(split, self.splits[split])

    def _split_train(self, data: LabeledSequences) -> tuple[LabeledSequences, LabeledSequences]:
        order = np.random.default_rng(self.split_seed).permutation(len(data))
        n_val = max(1, int(round(self.val_fraction * len(data))))
        if n_val >= len(data):
            raise ValueError(
                f"dataset {self.name}: {len(data)} training sequences are too few for a "
                f"validation split of {self.val_fraction}"
            )
        log.info(
            "%s: no validation file; %d of %d training sequences held out (seed %d)",
            self.name,
            n_val,
            len(data),
            self.split_seed,
        )
        return data.subset(np.sort(order[n_val:])), data.subset(np.sort(order[:n_val]))

    def _limit(self, split: str, data: LabeledSequences) -> LabeledSequences:
        cap = self.max_samples[split]
        if cap is None or len(data) <= cap:
            return data
        keep = np.random.default_rng((self.split_seed, SPLITS.index(split))).permutation(len(data))[:cap]
        return data.subset(np.sort(keep))

    def _loader(self, split: str) -> DataLoader:
        if split not in self.splits:
            raise RuntimeError(f"dataset {self.name}: split {split!r} is not set up; call setup() first")
        train = split == "train"
        dataset = SequenceDataset(self.splits[split], self.rc_prob if train else 0.0, self.add_special)
        trainer = self.trainer
        replicas, rank = (trainer.world_size, trainer.global_rank) if trainer is not None else (1, 0)
        lengths = dataset.lengths() if self.bucket else np.zeros(len(dataset), dtype=np.int64)
        sampler = BucketBatchSampler(
            lengths,
            self.batch_size if train else self.eval_batch_size,
            shuffle=train,
            seed=self.seed,
            max_tokens=self.max_tokens if self.bucket else None,
            num_replicas=replicas,
            rank=rank,
        )
        return DataLoader(
            dataset,
            batch_sampler=sampler,
            collate_fn=self.collator,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train")

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")
