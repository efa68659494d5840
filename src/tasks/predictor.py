"""Apply a fine-tuned sequence-task model without Lightning.

Accepts a ``.ckpt`` written by train.py for a sequence task, or a folder written by
``plantbimoe export`` from one (config.json, model.safetensors with ``head.*`` tensors, task.json);
both are read without unpickling code (see plantbimoe.pretrained). The forward pass is the one
the task module trains and evaluates: backbone, then the pooled head on ``[CLS] bases [SEP]``,
with optional averaging over the reverse complement.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from plantbimoe import PlantBiMoEModel
from plantbimoe.inference.forward import forward_batches
from plantbimoe.inference.runtime import Runtime
from plantbimoe.pretrained import read_checkpoint
from plantbimoe.tokenizer import add_special_tokens, reverse_complement_padded
from tasks.heads import SequenceHead
from tasks.metrics import output_size


class SequencePredictor(nn.Module):
    """Backbone + head of a fine-tuned model, in eval mode. ``forward`` returns the head's raw
    outputs (B, 1) or (B, K); `rc_average` averages them over the batch and its reverse complement."""

    def __init__(self, path: str | Path, rc_average: bool | None = None) -> None:
        super().__init__()
        checkpoint = read_checkpoint(path)
        if checkpoint.task is None:
            raise ValueError(f"{path}: a masked-LM (pretraining) model; predict needs a fine-tuned one")
        task = checkpoint.task
        self.task_type, self.num_labels = task["task_type"], int(task["num_labels"])
        self.rc_average = bool(task.get("rc_eval")) if rc_average is None else rc_average
        self.backbone = PlantBiMoEModel(checkpoint.config, initialize=False)
        self.backbone.load_state_dict(checkpoint.backbone, strict=True)
        width = output_size(self.task_type, self.num_labels)
        self.head = SequenceHead(checkpoint.config.d_model, width, task.get("pooling") or "mean",
                                 task.get("head_hidden_size"), dropout=0.0,
                                 window=task.get("pooling_window"))
        try:
            self.head.load_state_dict(checkpoint.head, strict=True)
        except RuntimeError as e:
            raise ValueError(f"{path}: head tensors do not fit the task's head: {e}") from e
        self.eval()

    def _outputs(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.backbone(input_ids, attention_mask=attention_mask).last_hidden_state
        return self.head(hidden, attention_mask)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        outputs = self._outputs(input_ids, attention_mask)
        if self.rc_average:
            rc_ids = reverse_complement_padded(input_ids, attention_mask)
            outputs = 0.5 * (outputs + self._outputs(rc_ids, attention_mask))
        return outputs

    def predict(
        self, sequences: Sequence[np.ndarray], runtime: Runtime, desc: str | None = None
    ) -> np.ndarray:
        """float32 raw outputs (N, 1) or (N, K) for nucleotide-id sequences, in input order."""
        rows = [add_special_tokens(s) for s in sequences]
        results = np.zeros((len(rows), output_size(self.task_type, self.num_labels)), dtype=np.float32)
        for index, out, _ in forward_batches(self, rows, runtime, desc=desc):
            results[index] = out.float().cpu().numpy()
        return results


def probabilities(task_type: str, outputs: np.ndarray) -> np.ndarray:
    """Class or label probabilities (N, K) of raw outputs; regression values pass through (N, 1).
    Binary gives (N, 2): p(class 0), p(class 1)."""
    t = torch.from_numpy(outputs).double()
    if task_type == "binary":
        p1 = torch.sigmoid(t)
        return torch.cat([1 - p1, p1], dim=1).numpy()
    if task_type == "multiclass":
        return torch.softmax(t, dim=1).numpy()
    if task_type == "multilabel":
        return torch.sigmoid(t).numpy()
    return outputs.astype(np.float64)


def predictions(task_type: str, probs: np.ndarray, threshold: float = 0.5) -> list[str]:
    """One prediction string per row: class id, ';'-joined 0/1 labels, or the regression value."""
    if task_type == "binary":
        return [str(int(p >= threshold)) for p in probs[:, 1]]
    if task_type == "multiclass":
        return [str(int(i)) for i in probs.argmax(axis=1)]
    if task_type == "multilabel":
        return [";".join(str(int(p >= threshold)) for p in row) for row in probs]
    return [f"{v:.6g}" for v in probs[:, 0]]
