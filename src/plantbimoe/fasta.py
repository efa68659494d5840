"""Streaming FASTA reader for .fa/.fasta/.fna, plain or gzip/bgzip (detected by magic bytes).
(Reading at a position through an index: plantbimoe.genome.)

Reads fixed-size blocks, so memory stays bounded by the block size (chunked mode) or by one
record (record mode), whatever the file size. Rules:
- a record starts at a line beginning with '>'; its name is the first word of that line;
- spaces, tabs, CR and LF inside sequence lines are dropped (CRLF files read like LF files);
- sequence letters are validated against the tokenizer's alphabet (ACGTN, IUPAC codes, U; any case);
- errors name the file, the record and the line: a missing file, no '>' header line, an empty
  record, duplicate record names, a truncated or corrupt gzip stream, a character outside IUPAC.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from .textio import GunzipStream, GzipDataError
from .tokenizer import first_invalid_index

BLOCK_SIZE = 1 << 22
_WHITESPACE = b" \t\r\n"
_OTHER_COMPRESSION = {b"BZh": "bzip2", b"\xfd7zXZ": "xz", b"\x28\xb5\x2f\xfd": "zstd"}

PathLike = str | os.PathLike[str]
ProgressCallback = Callable[[int], None]


class FastaFormatError(ValueError):
    """Malformed FASTA input; the message names the file, the record and the line."""


@dataclass(frozen=True)
class FastaRecord:
    """One whole record: `sequence` holds the letters as in the file, whitespace removed."""

    name: str
    description: str
    sequence: bytes


@dataclass(frozen=True)
class FastaChunk:
    """A piece of a record: `start` is its 0-based offset; `last` marks the record's final piece."""

    name: str
    start: int
    sequence: bytes
    last: bool


def _open(path: Path) -> tuple[BinaryIO, BinaryIO]:
    """(raw file, decompressed stream); the stream is the raw file itself for plain text."""
    if not path.is_file():
        raise FileNotFoundError(f"FASTA file not found: {path}")
    raw = open(path, "rb")  # closed by the caller
    magic = raw.read(6)
    raw.seek(0)
    for prefix, kind in _OTHER_COMPRESSION.items():
        if magic.startswith(prefix):
            raw.close()
            raise FastaFormatError(f"{path}: {kind}-compressed; only plain or gzip/bgzip FASTA is supported")
    if magic.startswith(b"\x1f\x8b"):  # decoded before any damage, so errors name the right line
        raw.close()
        stream = GunzipStream(path)
        return stream.raw, stream
    return raw, raw


Event = tuple[str, str, int] | bytes


def _events(path: PathLike, on_progress: ProgressCallback | None = None,
            unique_names: bool = True) -> Iterator[Event]:
    """Yield (name, description, header line) at each record start, then its sequence pieces."""
    path = Path(path)
    block_size = BLOCK_SIZE  # read at call time, so tests can shrink it
    seen: dict[str, int] = {}
    name: str | None = None
    length = 0  # bases of the current record so far
    line = 1  # line number of the next unread byte
    at_line_start = True
    header: bytearray | None = None  # bytes of a header line being read
    header_line = record_line = 0

    def where() -> str:
        return f"{path}: record {name!r} (header at line {record_line})" if name else f"{path}"

    def start_record() -> Iterator[tuple[str, str, int]]:
        nonlocal name, length, record_line
        text = header.decode("utf-8", errors="replace").strip()
        if not text:
            raise FastaFormatError(f"{path}: line {header_line}: header line '>' has no record name")
        new_name, *rest = text.split(maxsplit=1)
        if unique_names and new_name in seen:
            raise FastaFormatError(f"{path}: duplicate record name {new_name!r} at line {header_line} "
                                   f"(first seen at line {seen[new_name]}); record names must be unique")
        seen.setdefault(new_name, header_line)
        name, length, record_line = new_name, 0, header_line
        yield name, rest[0] if rest else "", header_line

    def end_record() -> None:
        if name is not None and length == 0:
            raise FastaFormatError(f"{where()}: empty record (no sequence before line {line}); "
                                   "every '>' header needs at least one base")

    raw, stream = _open(path)
    try:
        while True:
            try:
                block = stream.read(block_size)
            except GzipDataError as err:
                raise FastaFormatError(f"{where()}: truncated or corrupt gzip data after line {line - 1} "
                                       f"(the last complete line; {err.reason}); re-download or "
                                       "re-compress the file") from err
            if on_progress is not None:
                on_progress(raw.tell())
            if not block:
                break
            pos = 0
            while pos < len(block):
                if header is not None:
                    newline = block.find(b"\n", pos)
                    header += block[pos:] if newline < 0 else block[pos:newline]
                    if newline < 0:
                        break
                    yield from start_record()
                    header, pos, line, at_line_start = None, newline + 1, line + 1, True
                    continue
                if at_line_start and block[pos] == 0x3E:  # '>'
                    next_header = pos
                else:
                    found = block.find(b"\n>", pos)
                    next_header = found + 1 if found >= 0 else -1
                segment = block[pos:] if next_header < 0 else block[pos:next_header]
                if segment:
                    piece = _clean(segment, path, name, length, line, where)
                    if piece:
                        length += len(piece)
                        yield piece
                    line += segment.count(b"\n")
                    at_line_start = segment.endswith(b"\n")
                if next_header < 0:
                    break
                end_record()
                header, header_line, pos = bytearray(), line, next_header + 1
    finally:
        stream.close()
        raw.close()
    if header is not None:
        yield from start_record()
    if name is None:
        raise FastaFormatError(f"{path}: no '>' header line found; expected FASTA records ('>name' lines)")
    end_record()


