"""Score the variants of a VCF against an indexed reference genome, streaming the VCF.

Records are read in order and scored in batches of about `VARIANTS_PER_CHUNK` alleles; for each
allele only its window (and its REF span) is read from the genome (plantbimoe.genome), so neither
the VCF nor a chromosome is ever held whole. Every ALT gets a status: ``ok`` (scored),
``unsupported_allele`` (symbolic, ``*``, breakend or N alleles), ``too_long`` (a changed segment
over max_indel_length), ``missing_contig`` (CHROM not in the FASTA: skipped and counted),
``out_of_range`` (REF runs past the contig end) or ``ref_mismatch`` (REF differs from the FASTA,
case-insensitive). Malformed VCF lines come through with their problem (see vcf.VcfReader).
Nothing stops the run: skipped variants keep their status and a message naming the VCF line.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from ..genome import Genome
from ..mlm import PlantBiMoEForMaskedLM
from ..tokenizer import encode
from .runtime import Runtime
from .vcf import VcfRecord
from .vep import Change, Site, VepSettings, context, normalise, score_sites

STATUSES = ("ok", "ref_mismatch", "out_of_range", "missing_contig", "unsupported_allele", "too_long")
VARIANTS_PER_CHUNK = 256


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
class VariantResult:
    variant: Variant
    status: str = "pending"
    kind: str = ""
    scores: tuple[float, float, float] | None = None  # score, score_fwd, score_rev
    message: str = ""
    change: Change | None = None
    site: Site | None = None


def variants(record: VcfRecord) -> list[Variant]:
    """The ALTs of a well-formed record, one `Variant` each."""
    return [Variant(record.line, record.chrom, record.pos, record.id, record.ref, alt, i)
            for i, alt in enumerate(record.alts)]


def _check_alleles(result: VariantResult, settings: VepSettings) -> None:
    v = result.variant
    bad = next((a for a in (v.ref, v.alt) if not a or not set(a) <= set("ACGT")), None)
    if bad is not None:
        result.status = "unsupported_allele"
        result.message = f"allele {bad!r} is not a run of A C G T (symbolic, '*', breakend or N)"
        return
    if v.ref == v.alt:
        result.status, result.message = "unsupported_allele", "ALT equals REF"
        return
    change = normalise(v.pos, v.ref, v.alt)
    longest = max(len(change.ref), len(change.alt))
    if change.kind != "snv" and longest > settings.max_indel_length:
        result.status = "too_long"
        result.message = f"{longest} bp changed; max_indel_length is {settings.max_indel_length}"
        return
    result.kind, result.change = change.kind, change


def _check_reference(result: VariantResult, genome: Genome, settings: VepSettings, shown: str) -> None:
    """Compare REF with the genome and cut the scoring window; sets a status when it cannot."""
    v, change = result.variant, result.change
    assert change is not None
    if v.chrom not in genome:
        result.status = "missing_contig"
        result.message = f"contig {v.chrom!r} is not in {genome.path} (its records: {shown})"
        return
    length = genome.lengths[v.chrom]
    ref_start, ref_end = v.pos - 1, v.pos - 1 + len(v.ref)
    if ref_end > length:
        result.status = "out_of_range"
        result.message = f"REF ends at {v.chrom}:{ref_end}, past the contig end ({length} bp)"
        return
    left, right = context(length, change.start, change.end, settings.flank)
    lo, hi = min(left, ref_start), max(right, ref_end)
    bases = genome.fetch(v.chrom, lo, hi)
    found = bases[ref_start - lo : ref_end - lo].upper()
    if found != v.ref.encode():
        result.status = "ref_mismatch"
        result.message = f"REF {v.ref} but the FASTA has {found.decode()} at {v.chrom}:{v.pos}"
        return
    ids = encode(bases)
    result.site = Site(ids[left - lo : change.start - lo], change, ids[change.end - lo : right - lo])


def _score(model: PlantBiMoEForMaskedLM, batch: list[VariantResult], settings: VepSettings,
           runtime: Runtime) -> None:
    scores = score_sites(model, [r.site for r in batch], settings, runtime)  # type: ignore[misc]
    for r, row in zip(batch, scores, strict=True):
        r.status, r.scores, r.site = "ok", (float(row[0]), float(row[1]), float(row[2])), None


def score_records(
    model: PlantBiMoEForMaskedLM,
    records: Iterable[VcfRecord],
    genome: Genome,
    settings: VepSettings,
    runtime: Runtime,
) -> Iterator[tuple[VcfRecord, list[VariantResult]]]:
    """Yield each record with one result per ALT (none for a malformed record), in VCF order."""
    names = list(genome.lengths)
    shown = ", ".join(names[:5]) + (f", ... ({len(names)} in all)" if len(names) > 5 else "")
    pending: list[tuple[VcfRecord, list[VariantResult]]] = []
    batch: list[VariantResult] = []
    for record in records:
        results = [] if record.problem else [VariantResult(v) for v in variants(record)]
        for r in results:
            _check_alleles(r, settings)
            if r.status == "pending":
                _check_reference(r, genome, settings, shown)
            if r.status == "pending":
                batch.append(r)
        pending.append((record, results))
        if len(batch) >= VARIANTS_PER_CHUNK:
            _score(model, batch, settings, runtime)
            yield from pending
            pending, batch = [], []
    if batch:
        _score(model, batch, settings, runtime)
    yield from pending
