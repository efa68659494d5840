"""Runs that must not mislead: validation always happens once, and a failed run says why in one
line, logs the traceback to train.log, exits non-zero and marks its folder FAILED."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tasks.failure import MARKER, guarded_run
from tasks.runner import run
from tests.framework.hydra_utils import compose_config
from tests.framework.test_train_pipeline import SMALL

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_interval_beyond_the_run_is_clamped_so_validation_and_a_checkpoint_happen(
        tmp_path: Path, embedded_shards: Path, caplog: pytest.LogCaptureFixture) -> None:
    overrides = [o for o in SMALL if not o.startswith(("trainer.max_steps", "trainer.val_check_interval"))]
    overrides += ["trainer.max_steps=2", "trainer.val_check_interval=40", "test=false",
                  f"data.shards={embedded_shards}"]
    with caplog.at_level(logging.INFO, logger="tasks.runner"):
        metric = run(compose_config(overrides, tmp_path))
    assert metric is not None  # val/loss was logged
    assert "val_check_interval=40 is beyond this run's 2 training batches" in caplog.text
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()


def test_unreadable_checkpoint_fails_in_one_line_with_a_marker(tmp_path: Path,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    bad = tmp_path / "half.ckpt"
    bad.write_bytes(b"PK\x03\x04 truncated")
    cfg = compose_config([f"ckpt_path={bad}"], tmp_path / "run")
    with pytest.raises(SystemExit) as exit_info:
        guarded_run(cfg)
    assert exit_info.value.code == 1
    marker = (tmp_path / "run" / MARKER).read_text()
    assert str(bad) in marker and "not a PyTorch checkpoint" in marker
    assert "Run failed: ckpt_path=" in caplog.text


@pytest.mark.slow
def test_train_py_reports_a_bad_config_value_in_one_line(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("HYDRA_FULL_ERROR", None)
    result = subprocess.run([sys.executable, "train.py", "data.batch_size=0", f"hydra.run.dir={run_dir}"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    lines = result.stderr.splitlines() + result.stdout.splitlines()
    errors = [line for line in lines if "Run failed" in line]
    assert len(errors) == 1, result.stderr
    assert "data: batch_size and window_length must be positive" in errors[0]
    assert "Traceback" not in result.stderr
    assert "batch_size and window_length must be positive" in (run_dir / MARKER).read_text()
    log = (run_dir / "train.log").read_text()
    assert "Run failed" in log and "Traceback (most recent call last)" in log
