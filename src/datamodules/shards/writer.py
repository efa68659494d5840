"""Deterministic webdataset tar shards, written to a temporary name and renamed when complete.

A sample is three tar members: `KEY.json` (species, accession, contig, start, end), `KEY.softmask`
(numpy.packbits of the lowercase flags, big bit order) and `KEY.tokens` (uint8 token ids). The
ustar headers are written here directly (tarfile's per-member cost dominated the build) with fixed
times and owners, so the same windows always give the same bytes; any tar reader, webdataset's
included, reads them.

Shard boundaries depend only on the sample sizes: a shard is closed before the sample that would
take it past `shard_size` bytes. That makes resuming exact: a series whose first shards already
exist replays its windows "virtually" through those shards (no bytes written) and writes only
the missing ones.
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

BLOCK = 512
RECORD = 20 * BLOCK  # tar archives end with two zero blocks, padded to a 10 KiB record
TMP_SUFFIX = ".tmp"
EXTENSIONS = ("json", "softmask", "tokens")  # members of a sample, in tar order


def _ustar_header(name: bytes, size: int) -> bytes:
    """A POSIX ustar header: regular file, mode 0444, uid/gid 0, mtime 0, no owner names."""
    if len(name) > 100:
        raise ValueError(f"tar member name longer than 100 bytes: {name!r}")
    header = bytearray(BLOCK)
    header[0:len(name)] = name
    header[100:108] = b"0000444\0"
    header[108:116] = header[116:124] = b"0000000\0"
    header[124:136] = b"%011o\0" % size
    header[136:148] = b"00000000000\0"
    header[148:156] = b" " * 8
    header[156:157] = b"0"
    header[257:265] = b"ustar\x0000"
    header[148:156] = b"%06o\0 " % sum(header)
    return bytes(header)


def encode_sample(key: str, tokens: np.ndarray, softmask: np.ndarray, meta: dict) -> dict[str, bytes]:
    """The tar members of one window."""
    return {"__key__": key, "tokens": tokens.astype(np.uint8, copy=False).tobytes(),
            "softmask": np.packbits(softmask).tobytes(),
            "json": json.dumps(meta, sort_keys=True, separators=(",", ":")).encode()}


def sample_to_tar(sample: dict[str, bytes]) -> bytes:
    """The bytes of one sample's members in a tar archive (headers and padding included)."""
    key = sample["__key__"].encode()
    parts = []
    for extension in EXTENSIONS:
        data = sample[extension]
        parts += [_ustar_header(key + b"." + extension.encode(), len(data)), data,
                  bytes(-len(data) % BLOCK)]
    return b"".join(parts)


@dataclass
class ShardRecord:
    """What the index keeps about one finished shard."""

    path: str
    windows: int = 0
    bases: int = 0


class ShardSeries:
    """Shards `<directory>/<prefix>-00000.tar`, `-00001.tar`, ... of one (species file, split).

    Shards that already exist count as finished (they only ever appear by an atomic rename).
    """

    def __init__(self, root: Path, relative_dir: str, prefix: str, shard_size: int) -> None:
        self.root, self.relative_dir, self.prefix = root, relative_dir, prefix
        self.shard_size = shard_size
        self.records: list[ShardRecord] = []
        self._bytes = 0
        self._stream: io.BufferedWriter | None = None
        self._tmp: Path | None = None
        (root / relative_dir).mkdir(parents=True, exist_ok=True)

    def _relative(self, index: int) -> str:
        return f"{self.relative_dir}/{self.prefix}-{index:05d}.tar"

    def _open_next(self) -> None:
        index = len(self.records)
        self.records.append(ShardRecord(self._relative(index)))
        self._bytes = 0
        final = self.root / self.records[-1].path
        if final.exists():
            return  # finished in an earlier run: replay virtually
        self._tmp = final.with_name(f"{final.name}.{os.getpid()}{TMP_SUFFIX}")
        self._stream = open(self._tmp, "wb")

    def write(self, sample: dict[str, bytes], bases: int) -> None:
        data = sample_to_tar(sample)
        if not self.records or (self._bytes > 0 and self._bytes + len(data) > self.shard_size):
            self._close_current()
            self._open_next()
        if self._stream is not None:
            self._stream.write(data)
        self._bytes += len(data)
        record = self.records[-1]
        record.windows += 1
        record.bases += bases

    def _close_current(self) -> None:
        if self._stream is None:
            return
        self._stream.write(bytes(2 * BLOCK + -(self._bytes + 2 * BLOCK) % RECORD))
        self._stream.flush()
        os.fsync(self._stream.fileno())
        self._stream.close()
        os.replace(self._tmp, self.root / self.records[-1].path)
        self._stream = self._tmp = None

    def close(self) -> list[ShardRecord]:
        """Finish the last shard; returns the records of all shards of the series."""
        self._close_current()
        return self.records

    def abort(self) -> None:
        """Drop the shard being written (after an error): no partial shard survives."""
        if self._stream is not None:
            self._stream.close()
            self._tmp.unlink(missing_ok=True)
            self._stream = self._tmp = None


def remove_stale_temporaries(root: Path) -> int:
    """Delete temporary shard files left by a killed build; returns how many."""
    stale = list(root.rglob(f"*.tar.*{TMP_SUFFIX}"))
    for path in stale:
        path.unlink()
    return len(stale)