def _clean(segment: bytes, path: Path, name: str | None, length: int, line: int,
           where: Callable[[], str]) -> bytes:
    """Validate one run of sequence lines and return its letters without whitespace."""
    if name is None:
        stripped = segment.lstrip(_WHITESPACE)
        if not stripped:
            return b""
        first = line + segment.count(b"\n", 0, len(segment) - len(stripped))
        raise FastaFormatError(f"{path}: sequence data at line {first} before any '>' header line; "
                               "expected FASTA starting with '>name'")
    bad = first_invalid_index(segment, allowed=_WHITESPACE)
    if bad >= 0:
        position = length + len(segment[:bad].translate(None, _WHITESPACE)) + 1
        bad_line = line + segment.count(b"\n", 0, bad)
        raise FastaFormatError(
            f"{where()}: invalid character {chr(segment[bad])!r} (0x{segment[bad]:02x}) at line "
            f"{bad_line}, sequence position {position} (1-based); expected "
            "A C G T N, IUPAC codes R Y S W K M B D H V or U (either case)")
    return segment.translate(None, _WHITESPACE)


def read_fasta(path: PathLike, on_progress: ProgressCallback | None = None,
               unique_names: bool = True) -> Iterator[FastaRecord]:
    """Yield whole records one at a time (memory: one record).

    `unique_names=False` allows repeated record names (sequence-level datasets, not genomes).
    """
    current: tuple[str, str, int] | None = None
    pieces: list[bytes] = []
    for event in _events(path, on_progress, unique_names):
        if isinstance(event, bytes):
            pieces.append(event)
            continue
        if current is not None:
            yield FastaRecord(current[0], current[1], b"".join(pieces))
        current, pieces = event, []
    if current is not None:
        yield FastaRecord(current[0], current[1], b"".join(pieces))


def read_fasta_chunks(path: PathLike, chunk_size: int = 1 << 24,
                      on_progress: ProgressCallback | None = None) -> Iterator[FastaChunk]:
    """Yield records in pieces of `chunk_size` bases (the last piece may be shorter).

    Memory is bounded by chunk_size plus one read block, whatever the contig length.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}")
    name: str | None = None
    buffer = bytearray()
    start = 0
    for event in _events(path, on_progress):
        if isinstance(event, bytes):
            buffer += event
            while len(buffer) > chunk_size:  # strictly more: the record continues after this chunk
                yield FastaChunk(name, start, bytes(buffer[:chunk_size]), False)  # type: ignore[arg-type]
                del buffer[:chunk_size]
                start += chunk_size
            continue
        if name is not None:
            yield FastaChunk(name, start, bytes(buffer), True)
        name, buffer, start = event[0], bytearray(), 0
    if name is not None:
        yield FastaChunk(name, start, bytes(buffer), True)


def fasta_index(path: PathLike) -> dict[str, int]:
    """Record names and lengths in file order: from the samtools .fai index when an up-to-date one
    is there (plantbimoe.genome writes it), else from one streaming pass (cached per file version)."""
    resolved = Path(path).resolve()
    if not resolved.is_file():
        raise FileNotFoundError(f"FASTA file not found: {path}")
    stat = resolved.stat()
    fai = Path(f"{resolved}.fai")
    if fai.is_file() and fai.stat().st_mtime_ns >= stat.st_mtime_ns:
        with open(fai, encoding="utf-8") as handle:
            rows = [line.split("\t") for line in handle if line.strip()]
        return {row[0]: int(row[1]) for row in rows}
    return dict(_cached_index(str(resolved), stat.st_mtime_ns, stat.st_size))


@functools.lru_cache(maxsize=128)
def _cached_index(path: str, mtime_ns: int, size: int) -> tuple[tuple[str, int], ...]:
    lengths: dict[str, int] = {}
    name = ""
    for event in _events(path):
        if isinstance(event, bytes):
            lengths[name] += len(event)
        else:
            name = event[0]
            lengths[name] = 0
    return tuple(lengths.items())
