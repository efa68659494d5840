"""Window sampling over in-memory token arrays: held-out splits, random and tiled windows.

Coordinates are 0-based, half-open. A window of `window_length` bases becomes
`window_length + 2` tokens when [CLS]/[SEP] are added.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from plantbimoe.tokenizer import N_ID, add_special_tokens, reverse_complement

RegionSpec = str | Mapping[str, str] | None
_SPAN = re.compile(r"^(\d[\d,]*)-(\d[\d,]*)$")


@dataclass(frozen=True, eq=False)
class Contig:
    """One contig of one assembly: uint8 token ids and the lowercase (soft-mask) flags."""

    assembly: str
    name: str
    source: str
    tokens: np.ndarray
    softmask: np.ndarray

    def __len__(self) -> int:
        return len(self.tokens)


@dataclass(frozen=True)
class Region:
    """[start, end) of contig number `contig` of a genome (a list of Contig)."""

    contig: int
    start: int
    end: int

    @property
    def length(self) -> int:
        return self.end - self.start


@dataclass(frozen=True)
class WindowRef:
    """Where a window comes from; `reverse` means it is read as a reverse complement."""

    contig: int
    start: int
    reverse: bool = False


def parse_region(spec: str) -> tuple[str, int | None, int | None]:
    """'contig' or 'contig:START-END' (1-based, inclusive, samtools style) -> (contig, start0, end)."""
    name, colon, span = spec.rpartition(":")
    match = _SPAN.match(span) if colon else None
    if match is None:
        return spec, None, None
    start, end = (int(x.replace(",", "")) for x in match.groups())
    if start < 1 or end < start:
        raise ValueError(f"region {spec!r}: expected contig:START-END with 1 <= START <= END")
    return name, start - 1, end


def _resolve(spec: RegionSpec, assembly: str, contigs: Sequence[Contig], kind: str) -> Region | None:
    text = spec.get(assembly) if isinstance(spec, Mapping) else spec
    if text is None:
        return None
    name, start, end = parse_region(text)
    matches = [i for i, c in enumerate(contigs) if c.assembly == assembly and c.name == name]
    if not matches:
        names = [c.name for c in contigs if c.assembly == assembly]
        raise ValueError(f"{kind}_region {text!r}: assembly {assembly!r} has no contig {name!r}; "
                         f"its contigs are {names}")
    index = matches[0]
    length = len(contigs[index])
    start, end = (0, length) if start is None else (start, end)
    if end > length:
        raise ValueError(f"{kind}_region {text!r} ends at {end} but contig {name!r} of {assembly!r} "
                         f"({contigs[index].source}) has {length} bp")
    return Region(index, start, end)


def split_regions(contigs: Sequence[Contig], val_fraction: float = 0.025, test_fraction: float = 0.025,
                  val_region: RegionSpec = None, test_region: RegionSpec = None) -> dict[str, list[Region]]:
    """Train/val/test regions per assembly.

    Default: the tail of each assembly's last contig is held out, `val_fraction` of its length for
    validation followed by `test_fraction` for test. `val_region`/`test_region` override that with
    'contig' or 'contig:START-END', one string for every assembly or a mapping per assembly.
    Training gets everything else.
    """
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ValueError(f"val_fraction and test_fraction must be in [0, 1) with a sum below 1; "
                         f"got {val_fraction} and {test_fraction}")
    assemblies = list(dict.fromkeys(c.assembly for c in contigs))
    for spec, kind in ((val_region, "val"), (test_region, "test")):
        if isinstance(spec, Mapping) and (unknown := set(spec) - set(assemblies)):
            raise ValueError(f"{kind}_region names unknown assemblies {sorted(unknown)}; known: {assemblies}")
    splits: dict[str, list[Region]] = {"train": [], "val": [], "test": []}
    for assembly in assemblies:
        last = max(i for i, c in enumerate(contigs) if c.assembly == assembly)
        length = len(contigs[last])
        n_test, n_val = round(length * test_fraction), round(length * val_fraction)
        held = {
            "val": _resolve(val_region, assembly, contigs, "val")
            or Region(last, length - n_test - n_val, length - n_test),
            "test": _resolve(test_region, assembly, contigs, "test") or Region(last, length - n_test, length),
        }
        val, test = held["val"], held["test"]
        if val.contig == test.contig and max(val.start, test.start) < min(val.end, test.end):
            raise ValueError(f"assembly {assembly!r}: validation region {val} and test region {test} "
                             "overlap; set val_region and test_region explicitly")
        for kind, region in held.items():
            if region.length:
                splits[kind].append(region)
        for index, contig in enumerate(contigs):
            if contig.assembly == assembly:
                cuts = sorted((r.start, r.end) for r in held.values() if r.contig == index and r.length)
                position = 0
                for start, end in cuts + [(len(contig), len(contig))]:
                    if start > position:
                        splits["train"].append(Region(index, position, start))
                    position = max(position, end)
    return splits


def n_fraction_ok(tokens: np.ndarray, max_n_fraction: float) -> np.ndarray | bool:
    """True where the N count over the last axis is at most max_n_fraction of its length."""
    return np.count_nonzero(tokens == N_ID, axis=-1) <= max_n_fraction * tokens.shape[-1]


class TrainWindowSampler:
    """Random training windows: assembly uniform or by bp, then a uniform start in its regions.

    Windows with more than `max_n_fraction` N are redrawn; each kept window is reverse-complemented
    with probability `rc_prob`.
    """

    def __init__(self, contigs: Sequence[Contig], regions: Sequence[Region], window_length: int,
                 max_n_fraction: float = 0.02, rc_prob: float = 0.3, species_sampling: str = "uniform",
                 max_tries: int = 100) -> None:
        if species_sampling not in ("uniform", "bp"):
            raise ValueError(f"species_sampling must be 'uniform' or 'bp', got {species_sampling!r}")
        self.contigs, self.window_length = contigs, window_length
        self.max_n_fraction, self.rc_prob, self.max_tries = max_n_fraction, rc_prob, max_tries
        self.assemblies = list(dict.fromkeys(c.assembly for c in contigs))
        self._regions: list[list[Region]] = []
        self._cumulative: list[np.ndarray] = []
        for assembly in self.assemblies:
            own = [r for r in regions if contigs[r.contig].assembly == assembly]
            usable = [r for r in own if r.length >= window_length]
            if not usable:
                files = sorted({contigs[r.contig].source for r in own} or
                               {c.source for c in contigs if c.assembly == assembly})
                longest = max(len(c) for c in contigs if c.assembly == assembly)
                longest_region = max((r.length for r in own), default=0)
                raise ValueError(f"window_length {window_length} is longer than every training region of "
                                 f"assembly {assembly!r} ({', '.join(files)}): its longest contig has "
                                 f"{longest} bp, its longest training region {longest_region} bp")
            self._regions.append(usable)
            self._cumulative.append(np.cumsum([r.length - window_length + 1 for r in usable]))
        bp = np.array([float(c[-1]) for c in self._cumulative])
        self.assembly_p = bp / bp.sum() if species_sampling == "bp" else np.full(len(bp), 1 / len(bp))

    def draw(self, rng: np.random.Generator) -> WindowRef:
        """One window reference; raises RuntimeError if max_tries draws all exceed the N limit."""
        a = int(rng.choice(len(self.assemblies), p=self.assembly_p))
        regions, cumulative = self._regions[a], self._cumulative[a]
        for _ in range(self.max_tries):
            u = int(rng.integers(cumulative[-1]))
            k = int(np.searchsorted(cumulative, u, side="right"))
            start = regions[k].start + u - (int(cumulative[k - 1]) if k else 0)
            tokens = self.contigs[regions[k].contig].tokens[start : start + self.window_length]
            if n_fraction_ok(tokens, self.max_n_fraction):
                return WindowRef(regions[k].contig, start, bool(rng.random() < self.rc_prob))
        raise RuntimeError(f"no window of {self.window_length} bp with at most {self.max_n_fraction:.1%} N "
                           f"in {self.max_tries} draws from assembly {self.assemblies[a]!r}: its training "
                           "regions are mostly N; lower window_length or raise max_n_fraction")


def tile_windows(contigs: Sequence[Contig], regions: Sequence[Region], window_length: int,
                 max_n_fraction: float = 0.02, max_windows: int | None = None) -> tuple[list[WindowRef], int]:
    """Deterministic non-overlapping windows over `regions`: (kept windows, number dropped for N).

    With `max_windows`, an evenly spaced subset of the kept windows is returned.
    """
    kept: list[WindowRef] = []
    dropped = 0
    for region in regions:
        count = region.length // window_length
        if count == 0:
            continue
        tokens = contigs[region.contig].tokens[region.start : region.start + count * window_length]
        ok = n_fraction_ok(tokens.reshape(count, window_length), max_n_fraction)
        dropped += int(count - ok.sum())
        kept += [WindowRef(region.contig, region.start + i * window_length) for i in np.flatnonzero(ok)]
    if max_windows is not None and len(kept) > max_windows:
        kept = [kept[i] for i in np.unique(np.linspace(0, len(kept) - 1, max_windows).round().astype(int))]
    return kept, dropped


def window_arrays(contigs: Sequence[Contig], ref: WindowRef, window_length: int,
                  add_special: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(token ids uint8, softmask bool) of a window; RC flips both; specials get softmask False."""
    contig = contigs[ref.contig]
    ids = contig.tokens[ref.start : ref.start + window_length]
    softmask = contig.softmask[ref.start : ref.start + window_length]
    if ref.reverse:
        ids, softmask = reverse_complement(ids), softmask[::-1]
    if add_special:
        ids, softmask = add_special_tokens(ids), np.pad(softmask, 1)
    return np.array(ids), np.array(softmask)
