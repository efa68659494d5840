"""Train / validation / test splits by whole contigs (the paper holds out 5% at chromosome level).

Contigs a manifest lists under `val` or `test` go there. The rest of the held-out share is filled
corpus-wide: contigs of at least `min_holdout_length` bp (chromosomes, not scaffolds or organelles)
are visited in a seeded pseudo-random order and taken while the split stays within its target
(`val_fraction`, `test_fraction` of all bases). A split that would stay empty takes the smallest
eligible contig. Every species keeps at least one training contig.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

SPLITS = ("train", "val", "test")


class SplitError(ValueError):
    """Held-out contigs that cannot be honoured (unknown name, contig in two splits, ...)."""


def _order_key(seed: int, species: str, contig: str) -> str:
    return hashlib.sha256(f"{seed}\t{species}\t{contig}".encode()).hexdigest()


def assign_splits(contigs: Mapping[str, Mapping[str, int]],
                  explicit: Mapping[str, Mapping[str, Sequence[str]]] | None = None,
                  val_fraction: float = 0.025, test_fraction: float = 0.025,
                  min_holdout_length: int = 1_000_000, seed: int = 0) -> dict[str, dict[str, str]]:
    """species -> contig -> split, for `contigs` (species -> contig -> length).

    `explicit` maps species -> {"val": [...], "test": [...]} (from the manifest).
    """
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise SplitError(f"val_fraction and test_fraction must be in [0, 1) with a sum below 1; "
                         f"got {val_fraction} and {test_fraction}")
    explicit = explicit or {}
    assigned: dict[str, dict[str, str]] = {s: {c: "train" for c in names} for s, names in contigs.items()}
    for species, held in explicit.items():
        for split in ("val", "test"):
            for contig in held.get(split, ()):
                if contig not in assigned[species]:
                    raise SplitError(f"species {species!r}: held-out {split} contig {contig!r} is not in its "
                                     f"FASTA files; contigs: {sorted(assigned[species])[:20]}")
                if assigned[species][contig] != "train":
                    raise SplitError(f"species {species!r}: contig {contig!r} is listed under both "
                                     f"{assigned[species][contig]} and {split}")
                assigned[species][contig] = split
    total = sum(sum(lengths.values()) for lengths in contigs.values())
    held_bp = {split: sum(contigs[s][c] for s, m in assigned.items() for c, v in m.items() if v == split)
               for split in ("val", "test")}
    fixed = {s for s, held in explicit.items() if held.get("val") or held.get("test")}
    candidates = sorted(((s, c) for s, lengths in contigs.items() if s not in fixed
                         for c, n in lengths.items() if n >= min_holdout_length),
                        key=lambda sc: _order_key(seed, *sc))
    for split, fraction in (("val", val_fraction), ("test", test_fraction)):
        target = fraction * total
        if target <= 0:
            continue

        def eligible(species: str, contig: str) -> bool:
            training = [c for c, v in assigned[species].items() if v == "train"]
            return assigned[species][contig] == "train" and len(training) > 1

        for species, contig in candidates:
            size = contigs[species][contig]
            if held_bp[split] + size <= target and eligible(species, contig):
                assigned[species][contig] = split
                held_bp[split] += size
        if held_bp[split] == 0:
            pool = [(contigs[s][c], _order_key(seed, s, c), s, c) for s, c in candidates if eligible(s, c)]
            if pool:
                size, _, species, contig = min(pool)
                assigned[species][contig] = split
                held_bp[split] += size
    return assigned
