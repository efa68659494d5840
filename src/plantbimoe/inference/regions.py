"""Genome regions for per-base tracks: ``CHROM:START-END`` (1-based, inclusive, as samtools and
genome browsers write them), read from a whole-genome FASTA through its index (plantbimoe.genome),
and the genome coordinates of a record cut by ``samtools faidx`` (named ``CHROM:START-END``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..genome import open_genome

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
    """The bases of `region` from an indexed (plain or bgzip) FASTA; the index is built if missing."""
    with open_genome(path) as genome:
        if region.chrom not in genome:
            names = list(genome.lengths)
            raise ValueError(f"--region {region}: no record {region.chrom!r} in {path}; its records: "
                             f"{', '.join(names[:10])}{' ...' if len(names) > 10 else ''}")
        length = genome.lengths[region.chrom]
        if region.end > length:
            raise ValueError(f"--region {region}: {region.chrom} has {length:,} bases in {path}")
        return genome.fetch(region.chrom, region.start, region.end)
