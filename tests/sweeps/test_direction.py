"""The sweep's direction follows the headline metric (plantbimoe.task_types.metric_mode): an mse
sweep minimises and keeps its lowest trial."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import optuna
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.utils import JobReturn, JobStatus
from omegaconf import OmegaConf

from hydra_plugins.plantbimoe_optuna_sweeper.sweeper import OptunaSweeper, study_direction

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"


def _composed(overrides: list[str]):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="train", overrides=["hparams_search=finetune_optuna", *overrides],
                       return_hydra_config=True)


def test_auto_direction_reads_the_metric() -> None:
    assert study_direction("auto", "val/mse_best") == "minimize"
    assert study_direction("auto", "val/auroc_best") == "maximize"
    assert study_direction("auto", "val/r2_best") == "maximize"
    assert study_direction("auto", "val/loss") == "minimize"
    assert study_direction("maximize", "val/mse_best") == "maximize"  # an explicit choice stands
    with pytest.raises(ValueError, match="set hydra.sweeper.direction"):
        study_direction("auto", "val/bogus_best")


@pytest.mark.parametrize(("overrides", "expected"), [
    (["data/mpgb=core_promoter"], "maximize"),
    (["data/mpgb=promoter_strength_leaf"], "maximize"),
    (["data/mpgb=promoter_strength_leaf", "data.metric=mse"], "minimize"),
])
def test_the_optuna_config_minimises_an_mse_headline(overrides: list[str], expected: str) -> None:
    cfg = _composed(overrides)
    assert cfg.hydra.sweeper.direction == "auto"
    assert study_direction(cfg.hydra.sweeper.direction, cfg.optimized_metric) == expected


class _Launcher:
    """Each trial's value is its parameter x: the best of an mse sweep is the smallest x."""

    def launch(self, job_overrides, initial_job_idx: int) -> list[JobReturn]:
        (overrides,) = job_overrides
        x = float(next(o for o in overrides if o.startswith("x=")).split("=")[1])
        return [JobReturn(overrides=overrides, status=JobStatus.COMPLETED, _return_value=x)]


def test_an_mse_sweep_keeps_its_lowest_trial(tmp_path: Path) -> None:
    sampler = {"_target_": "optuna.samplers.RandomSampler", "seed": 0}
    sweeper = OptunaSweeper("s", "auto", 4, None, sampler, None, {"x": "interval(0, 1)"}, plots=False)
    sweeper.config = OmegaConf.create({
        "optimized_metric": "val/mse_best",
        "hydra": {"sweep": {"dir": str(tmp_path)}, "runtime": {"choices": {}}},
    })
    loader = SimpleNamespace(load_sweep_config=lambda config, overrides: config)  # one grid job: this one
    sweeper.hydra_context = SimpleNamespace(config_loader=loader)
    sweeper.launcher = _Launcher()
    sweeper.sweep([])
    study = optuna.load_study(study_name="s", storage=f"sqlite:///{tmp_path / 'optuna.db'}")
    values = [t.value for t in study.trials]
    assert study.direction.name == "MINIMIZE" and len(values) == 4
    assert study.best_value == min(values) < max(values)
    assert (tmp_path / "best_params").is_dir()
