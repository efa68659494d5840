"""Sequence inputs of the embed and predict commands: FASTA, CSV or TSV (plain or gzip).

FASTA: one sequence per record, its id the record name (the first word of the header).
CSV/TSV: a header row with a ``sequence`` column; the id comes from an ``id`` or ``name`` column
when there is one, else ``row<N>`` (N = 1-based data row). Other columns are ignored.
Errors name the file and the line (or record).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

from ..fasta import read_fasta
from ..textio import open_text
from ..tokenizer import first_invalid_index

FORMATS = ("fasta", "csv", "tsv")
_FASTA_SUFFIXES = (".fa", ".fasta", ".fna", ".fas", ".ffn")
ID_COLUMNS = ("id", "name")


class SequenceInputError(ValueError):
    """Bad sequence input; the message names the file and the line."""


def detect_format(path: Path) -> str:
    """fasta/csv/tsv from the extension (a .gz suffix is looked through), else from the first byte."""
    suffixes = [s.lower() for s in path.suffixes if s.lower() != ".gz"]
    last = suffixes[-1] if suffixes else ""
    if last in _FASTA_SUFFIXES:
        return "fasta"
    if last in (".csv", ".tsv"):
        return last[1:]
    with open_text(path) as handle:
        first = handle.read(1)
    if first == ">":
        return "fasta"
    raise SequenceInputError(f"{path}: cannot tell the format from the name; use .fa/.fasta, .csv or .tsv "
                             "(optionally .gz) or pass --input-format")


def read_sequences(path: str | Path, fmt: str | None = None) -> Iterator[tuple[str, bytes]]:
    """Yield (id, sequence bytes) in file order; `fmt` is detected when None."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"input file not found: {path}")
    fmt = fmt or detect_format(path)
    if fmt not in FORMATS:
        raise ValueError(f"unknown input format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if fmt == "fasta":
        for record in read_fasta(path, unique_names=False):
            yield record.name, record.sequence
        return
    yield from _table(path, "," if fmt == "csv" else "\t")


def _table(path: Path, delimiter: str) -> Iterator[tuple[str, bytes]]:
    with open_text(path) as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        header = [c.strip().lower() for c in next(reader, [])]
        if "sequence" not in header:
            raise SequenceInputError(f"{path}: line 1: no 'sequence' column in the header {header}")
        seq_col = header.index("sequence")
        id_col = next((header.index(c) for c in ID_COLUMNS if c in header), None)
        row_number = 0
        for row in reader:
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            row_number += 1
            where = f"{path}: line {reader.line_num}"
            if len(row) != len(header):
                raise SequenceInputError(f"{where}: {len(row)} fields, the header has {len(header)}")
            sequence = row[seq_col].strip().encode("ascii", errors="replace")
            bad = first_invalid_index(sequence)
            if not sequence or bad >= 0:
                found = f"{chr(sequence[bad])!r} at position {bad + 1}" if sequence else "an empty sequence"
                raise SequenceInputError(f"{where}: {found}; expected A C G T N or IUPAC codes")
            yield (row[id_col].strip() if id_col is not None else f"row{row_number}"), sequence
