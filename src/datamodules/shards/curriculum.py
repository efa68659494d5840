"""Sequence-length curriculum: train on short crops first, then longer ones on a step schedule.

Long-context DNA models warm up on short windows (e.g. HyenaDNA's sequence-length warm-up);
here the shard datamodule crops its stored windows to the scheduled length. The new length
reaches the dataloader workers through shared memory and applies from the next batch they
assemble (the few batches already prefetched keep the old length).
"""

from __future__ import annotations

from collections.abc import Sequence

from lightning import Callback, LightningModule, Trainer


class SequenceLengthCurriculum(Callback):
    """Sets the training crop length from `stages`: [[first_step, length], ...], steps ascending.

    Example: [[0, 1024], [2000, 4096], [6000, 32768]]. The length in force at the current global
    step is also set when training starts or resumes from a checkpoint.
    """

    def __init__(self, stages: Sequence[Sequence[int]]) -> None:
        stages = sorted((int(step), int(length)) for step, length in stages)
        if not stages or stages[0][0] != 0:
            raise ValueError(f"stages must start at step 0, got {stages}")
        if any(length < 1 for _, length in stages):
            raise ValueError(f"lengths must be positive, got {stages}")
        self.stages = stages
        self.current: int | None = None

    def length_at(self, step: int) -> int:
        """The scheduled length at a global step."""
        return [length for first, length in self.stages if first <= step][-1]

    def _apply(self, trainer: Trainer) -> None:
        length = self.length_at(trainer.global_step)
        if length == self.current:
            return
        datamodule = trainer.datamodule
        if datamodule is None or not hasattr(datamodule, "set_train_length"):
            raise TypeError("SequenceLengthCurriculum needs a datamodule with set_train_length(length), "
                            "such as datamodules.shards.datamodule.ShardDataModule")
        datamodule.set_train_length(length)
        self.current = length

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._apply(trainer)

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: object,
                           batch: object, batch_idx: int) -> None:
        self._apply(trainer)
