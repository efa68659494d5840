"""Zero-shot variant-effect scores from a masked DNA language model.

log p is the log-softmax of the masked-LM logits over A, C, G, T; every window is read as
``[CLS] bases [SEP]``.
- Normalisation: the bases REF and ALT share at their end, then at their start, are trimmed; the
  rest is the change: reference bases [start, end) (0-based) replaced by the ALT segment.
- Context: ``flank = (window - 1) // 2`` reference bases on each side of the change (an odd
  window: the site is exactly central, and both strands see the same bases). Near a contig end
  the window shifts inward: the short side keeps what exists and the other side takes the rest,
  so the window holds real bases only (never N padding); a contig shorter than the window is
  used whole.
- SNV (one base replaced by one): score = log p(ALT) - log p(REF) at the site, masked, in the
  window centred on it (the masked log-likelihood ratio of GPN and PlantCaduceus).
- Any other change (MNV, insertion, deletion, complex): for each allele the haplotype is
  left context + its segment + right context, and PLL(allele) = sum over the affected positions i
  of log p(base_i | haplotype with position i alone masked); the affected positions are the
  segment plus ``indel_flank`` bases on each side (N bases are skipped). score = PLL(ALT) -
  PLL(REF). With indel_flank = 0 an SNV gets exactly the SNV score. A length change adds the terms
  of the inserted bases (each < 0) or drops those of the deleted ones, so indel scores carry the
  indel length: compare indels of similar length with each other.
- Strands: every term is also computed on the reverse complement of its window (alleles
  complemented, positions mirrored); score = (score_fwd + score_rev) / 2.
Positive: the model prefers ALT; negative: ALT is less likely than REF.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..mlm import PlantBiMoEForMaskedLM
from ..tokenizer import A_ID, MASK_ID, N_ID, add_special_tokens, encode, reverse_complement
from .forward import nucleotide_logprobs
from .runtime import Runtime


@dataclass(frozen=True)
class VepSettings:
    window: int = 512
    indel_flank: int = 5
    max_indel_length: int = 50

    def __post_init__(self) -> None:
        if self.window < 1 or self.indel_flank < 0 or self.max_indel_length < 1:
            raise ValueError("need window >= 1, indel_flank >= 0 and max_indel_length >= 1")

    @property
    def flank(self) -> int:
        return (self.window - 1) // 2


@dataclass(frozen=True)
class Change:
    """Reference bases [start, end) (0-based) replaced by `alt`; `ref`, `alt` are nucleotide ids."""

    start: int
    end: int
    ref: np.ndarray
    alt: np.ndarray

    @property
    def kind(self) -> str:
        """snv, mnv, ins, del or complex."""
        r, a = len(self.ref), len(self.alt)
        if r == a:
            return "snv" if r == 1 else "mnv"
        return "ins" if r == 0 else "del" if a == 0 else "complex"


def normalise(pos: int, ref: str, alt: str) -> Change:
    """The change of a VCF allele pair at 1-based `pos` (shared end, then start, trimmed)."""
    if ref == alt:
        raise ValueError(f"ALT {alt!r} equals REF")
    suffix = 0
    while suffix < min(len(ref), len(alt)) and ref[-1 - suffix] == alt[-1 - suffix]:
        suffix += 1
    ref, alt = ref[: len(ref) - suffix], alt[: len(alt) - suffix]
    prefix = 0
    while prefix < min(len(ref), len(alt)) and ref[prefix] == alt[prefix]:
        prefix += 1
    start = pos - 1 + prefix
    return Change(start, start + len(ref) - prefix, encode(ref[prefix:]), encode(alt[prefix:]))


def context(length: int, start: int, end: int, flank: int) -> tuple[int, int]:
    """[left, right) of the window around reference bases [start, end) on a contig of `length`."""
    room_left, room_right = start, length - end
    n_left = min(room_left, flank + max(0, flank - room_right))
    n_right = min(room_right, flank + max(0, flank - room_left))
    return start - n_left, end + n_right


@dataclass(frozen=True)
class Site:
    """A change with its reference context: `left` + change + `right` is the scoring window
    (nucleotide ids; ``context`` gives its bounds on the contig)."""

    left: np.ndarray
    change: Change
    right: np.ndarray


def _masked_row(bases: np.ndarray, position: int) -> tuple[np.ndarray, np.ndarray]:
    """([CLS] bases [SEP] with base `position` masked, its token index as a 1-element array)."""
    row = add_special_tokens(bases)
    row[1 + position] = MASK_ID
    return row, np.array([1 + position])


def score_changes(
    model: PlantBiMoEForMaskedLM,
    contig: np.ndarray,
    changes: Sequence[Change],
    settings: VepSettings,
    runtime: Runtime,
) -> np.ndarray:
    """float64 (len(changes), 3): score, score_fwd, score_rev of each change on `contig` (ids)."""
    sites = []
    for change in changes:
        left_start, right_end = context(len(contig), change.start, change.end, settings.flank)
        sites.append(Site(contig[left_start : change.start], change, contig[change.end : right_end]))
    return score_sites(model, sites, settings, runtime)


def score_sites(
    model: PlantBiMoEForMaskedLM, sites: Sequence[Site], settings: VepSettings, runtime: Runtime
) -> np.ndarray:
    """float64 (len(sites), 3): score, score_fwd, score_rev of each change in its window."""
    rows: list[tuple[np.ndarray, np.ndarray]] = []
    terms: list[tuple[int, int, list[tuple[int, float]]]] = []  # (site, strand, [(nt, weight)])
    for c, (left, change, right) in enumerate((s.left, s.change, s.right) for s in sites):
        if change.kind == "snv":
            window = np.concatenate([left, change.ref, right])
            for strand, bases in enumerate((window, reverse_complement(window))):
                site = len(left) if strand == 0 else len(window) - 1 - len(left)
                ref, alt = (int(x) - A_ID for x in (change.ref[0], change.alt[0]))
                if strand:
                    ref, alt = 3 - ref, 3 - alt  # A C G T indices: complement is 3 - i
                rows.append(_masked_row(bases, site))
                terms.append((c, strand, [(alt, 1.0), (ref, -1.0)]))
            continue
        k = settings.indel_flank
        for sign, segment in ((-1.0, change.ref), (1.0, change.alt)):
            haplotype = np.concatenate([left, segment, right])
            affected = range(max(0, len(left) - k), min(len(haplotype), len(left) + len(segment) + k))
            for strand, bases in enumerate((haplotype, reverse_complement(haplotype))):
                for i in affected:
                    p = i if strand == 0 else len(bases) - 1 - i
                    if bases[p] == N_ID:
                        continue
                    rows.append(_masked_row(bases, p))
                    terms.append((c, strand, [(int(bases[p]) - A_ID, sign)]))
    logprobs = nucleotide_logprobs(model, [r for r, _ in rows], [at for _, at in rows], runtime)
    strands = np.zeros((len(sites), 2), dtype=np.float64)
    for (c, strand, weights), lp in zip(terms, logprobs, strict=True):
        strands[c, strand] += sum(w * float(lp[0, nt]) for nt, w in weights)
    return np.column_stack([strands.mean(axis=1), strands[:, 0], strands[:, 1]])
