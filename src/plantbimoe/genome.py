"""Random access to genome FASTA files through a samtools index (.fai, and .gzi for bgzip).

`open_genome(path)` reads any stretch of any record without scanning or decompressing the whole
file: a plain FASTA is read through its ``.fai``, a bgzip-compressed one through its ``.fai`` and
``.gzi`` (the files ``samtools faidx`` writes; reading is done by pysam, htslib's Python binding).
Index files that are missing, or older than the FASTA, are built once (one pass over the file),
under temporary names renamed into place; where the FASTA's folder is not writable they go to a
cache folder (``$PLANTBIMOE_CACHE``, else ``$XDG_CACHE_HOME/plantbimoe``, else
``~/.cache/plantbimoe``). A plain gzip (not bgzip) file cannot be read at a position: the error
says how to convert it once (``plantbimoe faidx``, or bgzip and samtools). As with samtools, the
letters are not checked one by one (a repeated record name keeps the first record, htslib warns);
when htslib cannot index a file, the error names the record and the line at fault.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from .atomic import atomic_path
from .bgzf import gzip_kind
from .fasta import FastaFormatError, read_fasta


class GenomeAccessError(ValueError):
    """A genome FASTA that cannot be indexed or read at a position; the message says why and what to do."""


def bgzip_name(path: Path) -> Path:
    """Where `plantbimoe faidx` writes the bgzip copy of `path`: x.fa.gz -> x.fa.bgz beside it."""
    return path.with_name((path.name[:-3] if path.name.endswith(".gz") else path.name) + ".bgz")


def conversion_hint(path: Path) -> str:
    """How to turn `path` (plain gzip) into an indexed bgzip FASTA."""
    copy = bgzip_name(path)
    return (f"convert it once with `plantbimoe faidx {path}` (writes {copy} and its index), or with "
            f"htslib: `gzip -dc {path} | bgzip > {copy} && samtools faidx {copy}`")


def _cache_dir() -> Path:
    root = os.environ.get("PLANTBIMOE_CACHE")
    if root:
        return Path(root)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "plantbimoe"


def _fresh(path: Path, fai: Path, gzi: Path | None) -> bool:
    mtime = path.stat().st_mtime_ns
    return all(p.is_file() and p.stat().st_mtime_ns >= mtime for p in (fai, gzi) if p is not None)


def index_paths(path: str | Path) -> tuple[Path, Path | None]:
    """Where the index of `path` lives (.fai, and .gzi for bgzip): beside the FASTA when the folder
    is writable or an up-to-date index is there, else in the cache folder."""
    path = Path(path)
    compressed = gzip_kind(path) == "bgzf"
    fai, gzi = Path(f"{path}.fai"), Path(f"{path}.gzi") if compressed else None
    if os.access(path.parent, os.W_OK) or _fresh(path, fai, gzi):
        return fai, gzi
    folder = _cache_dir() / "faidx" / hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:16]
    return folder / f"{path.name}.fai", (folder / f"{path.name}.gzi") if compressed else None


def _diagnose(path: Path) -> str:
    """Why htslib could not index `path` (it prints the reason, but not to Python)."""
    try:
        for record in read_fasta(path):
            del record
    except FastaFormatError as error:
        return str(error)
    opener = open
    if gzip_kind(path):
        import gzip

        opener = gzip.open  # type: ignore[assignment]
    with opener(path, "rb") as handle:
        name, width, short_at = "", 0, 0
        for number, line in enumerate(handle, start=1):
            if line.startswith(b">"):
                name, width, short_at = line[1:].split(maxsplit=1)[0].decode(errors="replace"), 0, 0
                continue
            length = len(line.rstrip(b"\r\n"))
            if short_at and length:
                return (f"{path}: record {name!r}: line {short_at} is shorter than the lines before it, but "
                        f"more sequence follows (line {number}); an indexed FASTA needs every line of a "
                        "record but the last to have the same length: rewrap it (e.g. `seqkit seq -w 60`)")
            if width and length != width:
                short_at = number
            width = width or length
    return f"{path}: htslib could not index it (see the message above)"


def build_index(path: str | Path) -> tuple[Path, Path | None]:
    """Build the .fai (and .gzi) of a plain or bgzip FASTA, atomically; returns their paths."""
    import pysam

    path = Path(path)
    fai, gzi = index_paths(path)
    with atomic_path(fai) as tmp_fai:
        args = [str(path), "--fai-idx", str(tmp_fai)]
        if gzi is not None:
            tmp_gzi = tmp_fai.with_name(tmp_fai.name + ".gzi")
            args += ["--gzi-idx", str(tmp_gzi)]
        try:
            pysam.faidx(*args)
        except pysam.SamtoolsError as error:
            raise GenomeAccessError(f"cannot index {path}: {_diagnose(path)}") from error
        if gzi is not None:
            os.replace(tmp_gzi, gzi)
    return fai, gzi


class Genome:
    """Records of an indexed FASTA: `lengths` (in file order) and `fetch` of any stretch."""

    def __init__(self, path: str | Path, fai: Path, gzi: Path | None) -> None:
        import pysam

        self.path = Path(path)
        self._fasta = pysam.FastaFile(str(path), filepath_index=str(fai),
                                      filepath_index_compressed=None if gzi is None else str(gzi))
        self.lengths: dict[str, int] = dict(zip(self._fasta.references, self._fasta.lengths, strict=True))

    def __contains__(self, name: object) -> bool:
        return name in self.lengths

    def fetch(self, name: str, start: int = 0, end: int | None = None) -> bytes:
        """Bases [start, end) (0-based) of record `name` as in the file (case kept); whole by default."""
        if name not in self.lengths:
            shown = ", ".join(list(self.lengths)[:10]) + (" ..." if len(self.lengths) > 10 else "")
            raise KeyError(f"no record {name!r} in {self.path}; its records: {shown}")
        length = self.lengths[name]
        end = length if end is None else end
        if not 0 <= start <= end <= length:
            raise ValueError(f"{self.path}: [{start}, {end}) is not within record {name!r} ({length:,} bp)")
        return self._fasta.fetch(name, start, end).encode("ascii")

    def close(self) -> None:
        self._fasta.close()

    def __enter__(self) -> Genome:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_genome(path: str | Path) -> Genome:
    """An indexed genome: `path` is a plain or bgzip FASTA; its index is built when missing or stale."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"FASTA file not found: {path}")
    if gzip_kind(path) == "gzip":
        raise GenomeAccessError(f"{path} is gzip-compressed but not with bgzip (blocked gzip), so it cannot "
                                "be read at a position without decompressing everything before it; "
                                f"{conversion_hint(path)}")
    fai, gzi = index_paths(path)
    if not _fresh(path, fai, gzi):
        fai, gzi = build_index(path)
    return Genome(path, fai, gzi)
