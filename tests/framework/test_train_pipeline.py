"""End to end: the default experiment trains, logs to TensorBoard, checkpoints and resumes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from tasks.runner import build, run
from tests.framework.hydra_utils import compose_config

# A short run of the default experiment: tiny windows, few steps, one validation pass.
SMALL = [
    "data.window_length=64",
    "data.batch_size=2",
    "data.val_windows=4",
    "trainer.max_steps=4",
    "trainer.val_check_interval=2",
    "trainer.log_every_n_steps=1",
    "task.log_expert_load_every=1",
    "scheduler.warmup_steps=1",
    "callbacks.progress_bar=null",
]


def _scalar_tags(run_dir: Path) -> set[str]:
    tags: set[str] = set()
    for event_file in run_dir.rglob("events.out.tfevents.*"):
        acc = EventAccumulator(str(event_file), size_guidance={"scalars": 0})
        acc.Reload()
        tags |= set(acc.Tags()["scalars"])
    return tags


@pytest.mark.slow
def test_fast_dev_run_of_default_experiment(tmp_path: Path, embedded_shards: Path) -> None:
    overrides = ["debug=fdr", "data.window_length=64", "data.batch_size=2", "data.val_windows=2"]
    cfg = compose_config(overrides + [f"data.shards={embedded_shards}"], tmp_path)
    assert cfg.task_name == "debug"
    run(cfg)


@pytest.mark.slow
def test_default_run_logs_tags_checkpoints_and_resumes(tmp_path: Path, embedded_shards: Path) -> None:
    shards = f"data.shards={embedded_shards}"
    cfg = compose_config(SMALL + [shards, "test=false"], tmp_path / "first")
    metric = run(cfg)
    assert metric is not None and torch.isfinite(torch.tensor(metric))

    tags = _scalar_tags(tmp_path / "first" / "tensorboard")
    expected = {
        "train/loss", "val/loss", "val/masked_acc", "val/perplexity", "val/baseline_loss",
        "moe/load_balance_loss", "moe/z_loss", "moe/layer1/expert0", "moe/layer3/expert3",
    }
    assert expected <= tags, f"missing TensorBoard tags: {sorted(expected - tags)}"
    assert (tmp_path / "first" / "summary.json").exists()

    last = tmp_path / "first" / "checkpoints" / "last.ckpt"
    assert last.exists()
    state = torch.load(last, map_location="cpu", weights_only=True)
    assert state["global_step"] == 4

    overrides = [o for o in SMALL if not o.startswith("trainer.max_steps")]
    overrides += ["trainer.max_steps=6", f"ckpt_path={last}", shards, "test=false"]
    run(compose_config(overrides, tmp_path / "second"))
    second = tmp_path / "second" / "checkpoints" / "last.ckpt"
    state = torch.load(second, map_location="cpu", weights_only=True)
    assert state["global_step"] == 6
    assert state["tokens_seen"] > 0


@pytest.mark.slow
def test_compiled_run_trains_and_keeps_parameter_names(tmp_path: Path, embedded_shards: Path) -> None:
    """compile=<backend> trains through torch.compile (the cheap aot_eager backend here: the
    same Dynamo trace of the network, without code generation), and the network keeps the
    parameter names of an eager one (nn.Module.compile in place, no `_orig_mod.` prefix), so
    checkpoints, init_from and export read alike."""
    overrides = ["debug=fdr", "data.window_length=64", "data.batch_size=2", "data.val_windows=2"]
    cfg = compose_config([*overrides, f"data.shards={embedded_shards}", "compile=aot_eager"], tmp_path)
    _, task, _ = build(cfg)
    names = set(task.state_dict())
    task.compile_network("aot_eager")
    assert set(task.state_dict()) == names
    networks = [m for m in task.children() if next(m.parameters(), None) is not None]
    assert networks and all(m._compiled_call_impl is not None for m in networks)
    run(cfg)
