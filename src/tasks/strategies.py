"""Lightning strategies of our trainer configs."""

from __future__ import annotations

from typing import Any

from lightning.pytorch.strategies import ModelParallelStrategy


class FSDP2Strategy(ModelParallelStrategy):
    """Fully sharded data parallel with FSDP2 (``torch.distributed.fsdp.fully_shard``).

    Lightning's ``ModelParallelStrategy`` with every rank in one data-parallel dimension (no tensor
    parallelism), so each rank reads its own share of the data and holds 1/world of the weights,
    gradients and optimizer state (the parent's data/tensor-parallel sizes are set from the world
    size at setup). The task's ``configure_model`` shards the blocks. Works on CPU
    (gloo) and GPU (NCCL); checkpoints are sharded folders unless ``save_distributed_checkpoint``
    is False (then rank 0 writes one full file). ``reshard_after_forward=False`` keeps each
    block's gathered weights from its forward to its backward (ZeRO-2-like: one all-gather per
    step instead of two, for the memory of the full weights).
    """

    def __init__(self, *args: Any, reshard_after_forward: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reshard_after_forward = reshard_after_forward

    def setup_environment(self) -> None:
        self._data_parallel_size = self.num_nodes * self.num_processes
        self._tensor_parallel_size = 1
        super().setup_environment()
