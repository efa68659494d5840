"""Token stores: read once, then mapped; keyed by the file's bytes and the reading options; nothing
half-written; a read-only dataset folder sends the store to the cache folder."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest

import datamodules.mpgb.parsing as parsing
import datamodules.mpgb.readers as readers
from datamodules.mpgb.readers import DatasetFormatError, read_dataset
from datamodules.mpgb.store import STORE_DIR
from plantbimoe.tokenizer import decode
from tests.finetune.helpers import random_sequences, write_fasta

ROWS = [(s, str(i % 2)) for i, s in enumerate(random_sequences(np.random.default_rng(0), 40, 5, 120))]


def _texts(data) -> list[str]:
    return [decode(data.sequence(i)) for i in range(len(data))]


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The files actually parsed (not served from a store)."""
    parsed: list[Path] = []
    fill = readers._fill

    def counted(writer: object, path: Path, options: dict) -> int:
        parsed.append(path)
        return fill(writer, path, options)

    monkeypatch.setattr(readers, "_fill", counted)
    return parsed


def _stores(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []


def test_second_read_maps_the_store(tmp_path: Path, reads: list[Path]) -> None:
    path = write_fasta(tmp_path / "a.fa", ROWS)
    first = read_dataset(path, "fasta", "binary", 2)
    again = read_dataset(path, "fasta", "binary", 2)
    assert len(reads) == 1 and _texts(first) == _texts(again) == [s.upper() for s, _ in ROWS]
    assert again.store is not None and not again.tokens.flags.writeable  # mapped read-only
    assert again.labels.tolist() == [int(label) for _, label in ROWS]
    read_dataset(path, "fasta", "binary", 2, max_length=50)  # other options: another store
    assert len(reads) == 2 and len(_stores(tmp_path / STORE_DIR)) == 2


def test_changed_bytes_rebuild_and_a_touch_does_not(tmp_path: Path, reads: list[Path]) -> None:
    path = write_fasta(tmp_path / "a.fa", ROWS)
    read_dataset(path, "fasta", "binary", 2)
    os.utime(path, ns=(1, 1))  # same bytes, new modification time: the checksum decides
    read_dataset(path, "fasta", "binary", 2)
    assert len(reads) == 1
    write_fasta(path, ROWS[:5])
    assert len(read_dataset(path, "fasta", "binary", 2)) == 5
    assert len(reads) == 2 and len(_stores(tmp_path / STORE_DIR)) == 1  # the old version's store is gone


def test_a_failed_read_leaves_nothing(tmp_path: Path) -> None:
    path = write_fasta(tmp_path / "bad.fa", [*ROWS, ("ACGT", "5")])
    with pytest.raises(DatasetFormatError, match=r"record 41 \('seq40', header at line 81\): label '5'"):
        read_dataset(path, "fasta", "binary", 2)
    assert list((tmp_path / STORE_DIR).iterdir()) == []


def test_a_damaged_store_is_rebuilt(tmp_path: Path, reads: list[Path]) -> None:
    path = write_fasta(tmp_path / "a.fa", ROWS)
    read_dataset(path, "fasta", "binary", 2)
    tokens = _stores(tmp_path / STORE_DIR)[0] / "tokens.u8"
    tokens.write_bytes(tokens.read_bytes()[:-3])
    assert _texts(read_dataset(path, "fasta", "binary", 2)) == [s.upper() for s, _ in ROWS]
    assert len(reads) == 2


def test_unwritable_dataset_folder_uses_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_fasta(tmp_path / "a.fa", ROWS)
    (tmp_path / STORE_DIR).write_text("not a folder")  # stands in for a read-only folder (tests run as root)
    monkeypatch.setenv("PLANTBIMOE_CACHE", str(tmp_path / "cache"))
    data = read_dataset(path, "fasta", "binary", 2)
    assert len(_stores(tmp_path / "cache" / "mpgb")) == 1 and len(data) == len(ROWS)
    own = tmp_path / "own"
    read_dataset(path, "fasta", "binary", 2, cache_dir=own)
    assert len(_stores(own)) == 1


def test_chunk_boundaries_do_not_change_the_result(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "wrapped.fa"
    text = "".join(f">r{i}|{label}\r\n{s[:30]}\r\n{s[30:]}\r\n\r\n" for i, (s, label) in enumerate(ROWS))
    path.write_text("\n\n" + text.replace(">r7|", ">r3|"))  # leading blank lines, a repeated header
    whole = read_dataset(path, "fasta", "binary", 2, cache_dir=tmp_path / "one")
    monkeypatch.setattr(parsing, "BLOCK_SIZE", 7)
    monkeypatch.setattr(parsing, "CHUNK_ROWS", 3)
    pieces = read_dataset(path, "fasta", "binary", 2, cache_dir=tmp_path / "two")
    assert _texts(whole) == _texts(pieces) == [s.upper() for s, _ in ROWS]
    assert whole.labels.tolist() == pieces.labels.tolist()


def test_views_pickle_as_the_store_path(tmp_path: Path) -> None:
    data = read_dataset(write_fasta(tmp_path / "a.fa", ROWS), "fasta", "binary", 2)
    view = data.subset(np.array([5, 2, 9]))
    blob = pickle.dumps(view)
    assert len(blob) < 1000
    back = pickle.loads(blob)
    assert _texts(back) == _texts(view) == [ROWS[i][0].upper() for i in (5, 2, 9)]
    assert decode(view.tokens[view.offsets[1] : view.offsets[2]]) == ROWS[2][0].upper()
    assert back.labels.tolist() == [1, 0, 1]
