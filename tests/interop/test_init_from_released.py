"""`init_from=` accepts a released-format folder (the golden small model) for fine-tuning."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import torch

from plantbimoe import load_pretrained
from tasks.sequence import SequenceTask

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "reference" / "golden_small"


def test_sequence_task_initialises_from_a_released_folder() -> None:
    released = load_pretrained(GOLDEN)
    backbone = released.config.to_dict(released_only=True)
    task = SequenceTask(backbone, partial(torch.optim.AdamW, lr=1e-3), "binary", 2, "auroc")
    report = task.init_from(GOLDEN)
    assert report.clean and report.loaded == len(task.backbone.state_dict())
    for name, tensor in task.backbone.state_dict().items():
        torch.testing.assert_close(tensor, released.backbone.state_dict()[name])
