"""Genome regions for per-base tracks: ``CHROM:START-END`` (1-based, inclusive, as samtools and
genome browsers write them), read from a whole-genome FASTA by streaming, and the genome
coordinates of a record cut by ``samtools faidx`` (named ``CHROM:START-END``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..fasta import read_fasta_chunks

_REGION = re.compile(r"^(?P<chrom>\S+):(?P<start>[\d,]+)-(?P<end>[\d,]+)$")


@dataclass(frozen=True)
class Region:
    """Bases [start, end) (0-based, half-open) of `chrom`."""

    chrom: str
    start: int
    end: int

    def __str__(self) -> str:
        return f"{self.chrom}:{self.start + 1}-{self.end}"


def parse_region(text: str) -> Region:
    """``CHROM:START-END`` (1-based inclusive; commas allowed in numbers) as a Region."""
    match = _REGION.match(text.strip())
    if match is None:
        raise ValueError(f"--region {text!r}: expected CHROM:START-END, e.g. NC_003070.9:3001-9000 "
                         "(1-based, inclusive)")
    start, end = (int(match.group(k).replace(",", "")) for k in ("start", "end"))
    if not 1 <= start <= end:
        raise ValueError(f"--region {text!r}: need 1 <= START <= END")
    return Region(match.group("chrom"), start - 1, end)


def record_origin(name: str) -> tuple[str, int]:
    """(chromosome, 0-based offset of the record's first base): a record named CHROM:START-END
    (a samtools faidx cut) starts at START - 1 of CHROM; any other record at 0 of itself."""
    match = _REGION.match(name)
    if match is None:
        return name, 0
    return match.group("chrom"), int(match.group("start").replace(",", "")) - 1


def read_region(path: str | Path, region: Region) -> bytes:
    """The bases of `region` from a (possibly gzip) FASTA, read by streaming up to its end."""
    pieces: list[bytes] = []
    seen: list[str] = []
    for chunk in read_fasta_chunks(path):
        if chunk.name != region.chrom:
            if not seen or seen[-1] != chunk.name:
                seen.append(chunk.name)
            continue
        lo, hi = max(region.start, chunk.start), min(region.end, chunk.start + len(chunk.sequence))
        if lo < hi:
            pieces.append(chunk.sequence[lo - chunk.start:hi - chunk.start])
        if chunk.last or chunk.start + len(chunk.sequence) >= region.end:
            length = chunk.start + len(chunk.sequence)
            if region.end > length and chunk.last:
                raise ValueError(f"--region {region}: {region.chrom} has {length:,} bases in {path}")
            return b"".join(pieces)
    raise ValueError(f"--region {region}: no record {region.chrom!r} in {path}; its records: "
                     f"{', '.join(seen[:10])}{' ...' if len(seen) > 10 else ''}")
