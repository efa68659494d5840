"""Tiling a long sequence into overlapping windows, and which tile owns each position.

Tiles of `window` bases start every ``window - overlap`` bases; the last one ends at the sequence
end. Where two tiles overlap, the boundary between their owned regions is the middle of the
overlap, so every position takes its output from the tile where it sits farthest from an edge,
and the owned regions cover the sequence exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Tile:
    """Bases [start, end) go into the model; the tile's output is kept for [keep_start, keep_end)."""

    start: int
    end: int
    keep_start: int
    keep_end: int


def tile_spans(length: int, window: int, overlap: int) -> list[Tile]:
    """Tiles covering ``range(length)``; one tile when the sequence fits in `window`."""
    if window < 1 or not 0 <= overlap < window:
        raise ValueError(f"need window >= 1 and 0 <= overlap < window; got {window=}, {overlap=}")
    if length <= window:
        return [Tile(0, length, 0, length)]
    stride = window - overlap
    starts = list(range(0, length - window, stride)) + [length - window]
    bounds = [0] + [(starts[i + 1] + starts[i] + window) // 2 for i in range(len(starts) - 1)] + [length]
    return [Tile(s, s + window, bounds[i], bounds[i + 1]) for i, s in enumerate(starts)]


def half_overlap_tiles(lengths: list[int], window: int) -> list[tuple[int, int, int]]:
    """(sequence index, start, end) of every `window`-long tile of sequences of `lengths`, tiles
    overlapping by half (one tile, the whole sequence, when it fits): how a model fine-tuned on
    `window`-base crops reads longer sequences whole."""
    return [(i, tile.start, tile.end)
            for i, n in enumerate(lengths) for tile in tile_spans(n, window, window // 2)]
