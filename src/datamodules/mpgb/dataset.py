"""Torch dataset and collator for sequence-task batches (docs/CONTRACTS.md, "Batches")."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from datamodules.mpgb.readers import LabeledSequences
from plantbimoe.tokenizer import add_special_tokens, pad_batch, reverse_complement

Item = tuple[np.ndarray, np.ndarray]


class SequenceDataset(Dataset[Item]):
    """Items are (token ids with [CLS]/[SEP] when asked, label).

    With ``rc_prob > 0`` each access reverse-complements the sequence with that probability
    (training augmentation; the random draw uses torch's generator, seeded per worker).
    """

    def __init__(self, data: LabeledSequences, rc_prob: float = 0.0, add_special: bool = True) -> None:
        if not 0.0 <= rc_prob <= 1.0:
            raise ValueError(f"rc_prob must lie in [0, 1], got {rc_prob}")
        self.data = data
        self.rc_prob = rc_prob
        self.add_special = add_special

    def __len__(self) -> int:
        return len(self.data)

    def lengths(self) -> np.ndarray:
        """Token counts per item (for length bucketing)."""
        return self.data.lengths() + (2 if self.add_special else 0)

    def __getitem__(self, index: int) -> Item:
        ids = self.data.sequence(index)
        if self.rc_prob > 0 and float(torch.rand(())) < self.rc_prob:
            ids = reverse_complement(ids)
        if self.add_special:
            ids = add_special_tokens(ids)
        return ids, self.data.labels[index]


class SequenceCollator:
    """Right-pad a list of items into `input_ids`, `attention_mask` (bool) and `labels`."""

    def __init__(self, pad_to_multiple_of: int | None = None) -> None:
        self.pad_to_multiple_of = pad_to_multiple_of

    def __call__(self, items: Sequence[Item]) -> dict[str, torch.Tensor]:
        input_ids, attention_mask = pad_batch([ids for ids, _ in items], self.pad_to_multiple_of)
        labels = torch.from_numpy(np.stack([np.asarray(label) for _, label in items]))
        return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}
