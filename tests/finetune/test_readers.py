"""Each MPGB format parses; bad input fails with the file and row named."""

from __future__ import annotations

import gzip
import logging
from pathlib import Path

import numpy as np
import pytest

from datamodules.mpgb.readers import DatasetFormatError, infer_label_count, read_dataset
from plantbimoe.tokenizer import decode
from tests.finetune.helpers import write_fasta, write_table

ROWS = [("ACGTN", "1"), ("ggcca", "0"), ("TTRA", "1")]


@pytest.mark.parametrize("fmt", ["fasta", "csv", "tsv"])
def test_each_format_parses(fmt: str, tmp_path: Path) -> None:
    path = tmp_path / f"train.{fmt}"
    if fmt == "fasta":
        write_fasta(path, ROWS)
    else:
        write_table(path, ROWS, "," if fmt == "csv" else "\t")
    data = read_dataset(path, fmt, "binary", 2)
    assert len(data) == 3
    assert [decode(data.sequence(i)) for i in range(3)] == ["ACGTN", "GGCCA", "TTNA"]
    assert data.labels.tolist() == [1, 0, 1]
    assert data.labels.dtype == np.int64


def test_gzip_csv_and_multilabel_forms(tmp_path: Path) -> None:
    path = tmp_path / "train.csv.gz"
    with gzip.open(path, "wt") as handle:
        handle.write("sequence,label\nACGT,0;1;1\nACGT,2\nACGT,0;2\n")
    data = read_dataset(path, "csv", "multilabel", 3)
    assert data.labels.tolist() == [[0, 1, 1], [0, 0, 1], [1, 0, 1]]
    path.write_bytes(gzip.compress(b"sequence,label\nACGT,0;1;1;0\n"))
    with pytest.raises(DatasetFormatError, match=r"line 2: .* 0/1 vector of 4 values, expected num_labels=3"):
        read_dataset(path, "csv", "multilabel", 3)


def test_multilabel_count_is_read_from_the_first_vector(tmp_path: Path) -> None:
    path = write_fasta(tmp_path / "v.fa", [("ACGT", "0;1;0;0"), ("ACGT", "1;1;0;0")])
    assert infer_label_count(path, "fasta") == 4
    indices = write_table(tmp_path / "i.csv", [("ACGT", "2")])
    with pytest.raises(DatasetFormatError, match=r"i.csv: line 2: .* is not a 0/1 vector.*set num_labels"):
        infer_label_count(indices, "csv")


def test_regression_and_multiclass(tmp_path: Path) -> None:
    reg = read_dataset(
        write_table(tmp_path / "r.tsv", [("ACGT", "0.5"), ("AC", "-1e-1")], "\t"), "tsv", "regression", 1
    )
    assert reg.labels.dtype == np.float32 and reg.labels.tolist() == pytest.approx([0.5, -0.1])
    multi = read_dataset(
        write_table(tmp_path / "m.csv", [("ACGT", "2"), ("AC", "0")]), "csv", "multiclass", 3
    )
    assert multi.labels.tolist() == [2, 0]


