"""Every experiment composes and instantiates on CPU; config groups stay consistent."""

from __future__ import annotations

from pathlib import Path

import hydra
import pytest
import yaml
from omegaconf import OmegaConf

from plantbimoe import PlantBiMoEConfig
from plantbimoe.config import HF_METADATA_KEYS, PRESET_DIR
from tasks.runner import build
from tests.framework.hydra_utils import CONF_DIR, compose_config

EXPERIMENTS = sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml"))


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_composes_and_instantiates_on_cpu(experiment: str, tmp_path: Path) -> None:
    cfg = compose_config([f"experiment={experiment}", "trainer=cpu"], tmp_path)
    datamodule, task, trainer = build(cfg)
    assert trainer.accelerator.__class__.__name__ == "CPUAccelerator"
    assert task is not None and datamodule is not None


@pytest.mark.parametrize("trainer", ["cpu", "gpu", "ddp", "a800x8"])
def test_trainer_configs_compose(trainer: str, tmp_path: Path) -> None:
    cfg = compose_config([f"trainer={trainer}"], tmp_path)
    assert cfg.trainer._target_ == "lightning.Trainer"
    if trainer == "a800x8":
        assert cfg.trainer.devices == 8 and cfg.trainer.precision == "bf16-mixed"
        global_batch = cfg.trainer.devices * cfg.trainer.accumulate_grad_batches * 4
        assert global_batch == 256
        strategy = hydra.utils.instantiate(cfg.trainer.strategy)
        assert type(strategy).__name__ == "FSDPStrategy"


def test_unknown_config_key_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="no_such_key"):
        compose_config(["trainer.no_such_key=1"], tmp_path)


@pytest.mark.parametrize("preset", sorted(p.stem for p in PRESET_DIR.glob("*.json")))
def test_backbone_yaml_equals_library_preset(preset: str) -> None:
    text = (CONF_DIR / "backbone" / f"{preset}.yaml").read_text()
    from_yaml = PlantBiMoEConfig.from_dict(yaml.safe_load(text))
    library = PlantBiMoEConfig.preset(preset).to_dict()
    library = {k: v for k, v in library.items() if k not in HF_METADATA_KEYS}
    assert from_yaml.to_dict() == library


def test_default_is_the_embedded_pretraining(tmp_path: Path) -> None:
    cfg = compose_config([], tmp_path)
    assert cfg.task_name == "pretrain_arabidopsis_tiny"
    assert cfg.data._target_.endswith("ShardDataModule")
    assert cfg.data.manifest.endswith("conf/manifests/arabidopsis.yaml")
    assert OmegaConf.to_container(cfg.optimizer)["betas"] == [0.95, 0.9]
