"""Atomic output: write under a unique temporary name beside the target, then rename.

A reader never sees a half-written file or folder, and two processes writing the same target
never share a temporary name (hidden ``.NAME.tmp-PID-RANDOM``): the last rename wins whole.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO


def temporary_name(path: Path) -> Path:
    """A unique hidden name beside `path` that keeps its last suffix (numpy and matplotlib choose
    formats by it)."""
    return path.with_name(f".{path.stem}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}{path.suffix}")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_path(path: str | Path, replace_folder: bool = False) -> Iterator[Path]:
    """Yield a unique temporary path beside `path` (parents created) to write a file or a folder;
    on success it is renamed to `path`, on error removed. A folder target that exists is replaced
    only with `replace_folder` (a file target is always replaced)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(path)
    try:
        yield tmp
        if path.is_dir() and tmp.is_dir():
            if not replace_folder:
                raise FileExistsError(f"{path} exists; not replacing a folder")
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        if tmp.exists() or tmp.is_symlink():
            _remove(tmp)


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write `text` (UTF-8) to `path` atomically; returns `path`."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


@contextlib.contextmanager
def atomic_text(path: str | Path) -> Iterator[TextIO]:
    """A text handle on a temporary file (gzip when `path` ends in .gz, newline="" for CSV),
    renamed to `path` when the block completes."""
    with atomic_path(path) as tmp:
        if str(path).endswith(".gz"):
            with gzip.open(tmp, "wt", encoding="utf-8", newline="") as handle:
                yield handle
        else:
            with open(tmp, "w", encoding="utf-8", newline="") as handle:
                yield handle
