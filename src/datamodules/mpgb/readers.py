"""Readers for the MPGB file formats, all returning one `LabeledSequences`.

- ``fasta``: PGB FASTA, the label after the last ``|`` of the header (``>id|label``);
- ``csv``: comma-separated with a header holding ``sequence`` and ``label`` (the PGB CSV
  re-host, multi-labels joined by ``;``, and the PDLLM ``train/dev/test.csv``);
- ``tsv``: tab-separated ``sequence`` and ``label`` (the reference implementation's files).

Other columns are ignored. Every error names the file and the row (CSV/TSV line number, or
FASTA record number and name).
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from datamodules.fasta import read_fasta
from datamodules.mpgb.labels import LabelError, check_task, label_dtype, parse_label, vector_width
from plantbimoe.textio import open_text
from plantbimoe.tokenizer import encode, first_invalid_index

FORMATS = ("fasta", "csv", "tsv")
TOO_LONG_POLICIES = ("truncate", "error")
log = logging.getLogger(__name__)


class DatasetFormatError(ValueError):
    """Bad input in a dataset file; the message names the file and the row."""


@dataclass
class LabeledSequences:
    """Token ids of N sequences stored flat (`tokens[offsets[i]:offsets[i + 1]]`) with labels."""

    tokens: np.ndarray  # uint8, all sequences concatenated
    offsets: np.ndarray  # int64, N + 1
    labels: np.ndarray  # (N,) int64 class ids, (N, K) float32 multi-label vectors or (N,) float32 targets
    source: str

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def lengths(self) -> np.ndarray:
        """Sequence lengths in bases."""
        return np.diff(self.offsets)

    def sequence(self, index: int) -> np.ndarray:
        """Token ids of sequence `index` (a view)."""
        return self.tokens[self.offsets[index] : self.offsets[index + 1]]

    def subset(self, indices: np.ndarray) -> LabeledSequences:
        """A copy holding the sequences at `indices`, in that order."""
        indices = np.asarray(indices, dtype=np.int64)
        lengths = self.lengths()[indices]
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        tokens = np.empty(int(offsets[-1]), dtype=np.uint8)
        for out, i in enumerate(indices.tolist()):
            tokens[offsets[out] : offsets[out + 1]] = self.sequence(i)
        return LabeledSequences(tokens, offsets, self.labels[indices], self.source)


def read_dataset(
    path: str | Path,
    fmt: str,
    task_type: str,
    num_labels: int,
    max_length: int | None = None,
    too_long: str = "truncate",
) -> LabeledSequences:
    """Read one split file (plain or .gz) of format `fmt` ("fasta", "csv" or "tsv").

    Sequences longer than `max_length` bases keep their central `max_length` bases
    (``too_long="truncate"``, with one warning counting them) or raise (``"error"``).
    """
    path = Path(path)
    if fmt not in FORMATS:
        raise ValueError(f"unknown dataset format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if too_long not in TOO_LONG_POLICIES:
        raise ValueError(f"too_long must be one of {TOO_LONG_POLICIES}, got {too_long!r}")
    check_task(task_type, num_labels)
    if not path.is_file():
        raise FileNotFoundError(f"dataset file not found: {path}")
    rows = _fasta_rows(path) if fmt == "fasta" else _table_rows(path, "," if fmt == "csv" else "\t")
    pieces: list[bytes] = []
    labels: list = []
    truncated = 0
    for where, sequence, label in rows:
        sequence = sequence.strip()
        if not sequence:
            raise DatasetFormatError(f"{path}: {where}: empty sequence")
        bad = first_invalid_index(sequence)
        if bad >= 0:
            raise DatasetFormatError(
                f"{path}: {where}: invalid character {chr(sequence[bad])!r} at sequence "
                f"position {bad + 1}; expected A C G T N or IUPAC codes"
            )
        if max_length is not None and len(sequence) > max_length:
            if too_long == "error":
                raise DatasetFormatError(
                    f"{path}: {where}: sequence of {len(sequence)} bp is longer than "
                    f"max_length={max_length} (set too_long=truncate to crop it)"
                )
            start = (len(sequence) - max_length) // 2
            sequence = sequence[start : start + max_length]
            truncated += 1
        try:
            labels.append(parse_label(label, task_type, num_labels))
        except LabelError as err:
            raise DatasetFormatError(f"{path}: {where}: {err}") from None
        pieces.append(sequence)
    if not pieces:
        raise DatasetFormatError(f"{path}: no sequences found")
    if truncated:
        log.warning(
            "%s: %d of %d sequences longer than max_length=%d were truncated to their centre",
            path,
            truncated,
            len(pieces),
            max_length,
        )
    offsets = np.concatenate([[0], np.cumsum([len(p) for p in pieces])]).astype(np.int64)
    tokens = encode(b"".join(pieces))
    return LabeledSequences(tokens, offsets, np.asarray(labels, dtype=label_dtype(task_type)), str(path))


def infer_label_count(path: str | Path, fmt: str) -> int:
    """Number of labels of a multi-label file, from its first row's 0/1 vector."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"dataset file not found: {path}")
    rows = _fasta_rows(path) if fmt == "fasta" else _table_rows(path, "," if fmt == "csv" else "\t")
    for where, _, label in rows:
        try:
            return vector_width(label)
        except LabelError as err:
            raise DatasetFormatError(f"{path}: {where}: {err}; set num_labels") from None
    raise DatasetFormatError(f"{path}: no rows to read the label count from")


def _fasta_rows(path: Path) -> Iterator[tuple[str, bytes, str]]:
    for number, record in enumerate(read_fasta(path), start=1):
        header = f"{record.name} {record.description}".strip()
        name, bar, label = header.partition("|")
        where = f"record {number} ({name!r})"
        if not bar:
            raise DatasetFormatError(f"{path}: {where}: header has no '|label' field; expected '>id|label'")
        yield where, record.sequence, label.replace("|", ";")


def _table_rows(path: Path, delimiter: str) -> Iterator[tuple[str, bytes, str]]:
    with open_text(path) as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        header = next(reader, None)
        if header is None:
            raise DatasetFormatError(f"{path}: empty file; expected a header with 'sequence' and 'label'")
        columns = [c.strip().lower() for c in header]
        missing = [c for c in ("sequence", "label") if c not in columns]
        if missing:
            sep = "tab" if delimiter == "\t" else repr(delimiter)
            raise DatasetFormatError(
                f"{path}: line 1: missing column(s) {missing}; found {header} "
                f"(expected a {sep}-separated header with 'sequence' and 'label')"
            )
        seq_col, label_col = columns.index("sequence"), columns.index("label")
        for row in reader:
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            where = f"line {reader.line_num}"
            if len(row) != len(columns):
                raise DatasetFormatError(f"{path}: {where}: {len(row)} fields, the header has {len(columns)}")
            yield where, row[seq_col].encode("ascii", errors="replace"), row[label_col]
