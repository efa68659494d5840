"""Train / validation / test splits by whole contigs (the paper holds out 5% at chromosome level).

Contigs a manifest lists under `val` or `test` go there. The rest of the held-out share is filled
corpus-wide: contigs of at least `min_holdout_length` bp (chromosomes, not scaffolds or organelles)
are visited in a seeded pseudo-random order and taken while the split stays within its target
(`val_fraction`, `test_fraction` of all bases). A split that would stay empty takes the smallest
eligible contig. Every species keeps at least one training contig.

A corpus whose contigs cannot give a held-out split a whole contig (one chromosome per species)
holds out positional blocks of its longest contig instead (`plan_blocks`, as the annotation
benchmark does): blocks of `size` bp cycle through train, val and test slots, and a window that
would cross from one split's block into another's is dropped, so no base is in two splits.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

SPLITS = ("train", "val", "test")
BLOCKS = "blocks"  # the split of a contig held out by positional blocks
MIN_BLOCK_WINDOWS = 2  # a block holds at least this many windows
MAX_CYCLES = 8  # cycles along the contig (spreads held-out blocks over the chromosome)


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


@dataclass(frozen=True)
class HeldOutBlocks:
    """Blocks of `size` bp along `contig` of `species`: block i is held out for val when
    i % cycle == val_slot, for test when i % cycle == test_slot, and trains otherwise."""

    species: str
    contig: str
    size: int
    cycle: int
    val_slot: int | None
    test_slot: int | None

    def split_of(self, start: int, end: int) -> str | None:
        """The split of the window [start, end), or None when it spans blocks of two splits."""
        first, last = (self._split(start // self.size), self._split((end - 1) // self.size))
        return first if first == last else None

    def _split(self, block: int) -> str:
        slot = block % self.cycle
        return "val" if slot == self.val_slot else "test" if slot == self.test_slot else "train"

    def describe(self) -> str:
        held = [f"{split} when i % {self.cycle} == {slot}" for split, slot in
                (("val", self.val_slot), ("test", self.test_slot)) if slot is not None]
        return (f"contig {self.contig!r} of species {self.species!r} in blocks of {self.size:,} bp: block i "
                f"goes to {' and to '.join(held)}, else to train; windows crossing into a block of "
                "another split are dropped")


def plan_blocks(contigs: Mapping[str, Mapping[str, int]], assigned: Mapping[str, Mapping[str, str]],
                val_fraction: float, test_fraction: float, window_length: int) -> HeldOutBlocks | None:
    """Positional held-out blocks for the splits that whole contigs left empty, on the longest
    training contig; None when no split needs them or no contig is long enough."""
    empty = [(split, fraction) for split, fraction in (("val", val_fraction), ("test", test_fraction))
             if fraction > 0 and not any(v == split for m in assigned.values() for v in m.values())]
    if not empty:
        return None
    species, contig = max(((s, c) for s, m in assigned.items() for c, v in m.items() if v == "train"),
                          key=lambda sc: (contigs[sc[0]][sc[1]], sc), default=(None, None))
    if species is None:
        return None
    length = contigs[species][contig]
    cycle = max(len(empty) + 1, round(1 / max(fraction for _, fraction in empty)))
    min_block = MIN_BLOCK_WINDOWS * window_length
    cycles = min(MAX_CYCLES, length // (cycle * min_block))
    if cycles < 1:  # too short for the cycle the fractions ask for: the fewest blocks that still work
        cycle = len(empty) + 1
        if length < cycle * min_block:
            return None
        cycles = 1
    slots = {split: cycle - 1 - i for i, (split, _) in enumerate(empty)}
    return HeldOutBlocks(species, contig, length // (cycle * cycles), cycle, slots.get("val"),
                         slots.get("test"))


def empty_split_message(split: str, corpus: str, fraction: float, where: str) -> str:
    """Why a held-out split of a corpus has no window, and the options that change it."""
    skip = "trainer.limit_val_batches=0" if split == "val" else "test=false"
    return (f"split {split!r} of corpus {corpus!r} ({where}) has no window: no contig is held out for it "
            f"(build.{split}_fraction={fraction}) and no contig is long enough for held-out blocks of "
            f"{MIN_BLOCK_WINDOWS} windows. Change: list contigs under '{split}:' of a species in the "
            f"manifest or raise build.{split}_fraction, then rebuild into a new folder; or run without it "
            f"({skip})")
