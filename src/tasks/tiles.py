"""Tiled evaluation: the outputs of a sequence's tiles (``data.eval_tiles``) averaged into one.

The MPGB datamodule reads a sequence longer than its crop as crop-long tiles and tags each with
the index of its sequence (``batch["sequence_index"]``); the tiles of one sequence may fall in
different batches and, under DDP, on different ranks, so the outputs are kept until the epoch
ends and averaged there.
"""

from __future__ import annotations

import torch
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat


def mean_by_sequence(
    values: torch.Tensor, owners: torch.Tensor, labels: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(the mean of the `values` rows of each owner, that owner's label), owners in ascending
    order. Rows are (tiles, ...) with one owner (sequence index) and label per tile."""
    order, inverse = torch.unique(owners, return_inverse=True)
    sums = torch.zeros((len(order), *values.shape[1:]), dtype=torch.float64, device=values.device)
    sums.index_add_(0, inverse, values.double())
    counts = torch.bincount(inverse, minlength=len(order)).to(sums.dtype)
    first = torch.full((len(order),), len(owners), dtype=torch.int64, device=owners.device)
    first.scatter_reduce_(0, inverse, torch.arange(len(owners), device=owners.device), "amin")
    means = sums / counts.reshape(-1, *([1] * (values.dim() - 1)))
    return means.to(values.dtype), labels[first]


class TileAverager(Metric):
    """Keeps (sequence index, output, label) of every evaluated tile; `compute` returns the
    outputs averaged per sequence and the sequences' labels (gathered across processes)."""

    full_state_update = False

    def __init__(self) -> None:
        super().__init__()
        self.add_state("owners", default=[], dist_reduce_fx="cat")
        self.add_state("outputs", default=[], dist_reduce_fx="cat")
        self.add_state("labels", default=[], dist_reduce_fx="cat")

    def update(self, owners: torch.Tensor, outputs: torch.Tensor, labels: torch.Tensor) -> None:
        self.owners.append(owners)
        self.outputs.append(outputs.float())
        self.labels.append(labels)

    def compute(self) -> tuple[torch.Tensor, torch.Tensor]:
        outputs, owners, labels = (dim_zero_cat(s) for s in (self.outputs, self.owners, self.labels))
        return mean_by_sequence(outputs, owners, labels)
