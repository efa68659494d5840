"""Exact mid-epoch resume of the training stream: a loader restored from `state_dict` after k
batches yields exactly the batches an uninterrupted loader yields after its first k."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from datamodules.shards.datamodule import EpochLoader
from datamodules.shards.dataset import ShardWindowDataset
from datamodules.shards.index import ShardIndex
from datamodules.shards.stream import ShuffleOrder


def _collate(samples: list[dict]) -> dict[str, torch.Tensor]:
    return {"keys": torch.tensor([s["key"] for s in samples]),
            "ids": torch.stack([torch.from_numpy(s["input_ids"].astype("int64")) for s in samples])}


def _loader(out: Path, workers: int, **options) -> EpochLoader:
    index = ShardIndex.load(str(out))
    dataset = ShardWindowDataset(index.shards("train"), index.window_length, 3, _collate, seed=9,
                                 crop_length=40, rc_prob=0.5, shuffle_buffer=16, **options)
    dataset.set_topology(1, 2, workers)  # rank 1 of 2
    return EpochLoader(dataset, lambda: 1, num_workers=workers)


def test_shuffle_order_skips_to_the_same_tail() -> None:
    full = list(ShuffleOrder(200, 16, seed=3))
    assert sorted(full) == list(range(200)) and full != list(range(200))
    order = ShuffleOrder(200, 16, seed=3)
    buffered = order.skip(57)
    assert buffered <= set(full[57:]) and 0 < len(buffered) <= 16
    assert list(order) == full[57:]


@pytest.mark.parametrize(("workers", "options"), [
    (0, {}),
    (2, {}),
    (2, {"shard_interleave": 3}),
    (0, {"resampled": True, "windows_per_epoch": 120, "species_weights": {"sp_a": 1.0, "sp_b": 1.0}}),
])
def test_restored_loader_continues_the_uninterrupted_stream(built: tuple, workers: int,
                                                            options: dict) -> None:
    out, _ = built
    reference = list(_loader(out, workers, **options))
    assert len(reference) > 6
    first = _loader(out, workers, **options)
    stream = iter(first)
    for _ in range(5):
        next(stream)
    state = first.state_dict()
    assert state["epoch"] == 1 and state["batches"] == 5
    resumed = _loader(out, workers, **options)
    resumed.load_state_dict(state)
    rest = list(resumed)
    assert len(rest) == len(reference) - 5
    for ours, theirs in zip(rest, reference[5:], strict=True):
        assert torch.equal(ours["keys"], theirs["keys"]) and torch.equal(ours["ids"], theirs["ids"])
    assert len(list(resumed)) == len(reference)  # the next pass starts from the beginning again


def test_other_stream_parameters_restart_the_epoch_with_a_warning(built: tuple,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    out, _ = built
    loader = _loader(out, 0)
    state = {**loader.state_dict(), "batches": 4, "seed": 123}
    loader.load_state_dict(state)
    assert "differs in seed" in caplog.text
    assert len(list(loader)) == len(loader)
