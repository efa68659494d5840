"""Exact resume: a pretraining run interrupted by SIGINT mid-epoch and resumed into its own folder
ends with the same weights, bit for bit, as an uninterrupted run; it keeps one TensorBoard run."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import torch
from lightning import Callback, LightningModule, Trainer

from tasks.runner import run
from tests.framework.hydra_utils import compose_config
from tests.framework.test_train_pipeline import SMALL

RUN = [o for o in SMALL if not o.startswith(("trainer.max_steps", "trainer.val_check_interval"))]
RUN += ["trainer.max_steps=6", "trainer.val_check_interval=3", "test=false", "data.shuffle_buffer=16"]


class InterruptAt(Callback):
    """Sends this process SIGINT (Ctrl-C) after optimizer step `step`."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, *args: object) -> None:
        if trainer.global_step == self.step:
            # a suite started in the background (`make test &`) inherits SIGINT ignored: Ctrl-C's
            # handler first, as in a terminal
            signal.signal(signal.SIGINT, signal.default_int_handler)
            os.kill(os.getpid(), signal.SIGINT)


class KeepWeights(Callback):
    """Writes the final weights to `path` when training ends (last.ckpt follows the best step)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        torch.save({"step": trainer.global_step, "weights": pl_module.state_dict()}, self.path)


def _keep(folder: Path) -> list[str]:
    target = f"{KeepWeights.__module__}.KeepWeights"
    return [f"+callbacks.keep._target_={target}", f"+callbacks.keep.path={folder}/w.pt"]


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    state = torch.load(folder / "w.pt", map_location="cpu", weights_only=True)
    assert state["step"] == 6
    return state["weights"]


# the length curriculum of experiment=pretrain_arabidopsis_small, its switch between the resume point
# (step 3) and the end: the resumed run must crop as the uninterrupted one did
CURRICULUM = ["+callbacks.curriculum._target_=datamodules.shards.curriculum.SequenceLengthCurriculum",
              "+callbacks.curriculum.stages=[[0,32],[4,64]]"]


@pytest.mark.slow
@pytest.mark.parametrize("extra", [[], CURRICULUM], ids=["plain", "curriculum"])
def test_interrupted_and_resumed_run_equals_uninterrupted(
    tmp_path: Path, embedded_shards: Path, extra: list[str]
) -> None:
    shards = f"data.shards={embedded_shards}"
    args = [*RUN, *extra]
    run(compose_config([*args, shards, *_keep(tmp_path / "straight")], tmp_path / "straight"))

    folder = tmp_path / "interrupted"
    target = f"{InterruptAt.__module__}.InterruptAt"
    stop = [f"+callbacks.interrupt._target_={target}", "+callbacks.interrupt.step=5"]
    try:
        with pytest.raises(SystemExit):  # Lightning exits 1 after a KeyboardInterrupt
            run(compose_config([*args, shards, *stop], folder))
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)  # Lightning leaves Ctrl-C ignored
    summary = (folder / "summary.json").read_text()
    assert '"interrupted_by": "KeyboardInterrupt"' in summary and '"global_step": 5' in summary
    saved = torch.load(folder / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert saved["global_step"] == 3
    loader_state = saved["loops"]["fit_loop"]["state_dict"]["combined_loader"][0]
    assert loader_state["batches"] == 3  # the stream position

    run(compose_config([*args, shards, "ckpt_path=last", *_keep(folder)], folder))
    straight, resumed = _weights(tmp_path / "straight"), _weights(folder)
    assert straight.keys() == resumed.keys()
    different = [k for k in straight if not torch.equal(straight[k], resumed[k])]
    assert not different, f"weights differ after resume: {different[:5]}"
    assert [p.name for p in folder.iterdir() if p.is_dir()].count("tensorboard") == 1
    assert len(list((folder / "tensorboard").glob("events.out.tfevents.*"))) == 2  # one run, two sessions
