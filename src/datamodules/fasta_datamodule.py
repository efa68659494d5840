"""FASTA-window pretraining data: genomes in memory, random training windows, tiled held-out windows.

The quick path of DESIGN.md 4: every assembly is read once in `setup` into uint8 token arrays.
Training windows are drawn from a seed derived from (seed, key) where key = epoch * n + i comes
from `EpochSampler`: reproducible, fresh every epoch, and never duplicated across dataloader
workers or DDP ranks (Lightning forwards `set_epoch` to the sampler, also through its DDP wrapper).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning.pytorch import LightningDataModule
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn
from torch.utils.data import DataLoader, Dataset, Sampler

from datamodules.masking import MLMCollator
from datamodules.windows import (
    Contig,
    RegionSpec,
    TrainWindowSampler,
    WindowRef,
    split_regions,
    tile_windows,
    window_arrays,
)
from plantbimoe.embedded import PREFIX, embedded_assemblies, resolve_fasta
from plantbimoe.fasta import read_fasta
from plantbimoe.tokenizer import NUCLEOTIDE_IDS, encode_with_softmask

log = logging.getLogger(__name__)
FastaSpec = str | Sequence[str] | Mapping[str, str | Sequence[str]] | None


def _normalise_fasta(fasta: FastaSpec) -> dict[str, list[str]]:
    """Assembly name -> FASTA paths; a bare path (or list) is one assembly named by the first file;
    ``embedded:NAME`` stands for an embedded assembly's file."""
    if fasta is None:
        return {name: [str(path)] for name, path in embedded_assemblies().items()}
    if isinstance(fasta, str | Path):
        fasta = [str(fasta)]
    if not isinstance(fasta, Mapping):
        paths = [str(p) for p in fasta]
        if not paths:
            raise ValueError("fasta: expected at least one FASTA path")
        fasta = {paths[0].removeprefix(PREFIX) if paths[0].startswith(PREFIX) else
                 Path(paths[0]).name.split(".")[0]: paths}
    spec = {str(k): [resolve_fasta(v)] if isinstance(v, str | Path) else [resolve_fasta(p) for p in v]
            for k, v in fasta.items()}
    if not spec or not all(spec.values()):
        raise ValueError(f"fasta: expected assembly name -> FASTA path(s), got {spec}")
    return spec


def load_genome(fasta: Mapping[str, Sequence[str]], progress: bool = True) -> list[Contig]:
    """Read and tokenise every record of every file, with a progress bar over file bytes."""
    files = [(assembly, path) for assembly, paths in fasta.items() for path in paths]
    for _, path in files:
        if not Path(path).is_file():
            raise FileNotFoundError(f"FASTA file not found: {path}")
    contigs: list[Contig] = []
    origin: dict[tuple[str, str], str] = {}
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TimeRemainingColumn())
    with Progress(*columns, disable=not progress) as bar:
        task = bar.add_task("reading genomes", total=sum(Path(p).stat().st_size for _, p in files))
        done = 0
        for assembly, path in files:
            bar.update(task, description=f"reading {assembly}")

            def advance(n: int, base: int = done) -> None:
                bar.update(task, completed=base + n)

            for record in read_fasta(path, on_progress=advance):
                if (assembly, record.name) in origin:
                    raise ValueError(f"assembly {assembly!r}: contig {record.name!r} appears in both "
                                     f"{origin[assembly, record.name]} and {path}")
                origin[assembly, record.name] = path
                tokens, softmask = encode_with_softmask(record.sequence)
                contigs.append(Contig(assembly, record.name, str(path), tokens, softmask))
            done += Path(path).stat().st_size
    return contigs


class EpochSampler(Sampler[int]):
    """Yields the keys epoch * n ... epoch * n + n - 1 of the current epoch."""

    def __init__(self, num_samples: int) -> None:
        self.num_samples, self.epoch = num_samples, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.epoch * self.num_samples, (self.epoch + 1) * self.num_samples))

    def __len__(self) -> int:
        return self.num_samples


