"""`plantbimoe-shards plan`: the species mix of a training stream, from the index alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from datamodules.shards.cli import main
from datamodules.shards.composition import species_per_span
from datamodules.shards.index import ShardIndex


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
