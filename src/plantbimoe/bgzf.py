"""BGZF, the blocked gzip of bgzip/samtools: writing it, and telling it from plain gzip.

A BGZF file is a series of gzip members of at most 64 KiB each, every one carrying its own
compressed size in a ``BC`` extra field, and ends with a fixed empty block. Any gzip reader reads
it whole; an index (.gzi) of where each block starts lets a reader jump into the middle.
"""

from __future__ import annotations

import shutil
import struct
import zlib
from pathlib import Path
from typing import BinaryIO

from .atomic import atomic_path
from .textio import GunzipStream, GzipDataError, is_gzip

BLOCK_DATA = 0xFF00  # uncompressed bytes per block, as bgzip writes them
MAX_BLOCK = 1 << 16
EOF_BLOCK = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")
_HEADER = struct.Struct("<4BI2BH2BHH")  # magic, CM, FLG, MTIME, XFL, OS, XLEN, 'B','C', SLEN, BSIZE


def gzip_kind(path: str | Path) -> str | None:
    """"bgzf" for a blocked gzip, "gzip" for any other gzip stream, None for an uncompressed file."""
    with open(path, "rb") as handle:
        head = handle.read(18)
    if not head.startswith(b"\x1f\x8b"):
        return None
    if len(head) == 18 and head[3] & 4 and head[10:12] == b"\x06\x00" and head[12:14] == b"BC":
        return "bgzf"
    return "gzip"


def _block(data: bytes, level: int) -> bytes:
    deflate = zlib.compressobj(level, zlib.DEFLATED, -15)
    body = deflate.compress(data) + deflate.flush()
    if len(body) + 26 > MAX_BLOCK:  # incompressible data: stored, which always fits
        deflate = zlib.compressobj(0, zlib.DEFLATED, -15)
        body = deflate.compress(data) + deflate.flush()
    header = _HEADER.pack(31, 139, 8, 4, 0, 0, 255, 6, 66, 67, 2, len(body) + 25)
    return header + body + struct.pack("<II", zlib.crc32(data), len(data))


class BgzfWriter:
    """Write bytes to `handle` as BGZF blocks; `close()` flushes and adds the end-of-file block."""

    def __init__(self, handle: BinaryIO, level: int = 6) -> None:
        self.handle, self.level = handle, level
        self._buffer = bytearray()

    def write(self, data: bytes) -> int:
        self._buffer += data
        while len(self._buffer) >= BLOCK_DATA:
            self.handle.write(_block(bytes(self._buffer[:BLOCK_DATA]), self.level))
            del self._buffer[:BLOCK_DATA]
        return len(data)

    def close(self) -> None:
        if self._buffer:
            self.handle.write(_block(bytes(self._buffer), self.level))
            self._buffer.clear()
        self.handle.write(EOF_BLOCK)

    def __enter__(self) -> BgzfWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self.close()


def bgzip_file(source: str | Path, destination: str | Path) -> Path:
    """Write `source` (plain, gzip or bgzip) to `destination` as BGZF, atomically; returns it."""
    source, destination = Path(source), Path(destination)
    if destination.resolve() == source.resolve():
        raise ValueError(f"{destination}: the output would overwrite the input; choose another name")
    with atomic_path(destination) as tmp, open(tmp, "wb") as raw, BgzfWriter(raw) as out:
        with GunzipStream(source) if is_gzip(source) else open(source, "rb") as stream:
            try:
                shutil.copyfileobj(stream, out, 1 << 20)
            except GzipDataError as error:
                raise ValueError(f"{source}: {error.reason}; re-download or re-compress the file") from error
    return destination
