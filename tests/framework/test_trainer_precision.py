"""trainer.precision=auto and bf16 requests on CPUs with and without native bf16."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from plantbimoe import cpu
from tasks import precision
from tests.framework.hydra_utils import compose_config


def _trainer(value: str, accelerator: str = "cpu"):  # type: ignore[no-untyped-def]
    return OmegaConf.create({"accelerator": accelerator, "precision": value})


@pytest.mark.parametrize(("native", "expected"), [("AVX512-BF16", "bf16-mixed"), (None, "32-true")])
def test_auto_follows_the_cpu(native: str | None, expected: str, monkeypatch: pytest.MonkeyPatch,
                              caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(cpu, "cpu_bf16_support", lambda: native)
    trainer = _trainer("auto")
    with caplog.at_level(logging.INFO, logger="tasks.precision"):
        assert precision.resolve(trainer) == expected
    assert trainer.precision == expected  # the node Lightning is built from says it too
    assert f"trainer.precision=auto -> {expected}" in caplog.text


def test_bf16_on_a_cpu_without_it_warns_and_runs_fp32(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cpu, "cpu_bf16_support", lambda: None)
    trainer = _trainer("bf16-mixed")
    with pytest.warns(RuntimeWarning, match="no native bf16"):
        assert precision.resolve(trainer) == "32-true"
    assert trainer.precision == "32-true"


@pytest.mark.parametrize("value", ["32-true", "64-true", "bf16-mixed"])
def test_explicit_choices_stay(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cpu, "cpu_bf16_support", lambda: "AVX512-BF16")
    assert precision.resolve(_trainer(value)) == value


def test_cpu_trainer_defaults_to_auto_and_the_benchmark_pins_fp32(tmp_path: Path) -> None:
    from tasks.benchmark import MODELS, plan

    cfg = compose_config(["experiment=finetune_arabidopsis"], tmp_path)
    assert cfg.trainer.precision == "auto"
    runs = plan(tmp_path, ["splice_donor"], MODELS, [1], [])
    for run in runs:
        pinned = "trainer.precision=32-true" in run.command
        assert pinned == (run.model in ("plantbimoe", "cnn")), run.model
