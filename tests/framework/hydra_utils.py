"""Compose the project's Hydra config in tests, as train.py would."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, open_dict

from tasks.recipe import CONF_DIR, compose_train

__all__ = ["CONF_DIR", "compose_config"]


def compose_config(overrides: list[str], output_dir: Path) -> DictConfig:
    """The composed `train` config with `overrides`, writing run outputs under `output_dir`."""
    cfg = compose_train(overrides)
    with open_dict(cfg):
        cfg.paths.root_dir = str(output_dir)
        cfg.paths.output_dir = str(output_dir)
        cfg.paths.log_dir = str(output_dir / "logs")
        del cfg.hydra
    return cfg
