"""Rows of the MPGB file formats, read in chunks: sequences, label fields, and where each row is.

- FASTA (PGB): a header `>name|label` or `>name|l1|l2|...|lK` (split on ``|``: the first field
  is the name, the rest the label); the sequence on the following lines. Records are identified
  by their position, so repeated names are allowed.
- CSV/TSV: a header row naming `sequence` and `label` (other columns ignored).

Plain or gzip input (by magic bytes). Errors name the file and the record or line.
"""

from __future__ import annotations

import csv
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from plantbimoe.textio import GunzipStream, is_gzip, open_text

BLOCK_SIZE = 1 << 24
CHUNK_ROWS = 1 << 15
_WHITESPACE = b" \t\r\n"


class DatasetFormatError(ValueError):
    """Bad input in a dataset file; the message names the file and the row."""


@dataclass
class Chunk:
    """Consecutive rows: `sequences` (bytes or str), their label fields, and `where(i)` naming
    row i for messages (record number, name and header line, or the file line)."""

    sequences: list[bytes] | list[str]
    labels: list[bytes] | list[str]
    where: Callable[[int], str]


def _open_binary(path: Path) -> BinaryIO:
    return GunzipStream(path) if is_gzip(path) else open(path, "rb")  # type: ignore[return-value]


def fasta_chunks(path: Path) -> Iterator[Chunk]:
    """Chunks of FASTA records (one per read block); the label field is the header after the
    first ``|`` (``|`` kept between the values of a vector)."""
    block_size = BLOCK_SIZE  # read at call time, so tests can shrink it
    carry, line, number = b"", 1, 0  # `line`: the line number where `carry` starts
    with _open_binary(path) as stream:
        while True:
            try:
                block = stream.read(block_size)
            except (EOFError, zlib.error) as err:  # GunzipStream's message names the last good line
                raise DatasetFormatError(str(err) if str(path) in str(err) else f"{path}: {err}") from None
            data = carry + block if carry else block
            if number == 0 and not data.startswith(b">"):  # blank lines may precede the first header
                stripped = data.lstrip(_WHITESPACE)
                if stripped and not stripped.startswith(b">"):
                    skipped = line + data.count(b"\n", 0, len(data) - len(stripped))
                    raise DatasetFormatError(f"{path}: line {skipped}: sequence data before any '>' header "
                                             "line; expected FASTA records ('>name|label' lines)")
                line += data.count(b"\n", 0, len(data) - len(stripped))
                data = stripped
            if block:
                cut = data.rfind(b"\n>")
                if cut < 0:
                    carry = data
                    continue
                body, carry = data[: cut + 1], data[cut + 1 :]
            else:
                body, carry = data, b""
            if body:
                chunk = _fasta_body(path, body, number, line)
                number += len(chunk.sequences)
                line += body.count(b"\n")
                yield chunk
            if not block:
                break
    if number == 0:
        raise DatasetFormatError(f"{path}: no '>' header line found; expected FASTA records ('>name|label')")


def _fasta_body(path: Path, body: bytes, first: int, line: int) -> Chunk:
    """Records of `body` (whole records, starting with '>'); `first` records came before."""
    records = body[1:].split(b"\n>")
    headers, sequences, labels = [], [], []
    for record in records:
        header, _, sequence = record.partition(b"\n")
        headers.append(header)
        sequences.append(sequence.translate(None, _WHITESPACE))
        labels.append(header.partition(b"|")[2].strip())

    def where(i: int) -> str:
        start = 0
        for _ in range(i):
            start = body.index(b"\n>", start) + 1
        name = headers[i].partition(b"|")[0].strip().decode("utf-8", errors="replace")
        header_line = line + body.count(b"\n", 0, start)
        return f"record {first + i + 1} ({name!r}, header at line {header_line})"

    for i, header in enumerate(headers):
        if b"|" not in header:
            raise DatasetFormatError(f"{path}: {where(i)}: header has no '|label' field; "
                                     "expected '>name|label' (PGB FASTA)")
    return Chunk(sequences, labels, where)


def table_chunks(path: Path, delimiter: str) -> Iterator[Chunk]:
    """Chunks of `CHUNK_ROWS` rows of a CSV/TSV file with `sequence` and `label` columns."""
    with open_text(path) as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        try:
            yield from _table_rows(path, reader, delimiter)
        except (EOFError, zlib.error) as err:
            raise DatasetFormatError(str(err) if str(path) in str(err) else f"{path}: {err}") from None
        except (csv.Error, UnicodeDecodeError) as err:
            raise DatasetFormatError(f"{path}: line {reader.line_num + 1}: {err}") from None


def _table_rows(path: Path, reader: Iterator[list[str]], delimiter: str) -> Iterator[Chunk]:
    header = next(reader, None)
    if header is None:
        raise DatasetFormatError(f"{path}: empty file; expected a header with 'sequence' and 'label'")
    columns = [c.strip().lower() for c in header]
    missing = [c for c in ("sequence", "label") if c not in columns]
    if missing:
        sep = "tab" if delimiter == "\t" else repr(delimiter)
        raise DatasetFormatError(f"{path}: line 1: missing column(s) {missing}; found {header} "
                                 f"(expected a {sep}-separated header with 'sequence' and 'label')")
    seq_col, label_col, width = columns.index("sequence"), columns.index("label"), len(columns)
    sequences: list[str] = []
    labels: list[str] = []
    lines: list[int] = []
    for row in reader:
        if len(row) != width:
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            raise DatasetFormatError(f"{path}: line {reader.line_num}: {len(row)} fields, "  # type: ignore[attr-defined]
                                     f"the header has {width}")
        sequences.append(row[seq_col])
        labels.append(row[label_col])
        lines.append(reader.line_num)  # type: ignore[attr-defined]
        if len(sequences) == CHUNK_ROWS:
            yield Chunk(sequences, labels, _line_namer(lines))
            sequences, labels, lines = [], [], []
    if sequences:
        yield Chunk(sequences, labels, _line_namer(lines))


def _line_namer(lines: list[int]) -> Callable[[int], str]:
    return lambda i: f"line {lines[i]}"
