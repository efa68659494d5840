"""`plantbimoe-shards plan`: the species mix of a training stream, from the index alone, and the
bases of one species it reads per split of the annotation benchmark's blocks."""

from __future__ import annotations

from pathlib import Path

import pytest

from datamodules.annotation.regions import BlockSplit
from datamodules.shards.cli import main
from datamodules.shards.composition import species_per_span
from datamodules.shards.index import ShardIndex
from datamodules.shards.overlap import bases_by_split, merge, windows_read


def test_spans_count_every_window_of_the_steps_and_interleaving_mixes_species(built: tuple) -> None:
    out, _ = built
    index = ShardIndex.load(str(out))
    windows = sum(s.windows for s in index.shards("train"))
    steps = windows // 2  # batches of 2: the whole first epoch
    one = species_per_span(index, 2, steps, seed=3, interleave=1, span=1)
    mixed = species_per_span(index, 2, steps, seed=3, interleave=16, span=steps)
    assert sum(sum(c.values()) for c in one) == sum(mixed[0].values()) == 2 * steps
    assert len(mixed[0]) == len(index.species) >= 2  # every species in the one span
    # one shard at a time: a step's two windows come from one species, bar the steps that cross a shard
    assert sum(len(c) == 1 for c in one) >= steps - len(index.shards("train"))


def test_plan_command_prints_a_table_and_refuses_bad_numbers(
    built: tuple, capsys: pytest.CaptureFixture
) -> None:
    out, _ = built
    assert main(["plan", str(out), "--batch-size", "2", "--steps", "6", "--seed", "1", "--span", "3"]) == 0
    table = capsys.readouterr().out
    assert table.startswith("| steps |") and "| 0-2 |" in table and "| 3-5 |" in table
    assert main(["plan", str(out), "--batch-size", "0", "--steps", "6", "--seed", "1"]) == 2
    assert "batch size, steps and span must be positive" in capsys.readouterr().err


def test_plan_of_a_missing_folder_names_it(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["plan", str(tmp_path / "nowhere"), "--batch-size", "2", "--steps", "6", "--seed", "1"]) == 2
    assert "nowhere" in capsys.readouterr().err


def test_bases_by_split_cuts_intervals_at_block_edges_and_counts_overlaps_once() -> None:
    blocks = BlockSplit(block_size=100, cycle=4, val_slot=1, test_slot=3)  # blocks 1, 5.. val; 3, 7.. test
    intervals = [("c1", 50, 180), ("c1", 150, 210), ("c1", 320, 330), ("c2", 90, 110)]
    assert merge(intervals) == {"c1": [(50, 210), (320, 330)], "c2": [(90, 110)]}
    # c1: 50-100 train, 100-200 val, 200-210 train, 320-330 test; c2: 90-100 train, 100-110 val
    assert bases_by_split(intervals, blocks) == {"train": 70, "val": 110, "test": 10}


def test_windows_read_of_a_whole_epoch_are_all_windows_and_fewer_steps_read_fewer(built: tuple) -> None:
    out, _ = built
    index = ShardIndex.load(str(out))
    windows = sum(s.windows for s in index.shards("train"))
    read, every = windows_read(index, 2, windows // 2, seed=3, interleave=16, species="sp_a")
    assert sorted(read) == sorted(every) and {contig for contig, _, _ in every} == {"a1"}
    some, _ = windows_read(index, 2, 3, seed=3, interleave=16, species="sp_a")
    assert len(some) < len(every) and set(some) <= set(every)
    with pytest.raises(ValueError, match="'sp_z' has no training shards"):
        windows_read(index, 2, 3, seed=3, interleave=16, species="sp_z")


def test_plan_command_prints_the_overlap_with_the_benchmark_blocks(
    built: tuple, capsys: pytest.CaptureFixture
) -> None:
    out, _ = built
    args = ["plan", str(out), "--batch-size", "2", "--steps", "6", "--seed", "1", "--overlap"]
    assert main([*args, "sp_b"]) == 0
    text = capsys.readouterr().out
    assert "sp_b: " in text and "training windows read in the first 6 steps" in text
    assert "| test | 0 | 0 | 0% |" in text  # the toy contigs are shorter than one 1-Mb block (train)
    assert main([*args, "sp_z"]) == 2
    assert "'sp_z' has no training shards" in capsys.readouterr().err
