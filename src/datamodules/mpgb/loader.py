"""The MPGB training loader: a DataLoader over a `BucketBatchSampler` that Lightning checkpoints.

Lightning saves `state_dict()` of every training loader that has `state_dict`/`load_state_dict`
(in the fit loop's `combined_loader` entry of the checkpoint) and loads it before the resumed
run's first pass. This loader tells the sampler the epoch before each pass (Lightning's own
`set_epoch` reaches only a loader's `sampler`, not its batch sampler) and counts the batches it
hands over, so the saved position is what training consumed, not what workers prefetched.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from torch.utils.data import DataLoader

from datamodules.mpgb.bucketing import BucketBatchSampler
from datamodules.mpgb.dataset import SequenceDataset


class ResumableLoader(DataLoader):
    """Epoch from `epoch_fn` (the trainer's current epoch) or, without one, the passes counted."""

    def __init__(
        self,
        dataset: SequenceDataset,
        batch_sampler: BucketBatchSampler,
        epoch_fn: Callable[[], int | None],
        **kwargs: Any,
    ) -> None:
        super().__init__(dataset, batch_sampler=batch_sampler, **kwargs)
        self.epoch_fn, self.passes = epoch_fn, 0

    def __iter__(self):  # noqa: ANN204 - DataLoader's iterator type
        epoch = self.epoch_fn()
        self.batch_sampler.set_epoch(self.passes if epoch is None else epoch)
        self.passes += 1
        return self._counted(super().__iter__())

    def _counted(self, batches: Iterator[Any]) -> Iterator[Any]:
        for batch in batches:
            self.batch_sampler.position += 1
            yield batch

    def state_dict(self) -> dict[str, Any]:
        return self.batch_sampler.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.batch_sampler.load_state_dict(state)
