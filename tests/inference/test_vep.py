"""Zero-shot VEP scores: definitions, sign flip when REF and ALT swap, strand symmetry, contig ends."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from plantbimoe.inference.runtime import Runtime
from plantbimoe.inference.vep import Change, VepSettings, context, normalise, score_changes
from plantbimoe.tokenizer import A_ID, MASK_ID, add_special_tokens, decode, encode, reverse_complement

SETTINGS = VepSettings(window=33, indel_flank=3)


def _masked_logprobs(model, bases: np.ndarray, site: int) -> np.ndarray:
    row = add_special_tokens(bases)
    row[1 + site] = MASK_ID
    with torch.no_grad():
        logits = model(torch.from_numpy(row.astype(np.int64))[None]).logits[0, 1 + site, A_ID : A_ID + 4]
    return torch.log_softmax(logits, dim=-1).numpy()


def _snv(contig: np.ndarray, start: int, alt: str | None = None) -> Change:
    """SNV at `start`; default ALT: the next base in A C G T order after the contig's."""
    alt = alt or "ACGT"[(int(contig[start]) - A_ID + 1) % 4]
    return Change(start, start + 1, contig[start : start + 1], encode(alt))


def _mirror(change: Change, length: int) -> Change:
    """The same change described on the reverse-complement contig."""
    return Change(length - change.end, length - change.start, reverse_complement(change.ref),
                  reverse_complement(change.alt))


@pytest.mark.parametrize(
    ("pos", "ref", "alt", "expected"),
    [
        (10, "A", "G", (9, 10, "A", "G", "snv")),
        (10, "A", "ATT", (10, 10, "", "TT", "ins")),
        (10, "ACG", "A", (10, 12, "CG", "", "del")),
        (10, "ACGT", "AGCT", (10, 12, "CG", "GC", "mnv")),
        (10, "ACGT", "ACTT", (11, 12, "G", "T", "snv")),
        (10, "TAC", "GGAC", (9, 10, "T", "GG", "complex")),
    ],
)
def test_normalise_trims_shared_bases(pos: int, ref: str, alt: str, expected: tuple) -> None:
    change = normalise(pos, ref, alt)
    assert (change.start, change.end, decode(change.ref), decode(change.alt), change.kind) == expected


def test_context_is_centred_and_shifts_inward_at_contig_ends() -> None:
    assert context(1000, 500, 501, 16) == (484, 517)
    assert context(1000, 0, 1, 16) == (0, 33)  # shifted: still 33 real bases
    assert context(1000, 999, 1000, 16) == (967, 1000)
    assert context(20, 5, 6, 16) == (0, 20)  # contig shorter than the window: all of it
    assert context(1000, 3, 3, 16) == (0, 32)  # an insertion point near the start: 2 x 16 bases
    for start, end in ((0, 1), (7, 9), (990, 998)):  # mirror-symmetric, so both strands agree
        left, right = context(1000, start, end, 16)
        assert context(1000, 1000 - end, 1000 - start, 16) == (1000 - right, 1000 - left)


def test_snv_score_is_the_masked_llr_averaged_over_strands(model, chr1_region, runtime) -> None:
    contig, start = chr1_region, 200
    ref = decode(contig[start : start + 1])
    alt = "A" if ref != "A" else "C"
    score, fwd, rev = score_changes(model, contig, [_snv(contig, start, alt)], SETTINGS, runtime)[0]
    window = contig[start - 16 : start + 17]
    i_ref, i_alt = "ACGT".index(ref), "ACGT".index(alt)
    lp = _masked_logprobs(model, window, 16)
    lp_rc = _masked_logprobs(model, reverse_complement(window), 16)
    assert fwd == pytest.approx(lp[i_alt] - lp[i_ref], abs=1e-5)
    assert rev == pytest.approx(lp_rc[3 - i_alt] - lp_rc[3 - i_ref], abs=1e-5)
    assert score == pytest.approx((fwd + rev) / 2)


