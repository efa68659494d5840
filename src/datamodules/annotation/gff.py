"""Transcripts and their exons from a GFF3 annotation (plain or gzip)."""

from __future__ import annotations

import gzip
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


class GffFormatError(ValueError):
    """Malformed GFF3 input; the message names the file and line."""


@dataclass(frozen=True)
class Transcript:
    """A transcript in 0-based half-open genome coordinates; exons sorted by position."""

    id: str
    kind: str  # the GFF type, e.g. mRNA or lnc_RNA
    chrom: str
    strand: str
    start: int
    end: int
    exons: tuple[tuple[int, int], ...]

    def introns(self) -> list[tuple[int, int]]:
        """Gaps between consecutive exons (genome order)."""
        return [(a[1], b[0]) for a, b in zip(self.exons[:-1], self.exons[1:], strict=True) if b[0] > a[1]]

    @property
    def spliced_length(self) -> int:
        return sum(end - start for start, end in self.exons)

    @property
    def five_prime(self) -> int:
        """Boundary coordinate of the transcription start (first transcribed base follows it)."""
        return self.start if self.strand == "+" else self.end

    @property
    def three_prime(self) -> int:
        """Boundary coordinate of the transcript's 3' end (cleavage / polyadenylation site)."""
        return self.end if self.strand == "+" else self.start


def _attributes(field: str) -> dict[str, str]:
    pairs = (item.split("=", 1) for item in field.strip().split(";") if "=" in item)
    return {key.strip(): value.strip() for key, value in pairs}


def read_transcripts(path: str | Path, kinds: Iterable[str] = ("mRNA", "lnc_RNA")) -> list[Transcript]:
    """Transcripts of the GFF types `kinds` that have at least one exon, in file order."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"GFF file not found: {path}")
    kinds = set(kinds)
    heads: dict[str, tuple[str, str, str, int, int]] = {}
    exons: dict[str, list[tuple[int, int]]] = defaultdict(list)
    with open(path, "rb") as probe:
        opener = gzip.open if probe.read(2) == b"\x1f\x8b" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.startswith("#") or not line.strip():
                continue
            fields = line.rstrip("\n").split("\t")
            if len(fields) != 9:
                raise GffFormatError(f"{path}: line {number}: {len(fields)} tab-separated fields, GFF3 has 9")
            chrom, _, kind, start, end, _, strand, _, attributes = fields
            if kind not in kinds and kind != "exon":
                continue
            try:
                begin, stop = int(start) - 1, int(end)
            except ValueError:
                raise GffFormatError(
                    f"{path}: line {number}: start/end {start!r}/{end!r} are not integers"
                ) from None
            if strand not in "+-" or begin < 0 or stop <= begin:
                raise GffFormatError(
                    f"{path}: line {number}: bad strand {strand!r} or interval {start}..{end}"
                )
            attrs = _attributes(attributes)
            if kind == "exon":
                for parent in attrs.get("Parent", "").split(","):
                    exons[parent].append((begin, stop))
            elif "ID" in attrs:
                heads[attrs["ID"]] = (kind, chrom, strand, begin, stop)
    transcripts = []
    for tid, (kind, chrom, strand, begin, stop) in heads.items():
        if tid in exons:
            transcripts.append(Transcript(tid, kind, chrom, strand, begin, stop, tuple(sorted(exons[tid]))))
    return transcripts
