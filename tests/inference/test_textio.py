"""Damaged gzip input: every line before the damage is read, then the error names the file and
the last complete line (not the first line of the buffer the damage fell in)."""

from __future__ import annotations

import gzip
import random
from pathlib import Path

import pytest

from datamodules.fasta import FastaFormatError, read_fasta
from plantbimoe.inference.sequences import read_sequences
from plantbimoe.textio import GzipDataError, open_text


def _cut(path: Path, text: str) -> Path:
    data = gzip.compress(text.encode())
    path.write_bytes(data[: len(data) // 2])
    return path


def test_truncated_gzip_csv_reports_the_last_complete_line(tmp_path: Path) -> None:
    rng = random.Random(1)
    rows = "".join("".join(rng.choices("ACGT", k=100)) + ",1\n" for _ in range(400))
    path = _cut(tmp_path / "t.csv.gz", "sequence,label\n" + rows)
    read = 0
    with pytest.raises(GzipDataError) as error:
        for _ in read_sequences(path):
            read += 1
    assert read > 150  # everything before the damage was read
    assert f"{path}: the file ends inside a gzip member (truncated) after line {read + 1}" in str(error.value)


def test_truncated_gzip_fasta_names_the_line_and_multi_member_files_read_whole(tmp_path: Path) -> None:
    rng = random.Random(2)
    lines = ["".join(rng.choices("ACGT", k=60)) for _ in range(400)]
    path = _cut(tmp_path / "t.fa.gz", ">r1\n" + "\n".join(lines) + "\n")
    with open_text(path) as handle:
        complete = 0
        with pytest.raises(GzipDataError):
            for line in handle:
                complete += line.endswith("\n")
    with pytest.raises(FastaFormatError, match=rf"after line {complete} \(the last complete line"):
        list(read_fasta(path))
    members = tmp_path / "bgzip_like.fa.gz"
    members.write_bytes(gzip.compress(b">a\nACGT\n") + gzip.compress(b">b\nGGCC\n") + b"\0" * 8)
    assert [(r.name, r.sequence) for r in read_fasta(members)] == [("a", b"ACGT"), ("b", b"GGCC")]