class RandomWindowDataset(Dataset):
    """Map-style training windows: item `key` is drawn from a generator seeded by (seed, key)."""

    def __init__(self, contigs: Sequence[Contig], sampler: TrainWindowSampler, num_samples: int,
                 add_special: bool = True, seed: int = 0) -> None:
        self.contigs, self.sampler, self.num_samples = contigs, sampler, num_samples
        self.add_special, self.seed = add_special, seed

    def __len__(self) -> int:
        return self.num_samples

    def window(self, key: int) -> WindowRef:
        return self.sampler.draw(np.random.default_rng([self.seed, key]))

    def __getitem__(self, key: int) -> dict[str, Any]:
        ref, length = self.window(key), self.sampler.window_length
        ids, softmask = window_arrays(self.contigs, ref, length, self.add_special)
        return {"input_ids": ids, "softmask": softmask, "key": key}


class FixedWindowDataset(Dataset):
    """A fixed list of windows (validation, test)."""

    def __init__(self, contigs: Sequence[Contig], refs: Sequence[WindowRef], window_length: int,
                 add_special: bool = True) -> None:
        self.contigs, self.refs = contigs, refs
        self.window_length, self.add_special = window_length, add_special

    def __len__(self) -> int:
        return len(self.refs)

    def __getitem__(self, index: int) -> dict[str, Any]:
        ids, softmask = window_arrays(self.contigs, self.refs[index], self.window_length, self.add_special)
        return {"input_ids": ids, "softmask": softmask, "key": index}


