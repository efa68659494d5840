"""Torch dataset and collator for sequence-task batches (docs/CONTRACTS.md, "Batches")."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from datamodules.mpgb.sequences import LabeledSequences
from plantbimoe.inference.tiling import half_overlap_tiles
from plantbimoe.sequence_task import central_crop
from plantbimoe.tokenizer import add_special_tokens, pad_batch, reverse_complement

Item = tuple[np.ndarray, np.ndarray] | tuple[np.ndarray, np.ndarray, int]


class SequenceDataset(Dataset[Item]):
    """Items are (token ids with [CLS]/[SEP] when asked, label).

    A key is an index, (index, reverse-complement flag) or (index, flag, crop position in
    [0, 1)) as the training batch sampler hands them out (datamodules.mpgb.bucketing). With
    `crop` a sequence longer than `crop` bases is cut to `crop` bases: those that start at the
    key's crop position (that fraction of its possible starts: a random window per epoch in
    training), or the central ones for a key without one (evaluation).

    With `tiles` (evaluation; needs `crop`) the items are tiles instead: each sequence longer
    than `crop` is read as `crop`-long windows overlapping by half, and an item is
    (ids, label, index of its sequence), so that the outputs of one sequence's tiles can be
    averaged (`tasks.tiles`).
    """

    def __init__(self, data: LabeledSequences, add_special: bool = True, crop: int | None = None,
                 tiles: bool = False) -> None:
        if crop is not None and crop < 1:
            raise ValueError(f"crop must be a positive number of bases or null, got {crop}")
        if tiles and crop is None:
            raise ValueError("tiles need a crop: the tile length")
        self.data = data
        self.add_special = add_special
        self.crop = crop
        self.tiles = tile_table(data.lengths(), crop) if tiles else None

    def __len__(self) -> int:
        return len(self.data) if self.tiles is None else len(self.tiles)

    def lengths(self) -> np.ndarray:
        """Token counts per item (for length bucketing), after the crop."""
        if self.tiles is not None:
            bases = self.tiles[:, 2] - self.tiles[:, 1]
        else:
            bases = self.data.lengths()
            if self.crop is not None:
                bases = np.minimum(bases, self.crop)
        return bases + (2 if self.add_special else 0)

    def __getitem__(self, key: int | tuple[int, bool] | tuple[int, bool, float]) -> Item:
        if self.tiles is not None:
            index, start, end = (int(v) for v in self.tiles[key])
            ids = self.data.sequence(index)[start:end]
            return (add_special_tokens(ids) if self.add_special else ids), self.data.label(index), index
        index, flip, where = (key + (None,))[:3] if isinstance(key, tuple) else (key, False, None)
        ids = self.data.sequence(index)
        if where is None:
            ids = central_crop(ids, self.crop)
        elif self.crop is not None and len(ids) > self.crop:
            spare = len(ids) - self.crop
            start = min(int(where * (spare + 1)), spare)
            ids = ids[start : start + self.crop]
        if flip:
            ids = reverse_complement(ids)
        if self.add_special:
            ids = add_special_tokens(ids)
        return ids, self.data.label(index)


def tile_table(lengths: np.ndarray, crop: int) -> np.ndarray:
    """(tiles, 3) int64 rows [sequence index, start, end]: every sequence in `crop`-long windows
    overlapping by half (one window, the whole sequence, when it fits)."""
    return np.asarray(half_overlap_tiles(lengths.tolist(), crop), dtype=np.int64).reshape(-1, 3)


class SequenceCollator:
    """Right-pad a list of items into `input_ids`, `attention_mask` (bool) and `labels`, plus
    `sequence_index` for tiles (items of three)."""

    def __init__(self, pad_to_multiple_of: int | None = None) -> None:
        self.pad_to_multiple_of = pad_to_multiple_of

    def __call__(self, items: Sequence[Item]) -> dict[str, torch.Tensor]:
        input_ids, attention_mask = pad_batch([item[0] for item in items], self.pad_to_multiple_of)
        labels = torch.from_numpy(np.stack([np.asarray(item[1]) for item in items]))
        batch = {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}
        if items and len(items[0]) == 3:
            batch["sequence_index"] = torch.tensor([item[2] for item in items], dtype=torch.int64)  # type: ignore[misc]
        return batch
