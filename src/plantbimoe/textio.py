"""Text input that may be gzip-compressed (detected from the magic bytes, not the file name).

Gzip input is decompressed here (multi-member files such as bgzip included) so that everything
before a truncation or corruption reaches the reader first: the error then comes when the reader
asks for more, and names the file and the last complete line.
"""

from __future__ import annotations

import io
import zlib
from pathlib import Path

GZIP_MAGIC = b"\x1f\x8b"
CHUNK = 1 << 16


class GzipDataError(EOFError, ValueError):
    """Truncated or corrupt gzip data; the message names the file and the lines read before it."""

    def __init__(self, path: Path, reason: str, line: int) -> None:
        self.path, self.reason, self.line = path, reason, line
        super().__init__(f"{path}: {reason} after line {line} (the last complete line); "
                         "re-download or re-compress the file")


class GunzipStream(io.BufferedIOBase):
    """Decompressed bytes of a gzip file. `read1`/`read` return what was decoded before a damaged
    point (possibly fewer bytes than asked); the next call raises GzipDataError."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.raw = open(self.path, "rb")  # the compressed file (its tell() measures progress)
        self._ended = False
        self._inflate = zlib.decompressobj(31)
        self._pending = b""
        self._lines = 0  # newlines delivered so far
        self._error: str | None = None
        self._started = False  # the current member has consumed input

    def readable(self) -> bool:
        return True

    def _fill(self) -> None:
        """Decompress until something is pending, the file ends, or damage is found."""
        while not self._pending and self._error is None and not self._ended:
            chunk = self.raw.read(CHUNK)
            if not chunk:
                if self._started and not self._inflate.eof:
                    self._error = "the file ends inside a gzip member (truncated)"
                self._ended = True
                return
            try:
                data = b""
                while chunk:
                    if self._inflate.eof:  # another member follows (bgzip); zero padding is skipped
                        chunk = chunk.lstrip(b"\0")
                        if not chunk:
                            break
                        self._inflate, self._started = zlib.decompressobj(31), False
                    data += self._inflate.decompress(chunk)
                    self._started = True
                    chunk = self._inflate.unused_data if self._inflate.eof else b""
            except zlib.error as err:
                self._error = f"corrupt gzip data ({err})"
            self._pending = data

    def _take(self, size: int) -> bytes:
        self._fill()
        if not self._pending and self._error is not None:
            raise GzipDataError(self.path, self._error, self._lines)
        size = len(self._pending) if size is None or size < 0 else size
        data, self._pending = self._pending[:size], self._pending[size:]
        self._lines += data.count(b"\n")
        return data

    def read1(self, size: int = -1) -> bytes:
        return self._take(size if size and size > 0 else CHUNK)

    def read(self, size: int | None = -1) -> bytes:
        parts, wanted = [], CHUNK if size is None or size < 0 else size
        while wanted > 0:
            self._fill()
            if not self._pending and (parts or self._error is None):
                break  # the end, or damage after good bytes: those first, the next read raises
            part = self._take(wanted)
            parts.append(part)
            if size is not None and size >= 0:
                wanted -= len(part)
        return b"".join(parts)

    def close(self) -> None:
        self.raw.close()
        super().close()


def is_gzip(path: str | Path) -> bool:
    """Whether `path` starts with the gzip magic bytes."""
    with open(path, "rb") as probe:
        return probe.read(2) == GZIP_MAGIC


def open_text(path: str | Path) -> io.TextIOBase:
    """Open `path` as UTF-8 text with universal newlines off (CSV-safe), gunzipping if needed."""
    if is_gzip(path):
        return io.TextIOWrapper(GunzipStream(path), encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")
