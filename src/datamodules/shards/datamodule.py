"""Pretraining from webdataset shards: the LightningDataModule of DESIGN.md 4's sharded path.

Batches are those of `FastaWindowDataModule` (same MLM collator, same keys and dtypes):
input_ids (B, L) long, attention_mask (B, L) bool, labels (B, L) long (-100 where no loss),
softmask (B, L) bool, with L = window_length + 2 when [CLS]/[SEP] are added.

`shards` is a local folder or a URL (see index.py). With `manifest` set and no index at a local
`shards` folder, `prepare_data` builds the shards first (on local rank 0; resumable).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning.pytorch import LightningDataModule
from torch.utils.data import DataLoader

from datamodules.masking import MLMCollator
from datamodules.resume import same_stream
from datamodules.shards.builder import INDEX_NAME, build_shards
from datamodules.shards.dataset import ShardWindowDataset, decode_window, read_shard
from datamodules.shards.index import ShardIndex
from datamodules.shards.manifest import load_manifest, parse_size
from datamodules.shards.splits import empty_split_message
from datamodules.shards.unit import BuildParams

log = logging.getLogger(__name__)
WEIGHTINGS = ("bp", "uniform", "temperature")


class EpochLoader(DataLoader):
    """A DataLoader that tells its dataset the epoch before each pass (workers read it from shared
    memory), taking the epoch from `epoch_fn` (the trainer's) or counting passes itself.

    It is stateful for Lightning: `state_dict` holds the epoch and the batches delivered in it,
    and with the dataset's `stream_identity` it is saved in checkpoints; after `load_state_dict`
    the pass of that epoch continues after those batches (every rank x worker stream at its
    exact position). A checkpoint of another topology, seed or buffer restarts the epoch, with a
    warning.
    """

    def __init__(self, dataset: ShardWindowDataset, epoch_fn: Callable[[], int | None],
                 **kwargs: Any) -> None:
        super().__init__(dataset, batch_size=None, **kwargs)
        self.epoch_fn, self.passes = epoch_fn, 0
        self.epoch, self.delivered = 0, 0
        self._resume: tuple[int, int] | None = None

    def __iter__(self):  # noqa: ANN204 - DataLoader's iterator type
        epoch = self.epoch_fn()
        epoch = self.passes if epoch is None else epoch
        skip = self._resume[1] if self._resume is not None and self._resume[0] == epoch else 0
        self._resume = None
        self.dataset.set_epoch(epoch)
        self.dataset.set_resume(skip)
        self.passes += 1
        self.epoch, self.delivered = epoch, skip
        return self._counted(super().__iter__())

    def _counted(self, batches: Iterator[Any]) -> Iterator[Any]:
        for batch in batches:
            self.delivered += 1
            yield batch

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "batches": self.delivered, **self.dataset.stream_identity()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not same_stream(state, self.dataset.stream_identity(), "data stream"):
            return
        self._resume = (int(state["epoch"]), int(state["batches"]))


def species_weights(index: ShardIndex, weighting: str, temperature: float = 1.0) -> dict[str, float]:
    """Sampling weight per species: by bases, uniform, or bases ** (1 / temperature); each times
    the species' manifest weight."""
    if weighting not in WEIGHTINGS:
        raise ValueError(f"species_weighting must be one of {WEIGHTINGS}, got {weighting!r}")
    if weighting == "temperature" and not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    bases = index.species_bases("train")
    manifest = index.manifest_weights()
    base = {"bp": lambda n: float(n), "uniform": lambda n: 1.0,
            "temperature": lambda n: float(n) ** (1.0 / temperature)}[weighting]
    return {name: base(n) * manifest[name] for name, n in bases.items() if n > 0}


class ShardDataModule(LightningDataModule):
    """MLM batches streamed from shards; see the module docstring and DESIGN.md 4."""

    def __init__(self, shards: str, manifest: str | None = None, build: Mapping[str, Any] | None = None,
                 genomes_root: str | None = None, build_processes: int | None = None,
                 window_length: int | None = None, batch_size: int = 8, num_workers: int = 0,
                 rc_prob: float = 0.3, mlm_probability: float = 0.15, mask_token_fraction: float = 0.8,
                 random_token_fraction: float = 0.1, shuffle_buffer: int = 1000, shard_shuffle: bool = True,
                 shard_interleave: int = 1, resampled: bool = False,
                 train_windows_per_epoch: int | None = None,
                 species_weighting: str = "bp", temperature: float = 1.0, val_windows: int | None = 64,
                 test_windows: int | None = 64, seed: int = 0, add_special_tokens: bool = True,
                 pad_to_multiple_of: int | None = None, pin_memory: bool = False,
                 progress: bool = True) -> None:
        super().__init__()
        self.save_hyperparameters(logger=False)
        if batch_size < 1 or (window_length is not None and window_length < 1):
            raise ValueError(f"batch_size and window_length must be positive; got {batch_size}, "
                             f"{window_length}")
        if not 0 <= rc_prob <= 1:
            raise ValueError(f"rc_prob must be in [0, 1], got {rc_prob}")
        if species_weighting not in WEIGHTINGS:
            raise ValueError(f"species_weighting must be one of {WEIGHTINGS}, got {species_weighting!r}")
        if species_weighting != "bp" and not resampled:
            raise ValueError(f"species_weighting={species_weighting!r} needs resampled=true: an epoch over "
                             "every window takes each species in proportion to its windows")
        if resampled and not train_windows_per_epoch:
            raise ValueError("resampled=true needs train_windows_per_epoch (the length of an epoch)")
        self.shards, self.manifest, self.build = str(shards), manifest, dict(build or {})
        self.genomes_root, self.build_processes = genomes_root, build_processes
        self.window_length, self.batch_size, self.num_workers = window_length, batch_size, num_workers
        self.rc_prob, self.shuffle_buffer, self.shard_shuffle = rc_prob, shuffle_buffer, shard_shuffle
        self.shard_interleave = shard_interleave
        self.resampled, self.train_windows_per_epoch = resampled, train_windows_per_epoch
        self.species_weighting, self.temperature = species_weighting, temperature
        self.limits = {"val": val_windows, "test": test_windows}
        self.seed, self.add_special, self.pin_memory = seed, add_special_tokens, pin_memory
        self.progress = progress
        rates = (mlm_probability, mask_token_fraction, random_token_fraction, pad_to_multiple_of)
        self.collators = {  # one mask stream per split, as in FastaWindowDataModule
            split: MLMCollator(*rates, seed=int(np.random.SeedSequence([seed, stream]).generate_state(1)[0]))
            for stream, split in enumerate(("train", "val", "test"))}
        self.index: ShardIndex | None = None
        self.datasets: dict[str, ShardWindowDataset] = {}

    def _is_local(self) -> bool:
        return not any(mark in self.shards for mark in ("://", "pipe:", "{path}"))

    def build_params(self) -> BuildParams:
        """Builder parameters: the manifest's `build:` defaults, then this datamodule's `build`."""
        manifest = load_manifest(self.manifest, self.genomes_root)
        values = {**manifest.build, **self.build}
        if "shard_size" in values:
            values["shard_size"] = parse_size(values["shard_size"])
        return BuildParams(**values)

    def prepare_data(self) -> None:
        """Build the shards of `manifest` into a local `shards` folder unless they are complete.

        Shards of other parameters or another manifest in that folder raise an error.
        """
        if self.manifest is None or not self._is_local():
            return
        if not (Path(self.shards) / INDEX_NAME).is_file():
            log.info("building shards of %s into %s (first use; resumable)", self.manifest, self.shards)
        build_shards(load_manifest(self.manifest, self.genomes_root), self.shards, self.build_params(),
                     self.build_processes, self.progress)

    def setup(self, stage: str | None = None) -> None:
        if self.index is not None:
            return
        if self.manifest is not None and self._is_local():
            self.prepare_data()  # a no-op once built; needed when used without a Trainer
        self.index = ShardIndex.load(self.shards)
        length = self.window_length or self.index.window_length
        if length > self.index.window_length:
            raise ValueError(f"window_length {length} is longer than the windows stored in {self.shards} "
                             f"({self.index.window_length} bp); rebuild them with a larger window_length")
        self.length = length
        log.info("shards %s: %d train, %d val, %d test windows of %d bp; training length %d",
                 self.shards, self.index.windows("train"), self.index.windows("val"),
                 self.index.windows("test"), self.index.window_length, length)
        for record in self.index.data["species"].values():
            if record.get("held_out_blocks"):
                log.info("held out by position: %s", record["held_out_blocks"]["description"])

    def _topology(self) -> tuple[int, int]:
        trainer = getattr(self, "trainer", None)
        if trainer is not None:
            return trainer.global_rank, trainer.world_size
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            return torch.distributed.get_rank(), torch.distributed.get_world_size()
        return 0, 1

    def dataset(self, split: str) -> ShardWindowDataset:
        """The dataset of a split (built once; its rank and workers set from the trainer)."""
        if self.index is None:
            self.setup()
        if split not in self.datasets:
            if not self.index.shards(split):
                fraction = self.index.parameters.get(f"{split}_fraction", 0.0)
                raise ValueError(empty_split_message(split, self.index.data["corpus"], fraction, self.shards))
            training = split == "train"
            weights = None
            if training and self.resampled:
                weights = species_weights(self.index, self.species_weighting, self.temperature)
            self.datasets[split] = ShardWindowDataset(
                self.index.shards(split), self.index.window_length, self.batch_size, self.collators[split],
                training=training, seed=self.seed, rc_prob=self.rc_prob, crop_length=self.length,
                shuffle_buffer=self.shuffle_buffer, shard_shuffle=self.shard_shuffle,
                shard_interleave=self.shard_interleave, resampled=self.resampled,
                windows_per_epoch=self.train_windows_per_epoch, species_weights=weights,
                max_windows=None if training else self.limits[split], add_special=self.add_special)
        self.datasets[split].set_topology(*self._topology(), self.num_workers)
        return self.datasets[split]

    def _loader(self, split: str) -> EpochLoader:
        # Lightning warns about any IterableDataset with __len__ in case workers duplicate data;
        # ours cuts the stream per rank x worker (dataset.py), so its length is exact
        warnings.filterwarnings("ignore", message="Your `IterableDataset` has `__len__` defined",
                                module=r"lightning\.pytorch\.utilities\.data")
        trainer = getattr(self, "trainer", None)
        return EpochLoader(self.dataset(split),
                           lambda: trainer.current_epoch if trainer is not None else None,
                           num_workers=self.num_workers, pin_memory=self.pin_memory,
                           persistent_workers=self.num_workers > 0)

    def train_dataloader(self) -> EpochLoader:
        return self._loader("train")

    def val_dataloader(self) -> EpochLoader:
        return self._loader("val")

    def test_dataloader(self) -> EpochLoader:
        return self._loader("test")

    def set_train_length(self, length: int) -> None:
        """Crop training windows to `length` bases from the next batch on (curriculum callback)."""
        self.dataset("train").set_crop_length(length)

    def training_sequences(self, max_bases: int | None = None) -> Iterator[np.ndarray]:
        """Token arrays of the training windows in shard order, up to `max_bases` bases (for the
        context-count MLM floor, baselines.context_counts)."""
        if self.index is None:
            self.setup()
        seen = 0
        for shard in self.index.shards("train"):
            for sample in read_shard(shard.url):
                tokens = decode_window(sample)[0]
                if max_bases is not None and seen + len(tokens) > max_bases:
                    return
                seen += len(tokens)
                yield tokens

    def unigram_frequencies(self) -> torch.Tensor:
        """Frequencies of A, C, G, T over the training windows (for the MLM baseline loss)."""
        if self.index is None:
            self.setup()
        return torch.from_numpy(self.index.unigram_frequencies("train"))
