"""VCF input and output for variant scoring (plain or gzip/bgzip; written plain or gzip by name).

Reading keeps no raw lines: each ALT of a record becomes a `Variant` (multi-allelic records are
split), malformed data lines are collected with their line number and a message. Writing streams
the input again and adds the scores as one INFO tag with ``Number=A`` (one value per ALT, ``.``
where an ALT was not scored), so records and their genotype columns stay exactly as they were.
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..atomic import atomic_text

_BASES = frozenset("ACGTN")
_MIN_COLUMNS = ("#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO")


@dataclass(frozen=True)
class Variant:
    """One ALT of a VCF record; `pos` is 1-based, `ref` and `alt` are as written (uppercased)."""

    line: int
    chrom: str
    pos: int
    vid: str
    ref: str
    alt: str
    alt_index: int


@dataclass
class VcfContents:
    variants: list[Variant] = field(default_factory=list)
    malformed: list[tuple[int, str]] = field(default_factory=list)  # (line number, message)


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    with open(path, "rb") as probe:
        gzipped = probe.read(2) == b"\x1f\x8b"
    raw = gzip.open(path, "rb") if gzipped else open(path, "rb")
    with io.TextIOWrapper(raw, encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            yield number, line.rstrip("\r\n")


def _parse(number: int, line: str, contents: VcfContents) -> None:
    fields = line.split("\t")
    if len(fields) < 5:
        contents.malformed.append((number, f"{len(fields)} tab-separated field(s); expected at least "
                                           "CHROM POS ID REF ALT"))
        return
    chrom, pos, vid, ref, alts = fields[:5]
    if not pos.isdigit() or int(pos) < 1:
        contents.malformed.append((number, f"POS {pos!r} is not a positive integer"))
        return
    ref = ref.upper()
    if not ref or not set(ref) <= _BASES:
        contents.malformed.append((number, f"REF {fields[3]!r} is not a run of A C G T N"))
        return
    if not chrom or not alts or "" in alts.split(","):
        contents.malformed.append((number, "empty CHROM or ALT field (or an empty allele in ALT)"))
        return
    for index, alt in enumerate(alts.split(",")):
        contents.variants.append(Variant(number, chrom, int(pos), vid, ref, alt.upper(), index))


def read_vcf(path: str | Path) -> VcfContents:
    """Variants (one per ALT) and malformed data lines of a VCF; a missing header is tolerated."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"VCF file not found: {path}")
    contents = VcfContents()
    for number, line in _lines(path):
        if line and not line.startswith("#"):
            _parse(number, line, contents)
    return contents


def _with_tag(info: str, tag: str, value: str | None) -> str:
    entries = [e for e in info.split(";") if e and e != "." and e.split("=", 1)[0] != tag]
    if value is not None:
        entries.append(f"{tag}={value}")
    return ";".join(entries) or "."


def write_vcf(
    source: str | Path,
    destination: str | Path,
    scores: Mapping[tuple[int, int], float],
    tag: str,
    description: str,
    meta: Sequence[str] = (),
    skip_lines: frozenset[int] = frozenset(),
) -> None:
    """Copy `source` to `destination` with ``tag`` added to INFO: scores are keyed by (line number,
    ALT index) and written with 4 decimals. Lines in `skip_lines` (malformed) are left out; an
    existing ``tag`` (header or INFO) is replaced; `meta` lines (``##...``) join the header."""
    header = [f'##INFO=<ID={tag},Number=A,Type=Float,Description="{description}">', *meta]
    info_prefix = f"##INFO=<ID={tag},"
    written_header = wrote_meta = False
    with atomic_text(destination) as out:
        for number, line in _lines(Path(source)):
            if line.startswith("##"):
                if not line.startswith(info_prefix):
                    out.write(line + "\n")
                wrote_meta = True
                continue
            if line.startswith("#"):
                out.write("\n".join([*header, line]) + "\n")
                written_header = True
                continue
            if not line or number in skip_lines:
                continue
            if not written_header:  # no #CHROM line: a minimal header
                first = [] if wrote_meta else ["##fileformat=VCFv4.2"]
                out.write("\n".join([*first, *header, "\t".join(_MIN_COLUMNS)]) + "\n")
                written_header = True
            fields = line.split("\t")
            fields += ["."] * (8 - len(fields))
            n_alts = len(fields[4].split(","))
            values = [scores.get((number, i)) for i in range(n_alts)]
            text = None if all(v is None for v in values) else ",".join(
                "." if v is None else f"{v:.4f}" for v in values)
            fields[7] = _with_tag(fields[7], tag, text)
            out.write("\t".join(fields) + "\n")
