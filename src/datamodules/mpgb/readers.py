"""Readers for the MPGB file formats, all returning one `LabeledSequences`.

- ``fasta``: PGB FASTA, ``>name|label`` or, for multi-label sets, ``>name|1|0|...|1`` (the
  header split on ``|``: the name, then the labels); repeated names are allowed;
- ``csv``: comma-separated with a header holding ``sequence`` and ``label`` (the PGB CSV
  re-host, multi-labels joined by ``;``, and the PDLLM ``train/dev/test.csv``);
- ``tsv``: tab-separated ``sequence`` and ``label`` (the reference implementation's files).

A file is read once into a token store (datamodules.mpgb.store) that later reads map from
disk, so memory stays small whatever the file size. Every error names the file and the row
(CSV/TSV line number, or FASTA record number, name and header line).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from datamodules.mpgb.labels import LabelError, check_task, parse_labels, vector_width
from datamodules.mpgb.parsing import Chunk, DatasetFormatError, fasta_chunks, table_chunks
from datamodules.mpgb.sequences import LabeledSequences
from datamodules.mpgb.store import StoreWriter, load_or_build
from plantbimoe.tokenizer import BYTE_TO_ID

FORMATS = ("fasta", "csv", "tsv")
TOO_LONG_POLICIES = ("truncate", "error")
_INVALID = 255
_TO_ID = BYTE_TO_ID.tobytes()  # bytes.translate table: one pass at memory speed
log = logging.getLogger(__name__)

__all__ = ["FORMATS", "DatasetFormatError", "LabeledSequences", "infer_label_count", "read_dataset"]


def read_dataset(
    path: str | Path,
    fmt: str,
    task_type: str,
    num_labels: int,
    max_length: int | None = None,
    too_long: str = "truncate",
    cache_dir: str | Path | None = None,
) -> LabeledSequences:
    """Read one split file (plain or .gz) of format `fmt` ("fasta", "csv" or "tsv").

    Sequences longer than `max_length` bases keep their central `max_length` bases
    (``too_long="truncate"``, with one warning counting them) or raise (``"error"``).
    The result is memory-mapped from the file's token store (built on the first read;
    `cache_dir` overrides where stores live, see datamodules.mpgb.store).
    """
    path = Path(path)
    if fmt not in FORMATS:
        raise ValueError(f"unknown dataset format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if too_long not in TOO_LONG_POLICIES:
        raise ValueError(f"too_long must be one of {TOO_LONG_POLICIES}, got {too_long!r}")
    check_task(task_type, num_labels)
    if not path.is_file():
        raise FileNotFoundError(f"dataset file not found: {path}")
    options = {"format": fmt, "task_type": task_type, "num_labels": num_labels,
               "max_length": max_length, "too_long": too_long}

    def build(writer: StoreWriter) -> dict[str, Any]:
        log.info("%s: reading into a token store (once; later reads map it)", path)
        return {"truncated": _fill(writer, path, options)}

    data, meta = load_or_build(path, options, build, cache_dir)
    if meta.get("truncated"):
        log.warning("%s: %d of %d sequences longer than max_length=%d were truncated to their centre",
                    path, meta["truncated"], len(data), max_length)
    return data


def infer_label_count(path: str | Path, fmt: str) -> int:
    """Number of labels of a multi-label file, from its first row's 0/1 vector."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"dataset file not found: {path}")
    for chunk in _chunks(path, fmt):
        text = chunk.labels[0]
        text = text.decode("utf-8", errors="replace") if isinstance(text, bytes) else text
        if fmt == "fasta" and "|" in text:
            return len(text.split("|"))
        try:
            return vector_width(text)
        except LabelError as err:
            raise DatasetFormatError(f"{path}: {chunk.where(0)}: {err}; set num_labels") from None
    raise DatasetFormatError(f"{path}: no rows to read the label count from")


def _chunks(path: Path, fmt: str) -> Iterator[Chunk]:
    return fasta_chunks(path) if fmt == "fasta" else table_chunks(path, "," if fmt == "csv" else "\t")


def _fill(writer: StoreWriter, path: Path, options: dict[str, Any]) -> int:
    """Encode and check every chunk of `path` into `writer`; returns the truncated count."""
    truncated = 0
    for chunk in _chunks(path, options["format"]):
        tokens, lengths, cropped = _encode(chunk, path, options["max_length"], options["too_long"])
        try:
            labels = parse_labels(chunk.labels, options["task_type"], options["num_labels"],
                                  "|" if options["format"] == "fasta" else None)
        except LabelError as err:
            raise DatasetFormatError(f"{path}: {chunk.where(err.row or 0)}: {err}") from None
        writer.add(tokens, lengths, labels)
        truncated += cropped
    if writer.records == 0:
        raise DatasetFormatError(f"{path}: no sequences found")
    return truncated


def _encode(
    chunk: Chunk, path: Path, max_length: int | None, too_long: str
) -> tuple[np.ndarray, np.ndarray, int]:
    """(token ids of the chunk's sequences concatenated, their lengths, how many were cropped)."""
    sequences = chunk.sequences
    text = bool(sequences) and isinstance(sequences[0], str)
    if text:  # table cells: surrounding whitespace is not part of the sequence
        sequences = [s.strip() for s in sequences]  # type: ignore[union-attr]
    lengths = np.fromiter(map(len, sequences), dtype=np.int64, count=len(sequences))
    if (lengths == 0).any():
        raise DatasetFormatError(f"{path}: {chunk.where(int(np.argmin(lengths)))}: empty sequence")
    joined = "".join(sequences).encode("ascii", errors="replace") if text else b"".join(sequences)  # type: ignore[arg-type]
    encoded = joined.translate(_TO_ID)
    index = encoded.find(_INVALID)
    if index >= 0:
        ends = np.cumsum(lengths)
        row = int(np.searchsorted(ends, index, side="right"))
        position = index - int(ends[row] - lengths[row])
        char = sequences[row][position]
        char = chr(char) if isinstance(char, int) else char
        raise DatasetFormatError(f"{path}: {chunk.where(row)}: invalid character {char!r} at sequence "
                                 f"position {position + 1}; expected A C G T N or IUPAC codes")
    ids = np.frombuffer(encoded, dtype=np.uint8)
    if max_length is None or lengths.max() <= max_length:
        return ids, lengths, 0
    long_rows = np.flatnonzero(lengths > max_length)
    if too_long == "error":
        row = int(long_rows[0])
        raise DatasetFormatError(f"{path}: {chunk.where(row)}: sequence of {lengths[row]} bp is longer than "
                                 f"max_length={max_length} (set too_long=truncate to crop it)")
    starts = np.cumsum(lengths) - lengths
    kept = np.minimum(lengths, max_length)
    starts += (lengths - kept) // 2  # the centre of a long sequence
    out_starts = np.cumsum(kept) - kept
    gather = np.repeat(starts - out_starts, kept) + np.arange(int(kept.sum()))
    return ids[gather], kept, len(long_rows)