class FastaWindowDataModule(LightningDataModule):
    """MLM batches of windows cut from FASTA assemblies (default: the four embedded Arabidopsis ones).

    `window_length` counts bases; with `add_special_tokens` each row has window_length + 2 tokens.
    Batches: input_ids (B, L) long, attention_mask (B, L) bool, labels (B, L) long (-100 where no
    loss), softmask (B, L) bool.
    """

    def __init__(self, fasta: FastaSpec = None, window_length: int = 1024, batch_size: int = 8,
                 num_workers: int = 0, max_n_fraction: float = 0.02, rc_prob: float = 0.3,
                 mlm_probability: float = 0.15, mask_token_fraction: float = 0.8,
                 random_token_fraction: float = 0.1, val_region: RegionSpec = None,
                 test_region: RegionSpec = None, val_fraction: float = 0.025, test_fraction: float = 0.025,
                 train_windows_per_epoch: int = 2048, val_windows: int = 64, test_windows: int = 64,
                 species_sampling: str = "uniform", seed: int = 0, add_special_tokens: bool = True,
                 pad_to_multiple_of: int | None = None, pin_memory: bool = False,
                 progress: bool = True) -> None:
        super().__init__()
        self.save_hyperparameters(logger=False)
        if window_length < 1 or batch_size < 1 or train_windows_per_epoch < 1:
            raise ValueError("window_length, batch_size and train_windows_per_epoch must be positive; got "
                             f"{window_length}, {batch_size}, {train_windows_per_epoch}")
        if not 0 <= rc_prob <= 1 or not 0 <= max_n_fraction <= 1:
            raise ValueError(f"rc_prob and max_n_fraction must be in [0, 1]; got {rc_prob}, {max_n_fraction}")
        self.fasta = fasta
        self.window_length = window_length
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.max_n_fraction = max_n_fraction
        self.rc_prob = rc_prob
        self.species_sampling = species_sampling
        self.val_region, self.test_region = _plain(val_region), _plain(test_region)
        self.val_fraction, self.test_fraction = val_fraction, test_fraction
        self.train_windows_per_epoch = train_windows_per_epoch
        self.val_windows, self.test_windows = val_windows, test_windows
        self.seed = seed
        self.add_special = add_special_tokens
        self.pin_memory = pin_memory
        self.progress = progress
        rates = (mlm_probability, mask_token_fraction, random_token_fraction, pad_to_multiple_of)
        self.collators = {  # one mask stream per split, all derived from `seed`
            split: MLMCollator(*rates, seed=int(np.random.SeedSequence([seed, stream]).generate_state(1)[0]))
            for stream, split in enumerate(("train", "val", "test"))
        }
        self.contigs: list[Contig] | None = None
        self._unigram: torch.Tensor | None = None

    def setup(self, stage: str | None = None) -> None:
        """Load the genomes once and build the splits and the windows of every stage."""
        if self.contigs is not None:
            return
        contigs = load_genome(_normalise_fasta(_plain(self.fasta)), self.progress)
        self.splits = split_regions(contigs, self.val_fraction, self.test_fraction, self.val_region,
                                    self.test_region)
        self.train_sampler = TrainWindowSampler(contigs, self.splits["train"], self.window_length,
                                                self.max_n_fraction, self.rc_prob, self.species_sampling)
        self.held_out: dict[str, list[WindowRef]] = {}
        self.n_dropped: dict[str, int] = {}
        for split, limit in (("val", self.val_windows), ("test", self.test_windows)):
            refs, dropped = tile_windows(contigs, self.splits[split], self.window_length,
                                         self.max_n_fraction, limit)
            if not refs:
                regions = [f"{contigs[r.contig].assembly}:{contigs[r.contig].name}:{r.start}-{r.end} "
                           f"({r.length} bp)" for r in self.splits[split]]
                raise ValueError(f"no {split} window of {self.window_length} bp with at most "
                                 f"{self.max_n_fraction:.1%} N in the held-out regions {regions} "
                                 f"({dropped} dropped for N); enlarge {split}_fraction/{split}_region "
                                 "or shorten window_length")
            self.held_out[split], self.n_dropped[split] = refs, dropped
        self.contigs = contigs
        log.info("FASTA windows: %d contigs, %d bp; train %d bp, val %d windows, test %d windows",
                 len(contigs), sum(len(c) for c in contigs), sum(r.length for r in self.splits["train"]),
                 len(self.held_out["val"]), len(self.held_out["test"]))

    def _loader(self, dataset: Dataset, split: str, sampler: Sampler | None = None) -> DataLoader:
        return DataLoader(dataset, batch_size=self.batch_size, sampler=sampler, shuffle=False,
                          num_workers=self.num_workers, collate_fn=self.collators[split],
                          pin_memory=self.pin_memory, persistent_workers=self.num_workers > 0)

    def train_dataloader(self) -> DataLoader:
        if self.contigs is None:
            self.setup()
        dataset = RandomWindowDataset(self.contigs, self.train_sampler, self.train_windows_per_epoch,
                                      self.add_special, self.seed)
        return self._loader(dataset, "train", EpochSampler(self.train_windows_per_epoch))

    def val_dataloader(self) -> DataLoader:
        return self._held_out_loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._held_out_loader("test")

    def _held_out_loader(self, split: str) -> DataLoader:
        if self.contigs is None:
            self.setup()
        dataset = FixedWindowDataset(self.contigs, self.held_out[split], self.window_length, self.add_special)
        return self._loader(dataset, split)

    def unigram_frequencies(self) -> torch.Tensor:
        """Frequencies of A, C, G, T (in that order, float64, sum 1) over the training regions."""
        if self._unigram is None:
            if self.contigs is None:
                self.setup()
            acgt = np.zeros(len(NUCLEOTIDE_IDS), dtype=np.float64)
            for region in self.splits["train"]:
                tokens = self.contigs[region.contig].tokens[region.start : region.end]
                acgt += [np.count_nonzero(tokens == token_id) for token_id in NUCLEOTIDE_IDS]
            self._unigram = torch.from_numpy(acgt / acgt.sum())
        return self._unigram


def _plain(value: Any) -> Any:
    """OmegaConf containers (from Hydra) to plain dicts and lists; other values unchanged."""
    if isinstance(value, str | Path) or value is None:
        return value
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, Sequence):
        return [_plain(v) for v in value]
    return value
