"""FASTA -> shards: window arithmetic, round trip, N filter, splits, index, parallel build."""

from __future__ import annotations

import filecmp
import tarfile
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from datamodules.shards.builder import build_shards
from datamodules.shards.manifest import parse_manifest
from datamodules.shards.splits import assign_splits
from datamodules.shards.streaming import stream_windows, window_starts
from plantbimoe.tokenizer import N_ID, encode_with_softmask
from tests.shards.conftest import OVERLAP, SMALL, WINDOW, manifest_for, shard_windows


def test_window_starts_overlap_and_end_alignment() -> None:
    assert window_starts(63, 64, 8).tolist() == []
    assert window_starts(64, 64, 8).tolist() == [0]
    assert window_starts(120, 64, 8).tolist() == [0, 56]  # stride 56, last window ends at 120
    assert window_starts(130, 64, 8).tolist() == [0, 56, 66]  # end-aligned extra window
    starts = window_starts(10_000, 1000, 100)
    assert np.all(np.diff(starts)[:-1] == 900) and starts[-1] + 1000 == 10_000


def test_streaming_bounded_chunks_equal_whole_contig(genomes: dict) -> None:
    path = str(Path(genomes["root"]) / "sp_a.fa.gz")
    lengths = {name: len(seq) for name, seq in genomes["sp_a"].items()}
    whole = list(stream_windows(path, lengths, WINDOW, OVERLAP))
    chunked = list(stream_windows(path, lengths, WINDOW, OVERLAP, chunk_size=37))
    assert [(w.contig, w.start) for w in whole] == [(w.contig, w.start) for w in chunked]
    assert all(np.array_equal(a.tokens, b.tokens) and np.array_equal(a.softmask, b.softmask)
               for a, b in zip(whole, chunked, strict=True))


def test_round_trip_windows_equal_source_at_recorded_coordinates(built: tuple, genomes: dict) -> None:
    out, index = built
    sources = {**genomes["sp_a"], **genomes["sp_b"]}
    seen = 0
    for split in ("train", "val", "test"):
        for meta, tokens, softmask in shard_windows(out, index, split):
            source = sources[meta["contig"]][meta["start"]:meta["end"]]
            expected_ids, expected_soft = encode_with_softmask(source)
            assert meta["end"] - meta["start"] == WINDOW
            assert np.array_equal(tokens, expected_ids) and np.array_equal(softmask, expected_soft)
            seen += 1
    assert seen == sum(index["splits"][s]["windows"] for s in ("train", "val", "test"))


def test_n_filter_and_counts_match_an_independent_count(built: tuple, genomes: dict) -> None:
    out, index = built
    split_of = {"a1": "train", "a2": "test", "b1": "train", "b2": "val"}
    expected = {s: {"windows": 0, "dropped": 0} for s in ("train", "val", "test")}
    for contig, split in split_of.items():
        seq = {**genomes["sp_a"], **genomes["sp_b"]}[contig]
        ids, _ = encode_with_softmask(seq)
        for start in window_starts(len(seq), WINDOW, OVERLAP):
            too_many_n = np.count_nonzero(ids[start:start + WINDOW] == N_ID) > 0.02 * WINDOW
            expected[split]["dropped" if too_many_n else "windows"] += 1
    for split, counts in expected.items():
        assert index["splits"][split]["windows"] == counts["windows"]
        assert index["splits"][split]["dropped_n_windows"] == counts["dropped"]
        assert index["splits"][split]["window_bases"] == counts["windows"] * WINDOW
    assert expected["test"]["dropped"] > 0  # a2 has many N runs
    assert index["species"]["sp_a"]["short_contigs"] == {"count": 1, "bases": 40}
    assert index["parameters"]["window_length"] == WINDOW


def test_splits_hold_no_contig_twice(built: tuple) -> None:
    out, index = built
    contigs = {split: {(m["species"], m["contig"]) for m, _, _ in shard_windows(out, index, split)}
               for split in ("train", "val", "test")}
    assert contigs["val"] == {("sp_b", "b2")} and contigs["test"] == {("sp_a", "a2")}
    assert not (contigs["train"] & contigs["val"]) and not (contigs["train"] & contigs["test"])


def test_default_holdout_is_chromosome_level_within_target() -> None:
    rng = np.random.default_rng(0)
    contigs = {f"sp{i}": {f"chr{j}": int(rng.integers(2_000_000, 60_000_000)) for j in range(8)}
               | {"scaffold1": 50_000, "chloroplast": 150_000} for i in range(10)}
    splits = assign_splits(contigs, val_fraction=0.025, test_fraction=0.025, seed=1)
    total = sum(sum(c.values()) for c in contigs.values())
    for split in ("val", "test"):
        held = [(s, c) for s, m in splits.items() for c, v in m.items() if v == split]
        assert held and all(c.startswith("chr") for _, c in held)
        assert sum(contigs[s][c] for s, c in held) <= 0.025 * total
    assert all("train" in m.values() for m in splits.values())
    assert splits == assign_splits(contigs, val_fraction=0.025, test_fraction=0.025, seed=1)


def test_shards_are_webdataset_tars_below_the_size_limit(built: tuple) -> None:
    out, index = built
    for shard in index["splits"]["train"]["shards"]:
        path = out / shard["path"]
        with tarfile.open(path) as archive:
            names = archive.getnames()
        assert len(names) == 3 * shard["windows"]
        assert {n.split(".", 1)[1] for n in names} == {"json", "softmask", "tokens"}
        assert path.stat().st_size <= SMALL.shard_size + 10240
    assert len(index["splits"]["train"]["shards"]) > 1


def test_two_processes_build_the_same_shards(built: tuple, genomes: dict, tmp_path: Path) -> None:
    out, index = built
    manifest = parse_manifest(manifest_for(genomes, sp_a={"test": ["a2"]}, sp_b={"val": ["b2"]}))
    parallel = build_shards(manifest, tmp_path / "p", SMALL, processes=2, progress=False)
    assert parallel["splits"] == index["splits"]
    for split in ("train", "val", "test"):
        for shard in index["splits"][split]["shards"]:
            assert filecmp.cmp(out / shard["path"], tmp_path / "p" / shard["path"], shallow=False)


def test_same_folder_with_other_parameters_is_refused(built: tuple, genomes: dict) -> None:
    out, _ = built
    manifest = parse_manifest(manifest_for(genomes, sp_a={"test": ["a2"]}, sp_b={"val": ["b2"]}))
    other = SMALL.__class__(**{**SMALL.to_dict(), "overlap": 16})
    with pytest.raises(ValueError, match="another build.*overlap"):
        build_shards(manifest, out, other, processes=1, progress=False)


def test_streaming_memory_stays_bounded_on_a_long_contig(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    length = 64_000_000
    path = tmp_path / "long.fa"
    with open(path, "wb") as f:
        f.write(b">chr1\n")
        for _ in range(length // 1_000_000):
            f.write(rng.choice(np.frombuffer(b"ACGTacgt", dtype=np.uint8), 1_000_000).tobytes() + b"\n")
    tracemalloc.start()
    windows = 0
    for window in stream_windows(str(path), {"chr1": length}, 32768, 128, chunk_size=1 << 20):
        windows += window.end > window.start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert windows == len(window_starts(length, 32768, 128))
    # bounded by the reader's 4 MiB blocks and the 1 MiB chunks, not by the contig: held whole,
    # its tokens and soft-mask flags alone would take 128 MB
    assert peak < 40 * 2**20
