"""Score the variants of a VCF against a reference FASTA, one contig in memory at a time.

Every ALT gets a status: ``ok`` (scored), ``unsupported_allele`` (symbolic, ``*``, breakend or
N alleles), ``too_long`` (a changed segment over max_indel_length), ``missing_contig`` (CHROM not
in the FASTA), ``out_of_range`` (REF runs past the contig end) or ``ref_mismatch`` (REF differs
from the FASTA, case-insensitive). Malformed VCF lines are reported by `read_vcf`. Nothing stops
the run: skipped variants are kept with their status and a message naming the VCF line.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from ..fasta import read_fasta
from ..mlm import PlantBiMoEForMaskedLM
from ..tokenizer import encode
from .runtime import Runtime
from .vcf import Variant, VcfContents, read_vcf
from .vep import Change, VepSettings, normalise, score_changes

STATUSES = ("ok", "ref_mismatch", "out_of_range", "missing_contig", "unsupported_allele", "too_long")
VARIANTS_PER_CHUNK = 256


@dataclass
class VariantResult:
    variant: Variant
    status: str = "pending"
    kind: str = ""
    scores: tuple[float, float, float] | None = None  # score, score_fwd, score_rev
    message: str = ""
    change: Change | None = None


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


def _score_contig(model: PlantBiMoEForMaskedLM, sequence: bytes, results: list[VariantResult],
                  settings: VepSettings, runtime: Runtime, bar) -> None:
    upper = sequence.upper()
    contig = encode(sequence)
    queue: list[VariantResult] = []
    for r in results:
        v = r.variant
        end = v.pos - 1 + len(v.ref)
        if end > len(sequence):
            r.status = "out_of_range"
            r.message = f"REF ends at {v.chrom}:{end}, past the contig end ({len(sequence)} bp)"
        elif upper[v.pos - 1 : end] != v.ref.encode():
            r.status = "ref_mismatch"
            found = upper[v.pos - 1 : end].decode()
            r.message = f"REF {v.ref} but the FASTA has {found} at {v.chrom}:{v.pos}"
        else:
            queue.append(r)
            continue
        bar.update(1)
    for i in range(0, len(queue), VARIANTS_PER_CHUNK):
        chunk = queue[i : i + VARIANTS_PER_CHUNK]
        scores = score_changes(model, contig, [r.change for r in chunk], settings, runtime)
        for r, row in zip(chunk, scores, strict=True):
            r.status, r.scores = "ok", (float(row[0]), float(row[1]), float(row[2]))
        bar.update(len(chunk))


def run_vep(
    model: PlantBiMoEForMaskedLM,
    vcf: str | Path,
    fasta: str | Path,
    settings: VepSettings,
    runtime: Runtime,
) -> tuple[list[VariantResult], VcfContents]:
    """Score every ALT of `vcf` on the `fasta` reference; results in VCF order, and the VCF contents
    (with its malformed lines). Reading the FASTA stops once every VCF contig was seen."""
    contents = read_vcf(vcf)
    results = [VariantResult(v) for v in contents.variants]
    by_contig: dict[str, list[VariantResult]] = defaultdict(list)
    for r in results:
        _check_alleles(r, settings)
        if r.status == "pending":
            by_contig[r.variant.chrom].append(r)
    names: list[str] = []
    with runtime.bar(sum(map(len, by_contig.values())), "variants", unit="variant") as bar:
        for record in read_fasta(fasta):
            if not by_contig:
                break
            names.append(record.name)
            if record.name in by_contig:
                _score_contig(model, record.sequence, by_contig.pop(record.name), settings, runtime, bar)
        shown = ", ".join(names[:5]) + (f", ... ({len(names)} in all)" if len(names) > 5 else "")
        for chrom, missing in by_contig.items():
            for r in missing:
                r.status = "missing_contig"
                r.message = f"contig {chrom!r} is not in {fasta} (its records: {shown})"
            bar.update(len(missing))
    return results, contents
