"""The headline metric's direction reaches the best tracker, checkpointing, early stopping and
the k-mer baseline: an mse run keeps its lowest-error checkpoint, not its worst."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from lightning import Callback, Trainer
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from omegaconf import OmegaConf

from baselines.kmer import run_baseline
from tasks.metrics import monitor_mode
from tasks.runner import _callbacks, build
from tests.finetune.test_sequence_task import make_datamodule, make_task
from tests.framework.hydra_utils import compose_config


class History(Callback):
    """(global step, val/mse) of every validation."""

    def __init__(self) -> None:
        self.values: list[tuple[int, float]] = []

    def on_validation_end(self, trainer: Trainer, pl_module) -> None:
        if not trainer.sanity_checking:
            self.values.append((trainer.global_step, float(trainer.callback_metrics["val/mse"])))


def test_monitor_modes() -> None:
    lower = ("val/mse", "val/mse_best", "val/loss", "train/task_loss")
    assert [monitor_mode(m) for m in lower] == ["min"] * 4
    assert [monitor_mode(m) for m in ("val/r2", "val/auroc_best", "val/mcc")] == ["max"] * 3
    with pytest.raises(ValueError, match="unknown metric 'nope'"):
        monitor_mode("val/nope")


@pytest.mark.parametrize(("metric", "mode"), [("mse", "min"), ("r2", "max")])
def test_fine_tuning_callbacks_follow_the_metric(metric: str, mode: str, tmp_path: Path) -> None:
    overrides = ["experiment=finetune_mpgb", "data/mpgb=promoter_strength_leaf", f"data.metric={metric}",
                 "trainer=cpu"]
    _, task, trainer = build(compose_config(overrides, tmp_path))
    checkpoint = next(c for c in trainer.callbacks if isinstance(c, ModelCheckpoint) and c.monitor)
    stopping = next(c for c in trainer.callbacks if isinstance(c, EarlyStopping))
    assert (checkpoint.monitor, checkpoint.mode) == (f"val/{metric}", mode)
    assert (stopping.monitor, stopping.mode) == (f"val/{metric}", mode)
    assert type(task.val_best).__name__ == ("MinMetric" if mode == "min" else "MaxMetric")


def test_mse_run_keeps_its_best_checkpoint(tmp_path: Path) -> None:
    datamodule = make_datamodule(tmp_path, "regression", 1, "mse")
    task = make_task("regression", 1, "mse")
    node = {"_target_": "lightning.pytorch.callbacks.ModelCheckpoint", "dirpath": str(tmp_path / "ckpt"),
            "monitor": "val/mse", "mode": "auto", "save_top_k": 1, "filename": "step{step:03d}",
            "auto_insert_metric_name": False}
    (checkpoint,) = _callbacks(OmegaConf.create({"model_checkpoint": node}))
    history = History()
    trainer = Trainer(max_steps=12, val_check_interval=2, logger=False, callbacks=[checkpoint, history],
                      enable_progress_bar=False, enable_model_summary=False, default_root_dir=str(tmp_path))
    trainer.fit(task, datamodule=datamodule)
    step, best = min(history.values, key=lambda sv: sv[1])
    assert len(history.values) >= 3 and best < max(v for _, v in history.values)  # better and worse
    assert float(checkpoint.best_model_score) == pytest.approx(best)
    assert float(trainer.callback_metrics["val/mse_best"]) == pytest.approx(best)
    assert torch.load(checkpoint.best_model_path, weights_only=True)["global_step"] == step


def test_kmer_baseline_picks_the_lowest_mse(tmp_path: Path) -> None:
    datamodule = make_datamodule(tmp_path, "regression", 1, "mse")
    metrics, _ = run_baseline(datamodule, ks=(2,), alphas=(1e-3, 1e3))
    chosen = metrics["val/mse_best"]
    others = []
    for alpha in (1e-3, 1e3):
        (tmp_path / str(alpha)).mkdir()
        fresh = make_datamodule(tmp_path / str(alpha), "regression", 1, "mse")
        others.append(run_baseline(fresh, ks=(2,), alphas=(alpha,))[0]["val/mse"])
    assert chosen == pytest.approx(min(others)) and min(others) < max(others)
