"""Sequence-task model beside the masked-LM one: the backbone, then the pooled head
(`plantbimoe.heads.SequenceHead`) on ``[CLS] bases [SEP]``, optionally averaged over the reverse
complement. `tasks.sequence.SequenceTask` trains this forward pass; ``plantbimoe predict`` applies
it through `PlantBiMoEForSequenceTask.from_pretrained` without Lightning.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .backbone import PlantBiMoEModel
from .config import PlantBiMoEConfig
from .heads import SequenceHead
from .inference.forward import forward_batches
from .inference.runtime import Runtime
from .inference.tiling import half_overlap_tiles
from .pretrained import read_checkpoint
from .task_types import task_type as spec_of
from .tokenizer import add_special_tokens, reverse_complement_padded


def rc_averaged(
    forward: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
) -> torch.Tensor:
    """The mean of ``forward(ids, mask)`` over a right-padded batch and its reverse complement
    (specials and padding keep their positions)."""
    rc_ids = reverse_complement_padded(input_ids, attention_mask)
    return 0.5 * (forward(input_ids, attention_mask) + forward(rc_ids, attention_mask))


def central_crop(ids: np.ndarray, length: int | None) -> np.ndarray:
    """The central `length` bases of `ids` (all of them when shorter, or `length` is None or 0):
    what a model fine-tuned with ``data.crop`` read in validation and test."""
    if not length or len(ids) <= length:
        return ids
    start = (len(ids) - length) // 2
    return ids[start : start + length]


class PlantBiMoEForSequenceTask(nn.Module):
    """Backbone + head of a sequence task (`plantbimoe.task_types`). ``forward`` returns the head's
    raw outputs (B, 1) or (B, K); with `rc_average` the mean over the batch and its reverse
    complement. `crop` is the data's crop the model was fine-tuned with (None: whole sequences):
    ``plantbimoe predict`` reads the central `crop` bases of longer sequences, as evaluation did,
    or, with `eval_tiles` (evaluation read tiles), all of them as tiles (`predict_tiled`)."""

    def __init__(
        self,
        config: PlantBiMoEConfig,
        task_type: str,
        num_labels: int,
        pooling: str = "mean",
        head_hidden_size: int | None = None,
        dropout: float = 0.0,
        pooling_window: int | None = None,
        rc_average: bool = False,
        initialize: bool = True,
        crop: int | None = None,
        eval_tiles: bool = False,
    ) -> None:
        super().__init__()
        self.config, self.task_type, self.num_labels = config, task_type, int(num_labels)
        self.spec = spec_of(task_type)
        self.rc_average, self.crop, self.eval_tiles = rc_average, crop, bool(eval_tiles and crop)
        self.backbone = PlantBiMoEModel(config, initialize=initialize)
        width = self.spec.width(self.num_labels)
        self.head = SequenceHead(config.d_model, width, pooling, head_hidden_size, dropout, pooling_window)

    @classmethod
    def from_pretrained(cls, path: str | Path, rc_average: bool | None = None) -> PlantBiMoEForSequenceTask:
        """A fine-tuned model (a train.py ``.ckpt`` or its exported folder, see
        `plantbimoe.pretrained.read_checkpoint`) in eval mode on CPU; `rc_average` None takes the
        task's ``rc_eval``."""
        checkpoint = read_checkpoint(path)
        task = checkpoint.task
        if task is None:
            raise ValueError(f"{path}: a masked-LM (pretraining) model; predict needs a fine-tuned one")
        model = cls(
            checkpoint.config, task["task_type"], task["num_labels"], task.get("pooling") or "mean",
            task.get("head_hidden_size"), pooling_window=task.get("pooling_window"),
            rc_average=bool(task.get("rc_eval")) if rc_average is None else rc_average, initialize=False,
            crop=task.get("crop"), eval_tiles=bool(task.get("eval_tiles")),
        )
        model.backbone.load_state_dict(checkpoint.backbone, strict=True)
        try:
            model.head.load_state_dict(checkpoint.head, strict=True)
        except RuntimeError as e:
            raise ValueError(f"{path}: head tensors do not fit the task's head: {e}") from e
        return model.eval()

    def outputs(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Raw head outputs of the forward strand."""
        hidden = self.backbone(input_ids, attention_mask=attention_mask).last_hidden_state
        return self.head(hidden, attention_mask)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        if self.rc_average:
            return rc_averaged(self.outputs, input_ids, attention_mask)
        return self.outputs(input_ids, attention_mask)

    def predict(
        self, sequences: Sequence[np.ndarray], runtime: Runtime, desc: str | None = None
    ) -> np.ndarray:
        """float32 raw outputs (N, 1) or (N, K) for nucleotide-id sequences, in input order."""
        rows = [add_special_tokens(s) for s in sequences]
        results = np.zeros((len(rows), self.spec.width(self.num_labels)), dtype=np.float32)
        for index, out, _ in forward_batches(self, rows, runtime, desc=desc):
            results[index] = out.float().cpu().numpy()
        return results

    def predict_tiled(
        self, sequences: Sequence[np.ndarray], window: int, runtime: Runtime, desc: str | None = None
    ) -> np.ndarray:
        """Like `predict`, but a sequence longer than `window` is read as windows of `window` bases
        overlapping by half, and its raw outputs are the mean of theirs."""
        tiles = half_overlap_tiles([len(ids) for ids in sequences], window)
        owners = [i for i, _, _ in tiles]
        pieces = [sequences[i][start:end] for i, start, end in tiles]
        outputs = self.predict(pieces, runtime, desc)
        sums = np.zeros((len(sequences), outputs.shape[1]), dtype=np.float64)
        np.add.at(sums, np.asarray(owners), outputs)
        return (sums / np.bincount(owners, minlength=len(sequences))[:, None]).astype(np.float32)
