"""Hydra finds the sweeper in the hydra_plugins namespace package and its structured config."""

from __future__ import annotations

from hydra.core.config_store import ConfigStore
from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper

import hydra_plugins


def test_sweeper_is_discovered_and_its_config_registered() -> None:
    assert getattr(hydra_plugins, "__file__", None) is None  # a namespace package, shareable with others
    # Hydra's scan executes the plugin modules itself: compare classes by name
    found = {f"{c.__module__}.{c.__name__}" for c in Plugins.instance().discover(Sweeper)}
    assert "hydra_plugins.plantbimoe_optuna_sweeper.sweeper.OptunaSweeper" in found
    assert "plantbimoe_optuna.yaml" in ConfigStore.instance().list("hydra/sweeper")
