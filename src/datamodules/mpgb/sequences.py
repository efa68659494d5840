"""Labelled sequences stored flat: token ids of all sequences in one uint8 array plus offsets.

The arrays may be memory-mapped from a token store (datamodules.mpgb.store); `subset` then
returns a view that selects rows without copying tokens, and pickling (spawned dataloader
workers) sends the store's path, not its contents.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

META, TOKENS, OFFSETS, LABELS = "meta.json", "tokens.u8", "offsets.i64", "labels.bin"


class LabeledSequences:
    """N sequences: `sequence(i)` token ids (uint8), `labels[i]` their label.

    `labels` is (N,) int64 class ids, (N, K) float32 multi-label vectors or (N,) float32 targets.
    `tokens` and `offsets` give the flat layout (`tokens[offsets[i]:offsets[i + 1]]` is sequence
    i); on a row view they are built (copied) on first access.
    """

    def __init__(
        self,
        tokens: np.ndarray,
        offsets: np.ndarray,
        labels: np.ndarray,
        source: str,
        rows: np.ndarray | None = None,
        store: Path | None = None,
    ) -> None:
        self._tokens, self._offsets, self._labels = tokens, offsets, labels
        self.source, self.rows, self.store = source, rows, store
        self._flat: tuple[np.ndarray, np.ndarray] | None = None

    @classmethod
    def from_store(cls, store: Path) -> LabeledSequences:
        """Map a token store folder (written by datamodules.mpgb.store); labels copy-on-write."""
        meta = json.loads((store / META).read_text())
        n, bases = meta["records"], meta["bases"]
        shape = (n, *meta["label_shape"])
        tokens = np.memmap(store / TOKENS, dtype=np.uint8, mode="r", shape=(bases,))
        offsets = np.memmap(store / OFFSETS, dtype=np.int64, mode="r", shape=(n + 1,))
        labels = np.memmap(store / LABELS, dtype=np.dtype(meta["label_dtype"]), mode="c", shape=shape)
        return cls(np.asarray(tokens), np.asarray(offsets), np.asarray(labels), meta["source"], store=store)

    def __len__(self) -> int:
        return len(self._offsets) - 1 if self.rows is None else len(self.rows)

    def _row(self, index: int) -> int:
        return index if self.rows is None else int(self.rows[index])

    @property
    def labels(self) -> np.ndarray:
        return self._labels if self.rows is None else self._labels[self.rows]

    @property
    def tokens(self) -> np.ndarray:
        return self._tokens if self.rows is None else self._flatten()[0]

    @property
    def offsets(self) -> np.ndarray:
        return self._offsets if self.rows is None else self._flatten()[1]

    def lengths(self) -> np.ndarray:
        """Sequence lengths in bases."""
        lengths = np.diff(self._offsets)
        return lengths if self.rows is None else lengths[self.rows]

    def sequence(self, index: int) -> np.ndarray:
        """Token ids of sequence `index` (a view)."""
        row = self._row(index)
        return self._tokens[self._offsets[row] : self._offsets[row + 1]]

    def label(self, index: int) -> np.ndarray:
        """Label of sequence `index` (a 0-d or 1-d array)."""
        return self._labels[self._row(index)]

    def subset(self, indices: np.ndarray) -> LabeledSequences:
        """The sequences at `indices`, in that order (a row view sharing the token array)."""
        indices = np.asarray(indices, dtype=np.int64)
        rows = indices if self.rows is None else self.rows[indices]
        return LabeledSequences(self._tokens, self._offsets, self._labels, self.source, rows, self.store)

    def _flatten(self) -> tuple[np.ndarray, np.ndarray]:
        if self._flat is None:
            assert self.rows is not None
            starts, lengths = self._offsets[self.rows], np.diff(self._offsets)[self.rows]
            offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
            gather = np.repeat(starts - offsets[:-1], lengths) + np.arange(offsets[-1])
            self._flat = (np.asarray(self._tokens[gather]), offsets)
        return self._flat

    def __reduce__(self) -> tuple[Any, ...]:
        if self.store is None:
            return (LabeledSequences, (self._tokens, self._offsets, self._labels, self.source, self.rows))
        return (_reopen, (self.store, self.rows))


def _reopen(store: Path, rows: np.ndarray | None) -> LabeledSequences:
    data = LabeledSequences.from_store(store)
    return data if rows is None else data.subset(rows)
