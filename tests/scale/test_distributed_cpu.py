"""Distributed training on CPU with 2 processes (gloo) through the real trainer configs, fit then
test: `trainer=ddp` keeps identical replicas, `trainer=fsdp2` (sharded) trains to the same weights."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from plantbimoe.pretrained import export_pretrained, read_checkpoint

ROOT = Path(__file__).resolve().parents[2]
COMMON = [
    "trainer.accelerator=cpu", "trainer.devices=2", "data.window_length=64", "data.batch_size=2",
    "data.val_windows=4", "data/pretrain=arabidopsis_fasta", "data.train_windows_per_epoch=32",
    "trainer.max_steps=3", "trainer.val_check_interval=3", "scheduler.warmup_steps=1", "test=true",
    "callbacks.progress_bar=null",
]  # fmt: skip


def train(tmp_path: Path, name: str, *overrides: str) -> Path:
    """Run train.py in 2 CPU processes; returns the run folder."""
    out = tmp_path / name
    cmd = [sys.executable, "train.py", *overrides, *COMMON, f"hydra.run.dir={out}"]
    cmd.append(f"paths.log_dir={tmp_path / 'logs'}")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out


def final_weights(run: Path) -> dict[str, torch.Tensor]:
    """The backbone of the run's last checkpoint (a file, or a sharded folder), our names."""
    return read_checkpoint(run / "checkpoints" / "last.ckpt").backbone


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train(tmp_path_factory.mktemp("ddp"), "run", "trainer=ddp")


@pytest.mark.slow
def test_ddp_two_cpu_processes_train_and_keep_identical_weights(ddp_run: Path) -> None:
    checksums = json.loads((ddp_run / "replica_checksums.json").read_text())
    assert len(checksums) == 2
    assert checksums[0] == pytest.approx(checksums[1], rel=1e-9)
    assert (ddp_run / "checkpoints" / "last.ckpt").exists()


@pytest.mark.slow
def test_fsdp2_two_cpu_processes_train_like_ddp(ddp_run: Path, tmp_path: Path) -> None:
    """Same data, seed and steps: the sharded run ends with DDP's weights (up to the order of
    the gradient reductions); its sharded checkpoint folder loads like any checkpoint."""
    run = train(tmp_path, "fsdp2", "trainer=fsdp2")
    assert (run / "checkpoints" / "last.ckpt" / ".metadata").is_file()  # one shard per rank
    assert len(list((run / "checkpoints" / "last.ckpt").glob("*.distcp"))) == 2
    sharded, replicated = final_weights(run), final_weights(ddp_run)
    assert sharded.keys() == replicated.keys() and len(sharded) > 10
    for name, weight in sharded.items():
        torch.testing.assert_close(weight, replicated[name], rtol=1e-4, atol=1e-5, msg=name)
    assert not (run / "replica_checksums.json").exists()  # no replicas to compare when sharded
    folder = export_pretrained(run / "checkpoints" / "last.ckpt", tmp_path / "exported")
    reloaded = read_checkpoint(folder).backbone
    assert all(torch.equal(reloaded[k], v) for k, v in sharded.items())
