"""A genome of one chromosome still gets validation and test data (positional blocks), and a split
that stays empty is named with its corpus and the option that changes it."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from datamodules.shards.builder import build_shards
from datamodules.shards.datamodule import ShardDataModule
from datamodules.shards.manifest import parse_manifest
from datamodules.shards.splits import HeldOutBlocks
from datamodules.shards.unit import BuildParams
from tests.shards.conftest import WINDOW, random_contig, shard_windows, write_fasta

PARAMS = BuildParams(window_length=WINDOW, overlap=8, shard_size=8192, val_fraction=0.05, test_fraction=0.05,
                     min_holdout_length=0)


def _build(tmp_path: Path, length: int) -> tuple[Path, dict]:
    rng = np.random.default_rng(5)
    write_fasta(tmp_path / "one.fa", {"chr1": random_contig(rng, length)})
    manifest = parse_manifest({"corpus": "solo", "root": str(tmp_path),
                               "species": [{"name": "sp", "fasta": "one.fa"}]})
    out = tmp_path / "shards"
    return out, build_shards(manifest, out, PARAMS, processes=1, progress=False)


def test_one_chromosome_holds_out_positional_blocks(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        out, index = _build(tmp_path, 20_000)
    assert "held out by position instead: contig 'chr1' of species 'sp' in blocks of" in caplog.text
    record = index["species"]["sp"]["held_out_blocks"]
    assert record["contig"] == "chr1" and record["crossing_windows_dropped"] > 0
    assert index["species"]["sp"]["contigs"]["chr1"][1] == "blocks"
    spans = {split: [(m["start"], m["end"]) for m, _, _ in shard_windows(out, index, split)]
             for split in ("train", "val", "test")}
    assert all(spans[split] for split in spans)
    blocks = HeldOutBlocks(**{k: record[k] for k in ("species", "contig", "size", "cycle", "val_slot",
                                                       "test_slot")})
    for split, windows in spans.items():
        assert all(blocks.split_of(start, end) == split for start, end in windows)
    covered = {split: set().union(*(range(a, b) for a, b in spans[split])) for split in spans}
    assert not covered["train"] & covered["val"] and not covered["train"] & covered["test"]
    assert not covered["val"] & covered["test"]
    held = len(spans["val"]) / sum(len(w) for w in spans.values())
    assert 0.02 < held < 0.1  # about val_fraction


def test_a_split_left_empty_is_named_with_corpus_and_option(tmp_path: Path,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        out, index = _build(tmp_path, 200)  # too short even for blocks
    assert index["splits"]["val"]["windows"] == 0
    assert "split 'val' of corpus 'solo'" in caplog.text
    datamodule = ShardDataModule(str(out), window_length=WINDOW, progress=False)
    with pytest.raises(ValueError, match=r"split 'test' of corpus 'solo' .* raise build.test_fraction"):
        datamodule.test_dataloader()
