"""experiment=pretrain_arabidopsis_small composes and runs; its run exports as a carded model that
loads by a short name; the shipped model matches its card."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from omegaconf import OmegaConf

import plantbimoe.shipped as shipped
from plantbimoe import PlantBiMoEConfig, count_parameters
from plantbimoe.pretrained import read_checkpoint
from tasks.init_from import load_backbone
from tasks.model_card import export_run
from tasks.model_card import main as model_card_main
from tasks.runner import run
from tests.framework.hydra_utils import compose_config

EXPERIMENT = "experiment=pretrain_arabidopsis_small"


def test_small_experiment_composes_as_documented(tmp_path: Path) -> None:
    cfg = compose_config([EXPERIMENT], tmp_path)
    assert cfg.task_name == "pretrain_arabidopsis_small"
    assert cfg.backbone.d_model == 128 and cfg.backbone.n_layer == 4  # the tiny backbone
    assert cfg.trainer.precision == "bf16-mixed"
    assert cfg.data.manifest.endswith("conf/manifests/arabidopsis.yaml")
    stages = OmegaConf.to_container(cfg.callbacks.curriculum.stages)
    assert stages[0][0] == 0 and stages[-1][1] == cfg.data.window_length
    assert all(a[0] < b[0] and a[1] < b[1] for a, b in zip(stages, stages[1:], strict=False))


@pytest.mark.slow
def test_small_experiment_runs_and_exports_a_carded_model(
    tmp_path: Path, embedded_shards: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dir = tmp_path / "run"
    overrides = [
        EXPERIMENT, f"data.shards={embedded_shards}", "data.window_length=64", "data.batch_size=2",
        "data.val_windows=2", "data.test_windows=2", "callbacks.curriculum.stages=[[0,32],[2,64]]",
        "trainer.max_steps=3", "trainer.val_check_interval=3", "scheduler.warmup_steps=1",
        "callbacks.progress_bar=null", "trainer.precision=32-true",
    ]
    cfg = compose_config(overrides, run_dir)
    run(cfg)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["global_step"] == 3 and summary["interrupted_by"] is None
    assert summary["peak_memory_gib"] > 0 and summary["precision"] == "32-true"
    for key in ("val_loss", "val_context_baseline_loss", "test_loss", "test_context_baseline_loss"):
        assert summary[key] is not None and summary[key] > 0, key

    # the card is written from the run, as train.py leaves it (.hydra/ holds config and overrides)
    (run_dir / ".hydra").mkdir()
    (run_dir / ".hydra" / "config.yaml").write_text(OmegaConf.to_yaml(cfg))
    (run_dir / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    models = tmp_path / "models"
    out = export_run(run_dir, models / "toy-model")
    card = (out / "README.md").read_text()
    assert f"{summary['tokens_seen']:,} tokens seen" in card
    floor = summary["test_context_baseline_loss"]
    row = f"| test, exported weights | {summary['test_loss']:.4f} | {floor:.4f} |"
    assert row in card
    assert "validation, exported weights (step 3)" in card  # read from the checkpoint itself
    assert "python train.py experiment=pretrain_arabidopsis_small" in card
    assert json.loads((out / "summary.json").read_text()) == summary

    # a second export refuses to overwrite unless asked, and leaves the folder as it was
    assert model_card_main([str(run_dir), str(out)]) == 1
    assert (out / "README.md").read_text() == card

    # the short name reaches the same weights through init_from
    monkeypatch.setattr(shipped, "SHIPPED_DIR", models)
    assert shipped.shipped_models() == ["toy-model"]
    model = read_checkpoint("toy-model").masked_lm()
    fresh = read_checkpoint(out).masked_lm()
    backbone = type(fresh.backbone)(fresh.config)
    load_backbone(backbone, "toy-model")
    for name, tensor in fresh.backbone.state_dict().items():
        assert torch.equal(backbone.state_dict()[name], tensor), name
        assert torch.equal(model.backbone.state_dict()[name], tensor), name


def test_a_path_wins_over_a_short_name_and_unknown_names_are_listed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    models = tmp_path / "models"
    (models / "toy").mkdir(parents=True)
    (models / "toy" / "config.json").write_text("{}")
    monkeypatch.setattr(shipped, "SHIPPED_DIR", models)
    assert shipped.resolve_model("toy") == models / "toy"
    monkeypatch.chdir(tmp_path)
    (tmp_path / "toy").mkdir()
    assert shipped.resolve_model("toy") == Path("toy")  # a folder of that name here wins
    with pytest.raises(FileNotFoundError, match="shipped: toy"):
        shipped.resolve_model("no-such-model")
    with pytest.raises(FileNotFoundError, match="init_from: model not found: no-such-model"):
        load_backbone(torch.nn.Linear(1, 1), "no-such-model")


@pytest.mark.parametrize("name", shipped.shipped_models())
def test_shipped_model_loads_and_matches_its_card(name: str) -> None:
    folder = shipped.SHIPPED_DIR / name
    summary = json.loads((folder / "summary.json").read_text())
    model = read_checkpoint(name).masked_lm()
    total, active = count_parameters(model)
    assert (total, active) == (summary["parameters_total"], summary["parameters_active"])
    config = json.loads((folder / "config.json").read_text())
    assert model.config.to_dict()["d_model"] == config["d_model"]
    card = (folder / "README.md").read_text()
    assert f"{summary['parameters_total']:,} parameters" in card
    assert f"end of the run (step {summary['global_step']:,}) | {summary['val_loss']:.4f} |" in card
    assert summary["test_loss"] < summary["test_context_baseline_loss"]  # the target
    assert PlantBiMoEConfig.from_dict(config).d_model == model.config.d_model
