"""LightningDataModule for one MPGB dataset (or any dataset in an MPGB format)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from lightning import LightningDataModule
from torch.utils.data import DataLoader

from datamodules.mpgb.bucketing import BucketBatchSampler
from datamodules.mpgb.dataset import SequenceCollator, SequenceDataset
from datamodules.mpgb.labels import check_task
from datamodules.mpgb.loader import ResumableLoader
from datamodules.mpgb.readers import FORMATS, LabeledSequences, infer_label_count, read_dataset

log = logging.getLogger(__name__)
SPLITS = ("train", "val", "test")


class MPGBDataModule(LightningDataModule):
    """Reads `root/<train|val|test>_file` in `format`, batches by length, right-pads.

    - every split is read and checked in `prepare_data`/`setup`, whatever the stage, so a bad
      test file fails before training; files are read once into token stores (`cache_dir`:
      where they live, see datamodules.mpgb.store) and memory-mapped;
    - no `val_file`: a seeded `val_fraction` of train (seed `split_seed`) becomes validation;
    - `rc_augment`: training sequences are reverse-complemented with probability `rc_prob`;
    - `crop`: sequences longer than it are cut to that many bases: training a random window of
      them (a new one each epoch), validation, test and `eval_dataloader` the central one, or,
      with `eval_tiles`, all of it as `crop`-long tiles overlapping by half, whose outputs the
      task averages per sequence (batches then carry `sequence_index`);
    - `max_<split>_samples`: a seeded random subset of that split (quick CPU runs);
    - `prepare`: an optional callable run once in `prepare_data` (e.g. building embedded data).
    The training loader resumes mid-epoch from a Lightning checkpoint (datamodules.mpgb.loader).
    `task_type`, `num_labels` and `metric` describe the task for the task module and the runs
    (a multi-label set may leave `num_labels` None: `setup` reads it from the validation or test file);
    `task_group` (the MPGB task type, e.g. polyadenylation), `length`, `source` and `subset`
    (the published variant read, e.g. open chromatin's full or mini) are for reports.
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
        crop: int | None = None,
        eval_tiles: bool = False,
        add_special_tokens: bool = True,
        pad_to_multiple_of: int | None = None,
        max_train_samples: int | None = None,
        max_val_samples: int | None = None,
        max_test_samples: int | None = None,
        prepare: Callable[[], object] | None = None,
        task_group: str | None = None,
        length: str | int | None = None,
        source: str | None = None,
        subset: str | None = None,
        cache_dir: str | None = None,
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
        if crop is not None and (isinstance(crop, bool) or not isinstance(crop, int) or crop < 1):
            raise ValueError(f"dataset {name}: crop must be a positive number of bases or null, got {crop!r}")
        if eval_tiles and crop is None:
            raise ValueError(f"dataset {name}: eval_tiles=true needs crop (the tile length in bases)")
        self.crop, self.eval_tiles = crop, bool(eval_tiles)
        self.add_special = add_special_tokens
        self.collator = SequenceCollator(pad_to_multiple_of)
        self.max_samples = {"train": max_train_samples, "val": max_val_samples, "test": max_test_samples}
        self.prepare = prepare
        self.task_group, self.length, self.source, self.subset = task_group, length, source, subset
        self.cache_dir = cache_dir
        self.splits: dict[str, LabeledSequences] = {}

    def prepare_data(self) -> None:
        """Run `prepare`, then read every split (under DDP on one process per node, before setup)."""
        if self.prepare is not None:
            self.prepare()
        self._read_all()

    def setup(self, stage: str | None = None) -> None:
        """Read and check all three splits (any stage): a malformed file fails before training."""
        self._read_all()

    def _path(self, split: str) -> Path:
        path = self.root / self.files[split]  # type: ignore[operator]
        if not path.is_file():
            folder = self.root
            while not folder.is_dir() and folder != folder.parent:
                folder = folder.parent
            found = sorted(p.name + ("/" if p.is_dir() else "") for p in folder.iterdir() if p.name[0] != ".")
            where = f"{folder} holds {', '.join(found[:12]) or 'nothing'}"
            if folder != self.root:
                where = f"{self.root} does not exist; {where}"
            raise FileNotFoundError(f"dataset {self.name}: {split} file not found: {path} ({where}); "
                                    "set data.root, or see docs/data.md for the layout each config expects")
        return path

    def _read(self, path: Path) -> LabeledSequences:
        return read_dataset(path, self.format, self.task_type, self.num_labels,  # type: ignore[arg-type]
                            self.max_length, self.too_long, self.cache_dir)

    def _read_all(self) -> None:
        if len(self.splits) == len(SPLITS):
            return
        paths = {split: self._path(split) for split in SPLITS if self.files[split]}  # all present?
        if self.num_labels is None:  # multi-label without a declared count: the smallest split tells
            first = "val" if "val" in paths else "test"
            self.num_labels = infer_label_count(paths[first], self.format)
            log.info("%s: %d labels, read from %s", self.name, self.num_labels, self.files[first])
        # the small splits first: a bad test file fails before the large training file is read
        splits = {split: self._read(paths[split]) for split in ("val", "test", "train") if split in paths}
        if self.files["val"] is None:
            splits["train"], splits["val"] = self._split_train(splits["train"])
        self.splits = {split: self._limit(split, splits[split]) for split in SPLITS}

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

    def _loader(self, split: str, train: bool | None = None) -> DataLoader:
        """The split's loader, shuffled and augmented when `train` (default: for the train split)."""
        if split not in self.splits:
            raise RuntimeError(f"dataset {self.name}: split {split!r} is not set up; call setup() first")
        train = split == "train" if train is None else train
        tiles = self.eval_tiles and not train
        dataset = SequenceDataset(self.splits[split], self.add_special, self.crop, tiles)
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
            rc_prob=self.rc_prob if train else 0.0,
            crop_draws=train and self.crop is not None,
        )
        # a generator of its own: creating an iterator (worker seeds) never draws from torch's global
        # RNG, so a resumed run's dropout draws continue where the checkpoint left them
        options = {"collate_fn": self.collator, "num_workers": self.num_workers,
                   "persistent_workers": self.num_workers > 0,
                   "generator": torch.Generator().manual_seed(self.seed)}
        if not train:
            return DataLoader(dataset, batch_sampler=sampler, **options)
        epoch = lambda: trainer.current_epoch if trainer is not None else None  # noqa: E731
        return ResumableLoader(dataset, sampler, epoch, **options)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train")

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")

    def eval_dataloader(self, split: str) -> DataLoader:
        """Any split in evaluation order, without shuffling or augmentation (e.g. to embed train)."""
        return self._loader(split, train=False)
