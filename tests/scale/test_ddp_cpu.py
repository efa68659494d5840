"""Data-parallel training on CPU: 2 processes (gloo) through the real `trainer=ddp` config."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_ddp_two_cpu_processes_train_and_keep_identical_weights(tmp_path: Path) -> None:
    out = tmp_path / "run"
    cmd = [
        sys.executable, "train.py", "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2",
        "data.window_length=64", "data.batch_size=2", "data.val_windows=4",
        "data/pretrain=arabidopsis_fasta", "data.train_windows_per_epoch=32", "trainer.max_steps=3",
        "trainer.val_check_interval=3", "scheduler.warmup_steps=1", "test=false",
        "callbacks.progress_bar=null", f"hydra.run.dir={out}", f"paths.log_dir={tmp_path / 'logs'}",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    checksums = json.loads((out / "replica_checksums.json").read_text())
    assert len(checksums) == 2
    assert checksums[0] == pytest.approx(checksums[1], rel=1e-9)
    assert (out / "checkpoints" / "last.ckpt").exists()