@pytest.mark.parametrize(
    ("content", "task", "num_labels", "match"),
    [
        ("seq,label\nACGT,1\n", "binary", 2, r"line 1: missing column\(s\) \['sequence'\]"),
        (
            "sequence,label\nACGT,1\nACGT,2\n",
            "binary",
            2,
            r"line 3: label '2' is outside the declared classes 0..1",
        ),
        (
            "sequence,label\nACGT,1.5\n",
            "multiclass",
            3,
            r"line 2: label '1.5' is outside the declared classes 0..2",
        ),
        (
            "sequence,label\nACGT,0.1\nACGT,nan\n",
            "regression",
            1,
            r"line 3: regression target 'nan' is not finite",
        ),
        ("sequence,label\nACGT,abc\n", "regression", 1, r"line 2: regression target 'abc' is not a number"),
        ("sequence,label\nACGT,1\n,0\n", "binary", 2, r"line 3: empty sequence"),
        ("sequence,label\nACGT,\n", "binary", 2, r"line 2: empty label"),
        ("sequence,label\nACXT,1\n", "binary", 2, r"line 2: invalid character 'X' at sequence position 3"),
        ("sequence,label\nACGT,1,extra\n", "binary", 2, r"line 2: 3 fields, the header has 2"),
        ("", "binary", 2, r"empty file"),
    ],
)
def test_bad_tables_name_file_and_row(
    content: str, task: str, num_labels: int, match: str, tmp_path: Path
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(DatasetFormatError, match=match) as info:
        read_dataset(path, "csv", task, num_labels)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    ("content", "task", "num_labels", "match"),
    [
        (">a|1\nACGT\n>b\nACGT\n", "binary", 2, r"record 2 \('b', header at line 3\): header has no '\|"),
        (">a|1\nACGT\n>b|7\nACGT\n", "binary", 2, r"record 2 \('b', header at line 3\): label '7' is out"),
        (">a|1\nAC\nGT\n\n>b|1\n>c|0\nAA\n", "binary", 2, r"record 2 \('b', header at line 5\): empty seq"),
        ("ACGT\n>a|1\nACGT\n", "binary", 2, r"line 1: sequence data before any '>' header"),
        ("\n\n", "binary", 2, r"no '>' header line found"),
        (">a|1\nACGT\n>b|1\nACXT\n", "binary", 2, r"record 2 .*invalid character 'X' at sequence position 3"),
        (">a|1|0\nACGT\n", "binary", 2, r"record 1 .*2 label fields '1\|0'; a binary task has one label"),
        (">a|0.5\nACGT\n>b|0.1|0.2\nAC\n", "regression", 1, r"record 2 .*2 label fields"),
        (">a|1|0|1\nACGT\n>b|1|0\nAC\n", "multilabel", 3, r"record 2 .*has 2 values, expected num_labels=3"),
        (">a|1|0|2\nACGT\n", "multilabel", 3, r"record 1 .*holds '2'; expected 0 or 1 values"),
    ],
)
def test_bad_fasta_names_record_and_line(
    content: str, task: str, num_labels: int, match: str, tmp_path: Path
) -> None:
    path = tmp_path / "bad.fa"
    path.write_text(content)
    with pytest.raises(DatasetFormatError, match=match) as info:
        read_dataset(path, "fasta", task, num_labels)
    assert str(path) in str(info.value)
    assert not list((tmp_path / ".mpgb_store").glob("*")), "a failed read leaves no store behind"


def test_truncated_gzip_names_file_and_last_line(tmp_path: Path) -> None:
    rows = [(f"{'ACGT' * 50}", str(i % 2)) for i in range(2000)]
    for fmt, writer in (("fasta", write_fasta), ("csv", write_table)):
        plain = writer(tmp_path / f"full.{fmt}", rows)
        packed = gzip.compress(plain.read_bytes())
        path = tmp_path / f"cut.{fmt}.gz"
        path.write_bytes(packed[: len(packed) // 2])
        with pytest.raises(DatasetFormatError, match=r"cut\.\w+\.gz: .*truncated.* line [1-9]\d+") as info:
            read_dataset(path, fmt, "binary", 2)
        assert str(path) in str(info.value)


def test_too_long_truncates_centre_with_count_or_refuses(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write_table(tmp_path / "long.csv", [("AAACCCGGG", "1"), ("ACG", "0"), ("TTTTGGGGCC", "0")])
    with caplog.at_level(logging.WARNING):
        data = read_dataset(path, "csv", "binary", 2, max_length=3)
    assert [decode(data.sequence(i)) for i in range(3)] == ["CCC", "ACG", "TGG"]
    assert "2 of 3 sequences longer than max_length=3 were truncated" in caplog.text
    with pytest.raises(DatasetFormatError, match=r"line 2: sequence of 9 bp is longer than max_length=3"):
        read_dataset(path, "csv", "binary", 2, max_length=3, too_long="error")


def test_missing_file_and_bad_options(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        read_dataset(tmp_path / "nope.csv", "csv", "binary", 2)
    path = write_table(tmp_path / "x.csv", ROWS)
    with pytest.raises(ValueError, match="unknown dataset format 'parquet'"):
        read_dataset(path, "parquet", "binary", 2)
    with pytest.raises(ValueError, match="a binary task has num_labels 2"):
        read_dataset(path, "csv", "binary", 3)
