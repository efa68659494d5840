"""Torch dataset and collator for sequence-task batches (docs/CONTRACTS.md, "Batches")."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from datamodules.mpgb.sequences import LabeledSequences
from plantbimoe.tokenizer import add_special_tokens, pad_batch, reverse_complement

Item = tuple[np.ndarray, np.ndarray]


class SequenceDataset(Dataset[Item]):
    """Items are (token ids with [CLS]/[SEP] when asked, label).

    A key is an index, or (index, reverse-complement flag) as the training batch sampler
    hands them out for RC augmentation (datamodules.mpgb.bucketing).
    """

    def __init__(self, data: LabeledSequences, add_special: bool = True) -> None:
        self.data = data
        self.add_special = add_special

    def __len__(self) -> int:
        return len(self.data)

    def lengths(self) -> np.ndarray:
        """Token counts per item (for length bucketing)."""
        return self.data.lengths() + (2 if self.add_special else 0)

    def __getitem__(self, key: int | tuple[int, bool]) -> Item:
        index, flip = key if isinstance(key, tuple) else (key, False)
        ids = self.data.sequence(index)
        if flip:
            ids = reverse_complement(ids)
        if self.add_special:
            ids = add_special_tokens(ids)
        return ids, self.data.label(index)


class SequenceCollator:
    """Right-pad a list of items into `input_ids`, `attention_mask` (bool) and `labels`."""

    def __init__(self, pad_to_multiple_of: int | None = None) -> None:
        self.pad_to_multiple_of = pad_to_multiple_of

    def __call__(self, items: Sequence[Item]) -> dict[str, torch.Tensor]:
        input_ids, attention_mask = pad_batch([ids for ids, _ in items], self.pad_to_multiple_of)
        labels = torch.from_numpy(np.stack([np.asarray(label) for _, label in items]))
        return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}
