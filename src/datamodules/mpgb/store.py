"""Token stores: a dataset file read once into flat arrays on disk, memory-mapped afterwards.

A store is a folder `<file name>.<checksum>.<options>` holding `tokens.u8` (all sequences'
token ids), `offsets.i64` (N + 1), `labels.bin` and `meta.json`. `<checksum>` is the SHA-256 of
the source file's bytes (first 16 hex digits) and `<options>` a digest of the reading options,
so a changed file or option gets a new store; older stores of the same file are removed. The
store is written under a temporary name and renamed when complete, so a killed build leaves no
store that looks finished.

Stores live in `.mpgb_store/` beside the source; when that folder cannot be written (a read-only
dataset folder), in `$PLANTBIMOE_CACHE/mpgb` (default `~/.cache/plantbimoe/mpgb`), or in an
explicit `cache_dir`. A source whose size and modification time match a store's record is not
read again; otherwise its checksum decides.
"""

from __future__ import annotations

import glob
import hashlib
import json
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from datamodules.mpgb.sequences import LABELS, META, OFFSETS, TOKENS, LabeledSequences
from plantbimoe.atomic import atomic_write_text, temporary_name

STORE_VERSION = 1
STORE_DIR = ".mpgb_store"
log = logging.getLogger(__name__)


class StoreWriter:
    """Appends encoded rows to the store files of folder `path` (sizes checked on `close`)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True)
        self._files: dict[str, BinaryIO] = {n: open(path / n, "wb") for n in (TOKENS, OFFSETS, LABELS)}
        self._files[OFFSETS].write(np.zeros(1, dtype=np.int64).tobytes())
        self.records, self.bases = 0, 0
        self.label_dtype: np.dtype | None = None
        self.label_shape: tuple[int, ...] = ()

    def add(self, tokens: np.ndarray, lengths: np.ndarray, labels: np.ndarray) -> None:
        """Append `len(lengths)` sequences (their tokens concatenated) and their labels."""
        if self.label_dtype is None:
            self.label_dtype, self.label_shape = labels.dtype, labels.shape[1:]
        offsets = self.bases + np.cumsum(lengths, dtype=np.int64)
        self._files[TOKENS].write(np.ascontiguousarray(tokens, dtype=np.uint8).data)
        self._files[OFFSETS].write(offsets.data)
        self._files[LABELS].write(np.ascontiguousarray(labels, dtype=self.label_dtype).data)
        self.records += len(lengths)
        self.bases = int(offsets[-1]) if len(offsets) else self.bases

    def close(self, meta: dict[str, Any]) -> None:
        """Close the files and write `meta.json` (with the array shapes) last."""
        for handle in self._files.values():
            handle.close()
        meta |= {"records": self.records, "bases": self.bases, "label_dtype": str(self.label_dtype),
                 "label_shape": list(self.label_shape), "version": STORE_VERSION}
        atomic_write_text(self.path / META, json.dumps(meta, indent=1))

    def abort(self) -> None:
        for handle in self._files.values():
            handle.close()


def default_cache_dir() -> Path:
    """`$PLANTBIMOE_CACHE/mpgb`, else `~/.cache/plantbimoe/mpgb`."""
    base = os.environ.get("PLANTBIMOE_CACHE") or Path("~/.cache/plantbimoe").expanduser()
    return Path(base) / "mpgb"


def file_checksum(path: Path, block: int = 1 << 24) -> str:
    """SHA-256 of the file's bytes, hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(block):
            digest.update(chunk)
    return digest.hexdigest()


def options_key(options: dict[str, Any]) -> str:
    """Short digest of the reading options (and the store version)."""
    text = json.dumps({**options, "version": STORE_VERSION}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def load_or_build(
    source: Path,
    options: dict[str, Any],
    build: Callable[[StoreWriter], dict[str, Any]],
    cache_dir: str | Path | None = None,
) -> tuple[LabeledSequences, dict[str, Any]]:
    """(the mapped store of `source` under `options`, its meta), built by `build` if needed.

    `build(writer)` reads the source into the writer and returns extra meta entries; its
    errors propagate and its partial output is removed.
    """
    source = source.resolve()
    stat = source.stat()
    key = options_key(options)
    roots = [Path(cache_dir)] if cache_dir is not None else [source.parent / STORE_DIR, default_cache_dir()]
    for root in roots:  # the cheap check: a store that recorded this file's size and mtime
        for store in _candidates(root, source.name, key):
            meta = _valid_meta(store)
            if meta and (meta["source"], meta["size"], meta["mtime_ns"]) == (str(source), stat.st_size,
                                                                              stat.st_mtime_ns):
                return LabeledSequences.from_store(store), meta
    checksum = file_checksum(source)
    name = f"{source.name}.{checksum[:16]}.{key}"
    record = {"source": str(source), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": checksum}
    for root in roots:
        meta = _valid_meta(root / name)
        if meta and meta["sha256"] == checksum:  # same bytes, new stat (a copy, a touch)
            meta |= record
            atomic_write_text(root / name / META, json.dumps(meta, indent=1))
            return LabeledSequences.from_store(root / name), meta
    errors = []
    for root in roots:
        temporary = temporary_name(root / name)
        try:
            root.mkdir(parents=True, exist_ok=True)
            writer = StoreWriter(temporary)
        except OSError as err:  # not writable here: try the next place
            errors.append(f"{root}: {err}")
            continue
        store = _build(writer, root / name, build, record | {"options": options})
        _remove_stale(root, source, key, keep=store)
        return LabeledSequences.from_store(store), _valid_meta(store) or {}
    raise OSError(f"{source}: no writable place for its token store ({'; '.join(errors)}); set cache_dir")


def _build(writer: StoreWriter, target: Path, build: Callable[[StoreWriter], dict[str, Any]],
           meta: dict[str, Any]) -> Path:
    """Fill `writer`'s temporary folder and rename it to `target`; remove it on any failure."""
    try:
        extra = build(writer)
        writer.close(meta | extra)
        try:
            os.rename(writer.path, target)
        except OSError:
            if _valid_meta(target) is not None:
                log.info("%s: another process built this store first", target)
                return target
            shutil.rmtree(target, ignore_errors=True)  # an unusable leftover (damaged files)
            os.rename(writer.path, target)
        return target
    finally:
        writer.abort()
        shutil.rmtree(writer.path, ignore_errors=True)


def _candidates(root: Path, file_name: str, key: str) -> list[Path]:
    return sorted(Path(p) for p in glob.glob(str(root / f"{glob.escape(file_name)}.*.{key}")))


def _valid_meta(store: Path) -> dict[str, Any] | None:
    """The store's meta when it is complete (version and file sizes as recorded), else None."""
    try:
        meta = json.loads((store / META).read_text())
        n, width = meta["records"], int(np.prod(meta["label_shape"], dtype=np.int64))
        sizes = {TOKENS: meta["bases"], OFFSETS: 8 * (n + 1),
                 LABELS: n * width * np.dtype(meta["label_dtype"]).itemsize}
        complete = all((store / f).stat().st_size == size for f, size in sizes.items())
        if meta["version"] == STORE_VERSION and complete:
            return meta
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


def _remove_stale(root: Path, source: Path, key: str, keep: Path) -> None:
    """Remove this source's stores for earlier versions of its bytes (same options)."""
    for store in _candidates(root, source.name, key):
        meta = _valid_meta(store)
        if store != keep and meta is not None and meta["source"] == str(source):
            log.info("removing the token store of an earlier version of %s: %s", source, store)
            shutil.rmtree(store, ignore_errors=True)
