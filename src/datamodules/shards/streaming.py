"""Cut a FASTA file into windows while streaming: memory stays bounded whatever the contig size.

Window arithmetic (0-based, half-open): windows of `length` bases start every `length - overlap`
bases from 0; when the last of them ends before the contig does, one more window is aligned to
the contig's end, so every base of a contig at least `length` long lies in some window. Contigs
shorter than `length` give no window.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import numpy as np

from plantbimoe.fasta import read_fasta_chunks
from plantbimoe.tokenizer import N_ID, encode_with_softmask

DEFAULT_CHUNK = 1 << 24


def window_starts(contig_length: int, length: int, overlap: int) -> np.ndarray:
    """Start positions of the windows of one contig (see the module docstring)."""
    if length < 1 or not 0 <= overlap < length:
        raise ValueError(f"need window length >= 1 and 0 <= overlap < length; got {length}, {overlap}")
    if contig_length < length:
        return np.zeros(0, dtype=np.int64)
    starts = np.arange(0, contig_length - length + 1, length - overlap, dtype=np.int64)
    if starts[-1] + length < contig_length:
        starts = np.append(starts, contig_length - length)
    return starts


@dataclass(frozen=True)
class Window:
    """One window: token ids (uint8) and soft-mask flags of contig[start:start + len(tokens)]."""

    contig: str
    start: int
    tokens: np.ndarray
    softmask: np.ndarray
    n_count: int

    @property
    def end(self) -> int:
        return self.start + len(self.tokens)


def stream_windows(path: str, lengths: Mapping[str, int], length: int, overlap: int,
                   chunk_size: int = DEFAULT_CHUNK, skip: Callable[[str], bool] | None = None,
                   on_bases: Callable[[int], None] | None = None) -> Iterator[Window]:
    """Every window of every contig of `path`, in file order.

    `lengths` (from a first pass) gives each contig's length; contigs for which `skip(name)` is
    true, or shorter than `length`, are read past without encoding. `on_bases(n)` reports
    progress in bases. Memory: about chunk_size + length bases.
    """
    name: str | None = None
    starts = np.zeros(0, dtype=np.int64)
    next_window = 0
    buffer_start = 0
    tokens = np.zeros(0, dtype=np.uint8)
    softmask = np.zeros(0, dtype=bool)
    active = False
    for chunk in read_fasta_chunks(path, chunk_size):
        if chunk.name != name:
            name = chunk.name
            starts = window_starts(lengths[name], length, overlap)
            active = len(starts) > 0 and not (skip is not None and skip(name))
            next_window, buffer_start = 0, 0
            tokens, softmask = np.zeros(0, dtype=np.uint8), np.zeros(0, dtype=bool)
        if on_bases is not None:
            on_bases(len(chunk.sequence))
        if not active:
            continue
        new_tokens, new_softmask = encode_with_softmask(chunk.sequence)
        tokens = np.concatenate([tokens, new_tokens]) if len(tokens) else new_tokens
        softmask = np.concatenate([softmask, new_softmask]) if len(softmask) else new_softmask
        buffer_end = buffer_start + len(tokens)
        while next_window < len(starts) and starts[next_window] + length <= buffer_end:
            offset = int(starts[next_window]) - buffer_start
            window = tokens[offset:offset + length]
            yield Window(name, int(starts[next_window]), window, softmask[offset:offset + length],
                         int(np.count_nonzero(window == N_ID)))
            next_window += 1
        keep_from = (int(starts[next_window]) if next_window < len(starts) else buffer_end) - buffer_start
        tokens, softmask = tokens[keep_from:], softmask[keep_from:]
        buffer_start += keep_from
