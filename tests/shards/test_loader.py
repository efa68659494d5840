"""The shard datasets: rank x worker splitting, epochs, resampling, augmentation, crops, URLs."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from datamodules.masking import MLMCollator
from datamodules.shards.curriculum import SequenceLengthCurriculum
from datamodules.shards.datamodule import EpochLoader
from datamodules.shards.dataset import ShardWindowDataset, decode_window, read_shard
from datamodules.shards.index import ShardIndex
from datamodules.shards.stream import Ref, read_refs
from plantbimoe.tokenizer import add_special_tokens, encode_with_softmask, reverse_complement
from tests.shards.conftest import WINDOW


def _keys(samples: list[dict]) -> dict[str, torch.Tensor]:
    return {"keys": torch.tensor([s["key"] for s in samples]),
            "length": torch.tensor(len(samples[0]["input_ids"]))}


def _dataset(out: Path, split: str = "train", **kwargs) -> ShardWindowDataset:
    index = ShardIndex.load(str(out))
    options = {"batch_size": 4, "collator": _keys, "seed": 5, **kwargs}
    return ShardWindowDataset(index.shards(split), index.window_length, training=split == "train", **options)


def _epoch_ids(out: Path, rank: int, epoch: int, workers: int = 2) -> list[int]:
    dataset = _dataset(out)
    dataset.set_topology(rank, 2, workers)
    loader = EpochLoader(dataset, lambda: epoch, num_workers=workers)
    batches = list(loader)
    assert len(batches) == len(loader)
    return [int(k) - epoch * dataset.total for b in batches for k in b["keys"]]


def test_two_ranks_times_two_workers_see_disjoint_windows_covering_the_epoch(built: tuple) -> None:
    out, index = built
    total = index["splits"]["train"]["windows"]
    per_rank = [_epoch_ids(out, rank, epoch=0) for rank in (0, 1)]
    assert len(per_rank[0]) == len(per_rank[1]) == 2 * (total // 4)  # equal work keeps DDP in step
    seen = per_rank[0] + per_rank[1]
    assert len(seen) == len(set(seen)) == 4 * (total // 4)  # disjoint; only the remainder < 4 is left out
    assert set(seen) <= set(range(total))
    next_epoch = _epoch_ids(out, 0, epoch=1)
    assert next_epoch != per_rank[0]  # shard order and shuffle change every epoch


def test_resampled_stream_follows_species_weights(built: tuple) -> None:
    out, _ = built
    dataset = _dataset(out, resampled=True, windows_per_epoch=400,
                       species_weights={"sp_a": 1.0, "sp_b": 3.0})
    keys = [int(k) for batch in dataset for k in batch["keys"]]
    assert len(keys) == len(set(keys)) == 400
    species = Counter(json.loads(raw["json"])["species"] for raw in _resampled_windows(dataset))
    assert 0.65 < species["sp_b"] / 400 < 0.85  # weight 3:1, while sp_b has fewer windows than sp_a


def _raw(dataset: ShardWindowDataset, refs: list[Ref]) -> list[tuple[int, dict]]:
    return [(ref.key, raw) for ref, raw in read_refs(refs, dataset.shards, read_shard)]


def _resampled_windows(dataset: ShardWindowDataset) -> list[dict]:
    return [raw for _, raw in _raw(dataset, dataset._resampled(0, 0))]


def test_validation_is_deterministic_and_spread(built: tuple) -> None:
    out, index = built
    collator = MLMCollator(seed=11)
    dataset = _dataset(out, "val", collator=collator, max_windows=10, rc_prob=1.0)
    first, second = list(dataset), list(dataset)
    assert sum(b["input_ids"].shape[0] for b in first) == 10
    for a, b in zip(first, second, strict=True):
        assert all(torch.equal(a[k], b[k]) for k in a)
    dataset.set_topology(0, 1, 0)
    ids = _dataset(out, "val", max_windows=10).held_out_ids()
    assert ids[0] == 0 and ids[-1] == index["splits"]["val"]["windows"] - 1


def test_training_windows_are_crops_and_reverse_complements_of_the_source(built: tuple,
                                                                          genomes: dict) -> None:
    out, _ = built
    sources = {**genomes["sp_a"], **genomes["sp_b"]}
    dataset = _dataset(out, rc_prob=0.5, crop_length=40, shuffle_buffer=0)
    flips = 0
    for key, raw in _raw(dataset, list(dataset.epoch_plan(0, 0))[:40]):
        sample = dataset._sample(key, raw, 40)
        meta = json.loads(raw["json"])
        ids, soft = encode_with_softmask(sources[meta["contig"]][meta["start"]:meta["end"]])
        candidates = []
        for offset in range(WINDOW - 40 + 1):
            forward = (ids[offset:offset + 40], soft[offset:offset + 40])
            candidates += [forward, (reverse_complement(forward[0]), forward[1][::-1])]
        matches = [i for i, (t, s) in enumerate(candidates)
                   if np.array_equal(add_special_tokens(t), sample["input_ids"])
                   and np.array_equal(np.pad(s, 1), sample["softmask"])]
        assert matches, meta
        flips += all(m % 2 for m in matches)
    assert 5 < flips < 35


def test_crop_length_reaches_running_workers_and_curriculum_schedule(built: tuple) -> None:
    out, _ = built
    dataset = _dataset(out, crop_length=32)
    loader = EpochLoader(dataset, lambda: 0, num_workers=1, persistent_workers=True)
    lengths = []
    for i, batch in enumerate(loader):
        lengths.append(int(batch["length"]))
        if i == 0:
            dataset.set_crop_length(48)
    assert lengths[0] == 34 and lengths[-1] == 50  # +2 for [CLS]/[SEP]
    with pytest.raises(ValueError, match="crop length"):
        dataset.set_crop_length(WINDOW + 1)
    schedule = SequenceLengthCurriculum([[100, 64], [0, 16], [50, 32]])
    assert [schedule.length_at(s) for s in (0, 49, 50, 99, 100, 10_000)] == [16, 16, 32, 32, 64, 64]


def test_pipe_and_fsspec_locations_read_the_same_windows(built: tuple) -> None:
    fsspec = pytest.importorskip("fsspec")
    out, _ = built
    memory = fsspec.filesystem("memory")
    for path in out.rglob("*"):
        if path.is_file() and ".build" not in path.parts:
            memory.pipe(f"/toycorpus/{path.relative_to(out)}", path.read_bytes())
    plain = _dataset(out, shuffle_buffer=0)
    reference = [decode_window(raw)[0].tobytes() for _, raw in _raw(plain, plain.epoch_plan(0, 0))]
    for location in ("memory://toycorpus", f"pipe:cat {out}/{{path}}"):
        index = ShardIndex.load(location)
        dataset = ShardWindowDataset(index.shards("train"), index.window_length, 4, _keys, seed=5)
        windows = _raw(dataset, dataset.epoch_plan(0, 0))
        assert [decode_window(raw)[0].tobytes() for _, raw in windows] == reference
    shutil.rmtree(out / "missing", ignore_errors=True)
    with pytest.raises(FileNotFoundError, match="no shard index"):
        ShardIndex.load(str(out / "missing"))
