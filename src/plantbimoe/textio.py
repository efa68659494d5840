"""Text input that may be gzip-compressed (detected from the magic bytes, not the file name)."""

from __future__ import annotations

import gzip
import io
from pathlib import Path


def open_text(path: str | Path) -> io.TextIOBase:
    """Open `path` as UTF-8 text with universal newlines off (CSV-safe), gunzipping if needed."""
    with open(path, "rb") as probe:
        gzipped = probe.read(2) == b"\x1f\x8b"
    if gzipped:
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")