def test_snv_sign_flips_when_ref_and_alt_swap(model, chr1_region, runtime) -> None:
    """REF = the FASTA base against ALT = x, and REF = x against ALT = the FASTA base."""
    contig = chr1_region
    changes, swapped = [], []
    for start in (50, 120, 333):
        base = decode(contig[start : start + 1])
        other = "ACGT"[("ACGT".index(base) + 2) % 4]
        changes.append(Change(start, start + 1, encode(base), encode(other)))
        swapped.append(Change(start, start + 1, encode(other), encode(base)))
    a = score_changes(model, contig, changes, SETTINGS, runtime)
    b = score_changes(model, contig, swapped, SETTINGS, runtime)
    np.testing.assert_allclose(a, -b, atol=1e-5)
    assert np.abs(a[:, 0]).min() > 0


def test_indel_sign_flips_when_the_alleles_swap(model, chr1_region, runtime) -> None:
    left, right, inserted = chr1_region[:60], chr1_region[60:130], encode("GAT")
    with_insert = np.concatenate([left, inserted, right])
    deletion = Change(60, 63, inserted, encode(""))  # on the contig that carries GAT
    insertion = Change(60, 60, encode(""), inserted)  # on the contig without it
    d = score_changes(model, with_insert, [deletion], SETTINGS, runtime)
    i = score_changes(model, chr1_region[:130], [insertion], SETTINGS, runtime)
    np.testing.assert_allclose(d, -i, atol=1e-5)


@pytest.mark.parametrize(
    ("start", "ref_len", "alt"), [(150, 1, "T"), (150, 0, "AC"), (150, 2, ""), (2, 1, "G")]
)
def test_strand_averaging_is_symmetric(model, chr1_region, runtime, start, ref_len, alt) -> None:
    contig = chr1_region[:300]
    change = Change(start, start + ref_len, contig[start : start + ref_len], encode(alt))
    if change.kind == "snv" and decode(change.ref) == alt:
        change = Change(start, start + 1, change.ref, encode("A" if alt != "A" else "C"))
    forward = score_changes(model, contig, [change], SETTINGS, runtime)[0]
    mirrored = score_changes(model, reverse_complement(contig), [_mirror(change, 300)], SETTINGS, runtime)[0]
    assert mirrored[0] == pytest.approx(forward[0], abs=1e-5)
    assert (mirrored[1], mirrored[2]) == pytest.approx((forward[2], forward[1]), abs=1e-5)


def test_variants_at_contig_ends_use_shifted_real_windows(model, chr1_region, runtime) -> None:
    contig = chr1_region[:100]
    first, last = _snv(contig, 0), _snv(contig, 99)
    scores = score_changes(model, contig, [first, last], SETTINGS, runtime)
    lp = _masked_logprobs(model, contig[:33], 0)
    ref, alt = int(first.ref[0]) - A_ID, int(first.alt[0]) - A_ID
    assert scores[0, 1] == pytest.approx(lp[alt] - lp[ref], abs=1e-5)
    assert np.isfinite(scores).all()
    short = score_changes(model, contig[:10], [_snv(contig, 4)], SETTINGS, runtime)
    assert np.isfinite(short).all()


def test_indel_terms_skip_n_and_results_are_deterministic(model, chr1_region) -> None:
    contig = chr1_region[:120].copy()
    contig[58:60] = 11  # N right next to the deletion
    changes = [Change(60, 62, contig[60:62], encode("")), _snv(contig, 30)]
    a = score_changes(model, contig, changes, SETTINGS, Runtime(batch_size=3))
    b = score_changes(model, contig, changes, SETTINGS, Runtime(batch_size=64))
    assert np.isfinite(a).all()
    np.testing.assert_allclose(a, b, atol=1e-5)
    assert np.array_equal(a, score_changes(model, contig, changes, SETTINGS, Runtime(batch_size=3)))


def test_settings_validation() -> None:
    assert VepSettings(window=512).flank == 255 and VepSettings(window=513).flank == 256
    with pytest.raises(ValueError):
        VepSettings(window=0)
    with pytest.raises(ValueError, match="equals REF"):
        normalise(5, "A", "A")
