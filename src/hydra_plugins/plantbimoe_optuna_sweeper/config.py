"""Structured config of the sweeper, registered as ``hydra/sweeper: plantbimoe_optuna``.

No ``from __future__ import annotations`` here: Hydra's plugin scan executes this module before
it is in ``sys.modules``, where dataclasses cannot resolve string annotations.
"""

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore


@dataclass
class OptunaSweeperConf:
    """Settings of `OptunaSweeper` (conf/hparams_search/finetune_optuna.yaml sets them).

    - ``study_name``: a re-run with the same name (and storage) resumes the study;
    - ``direction``: maximize, minimize, or auto (the optimized_metric's own: minimize for mse);
    - ``storage``: any SQLAlchemy URL; null = ``sqlite:///<hydra.sweep.dir>/optuna.db``;
    - ``n_trials``: the study's total of finished trials (complete, pruned or failed): a re-run
      only runs what is missing, so raise it to extend a finished study;
    - ``sampler``/``pruner``: ``_target_`` nodes (e.g. ``optuna.samplers.TPESampler`` with ``seed``;
      pruner null = never prune);
    - ``params``: search space as Hydra sweep strings (``interval``, ``tag(log, interval)``,
      ``tag(int, interval)``, ``choice``); plain lists (``a,b``), ``range`` and ``glob`` are not
      searched: every trial runs each of their combinations and its value is their mean;
    - ``plots``: save the history and parameter-importance images (needs matplotlib).
    """

    _target_: str = "hydra_plugins.plantbimoe_optuna_sweeper.sweeper.OptunaSweeper"
    _recursive_: bool = False  # sampler and pruner stay configs: the sweeper builds them
    study_name: str = "study"
    direction: str = "maximize"
    n_trials: int = 20
    storage: str | None = None
    sampler: Any = field(default_factory=lambda: {"_target_": "optuna.samplers.TPESampler", "seed": 0})
    pruner: Any = None
    params: dict[str, str] = field(default_factory=dict)
    plots: bool = True


ConfigStore.instance().store(
    group="hydra/sweeper", name="plantbimoe_optuna", node=OptunaSweeperConf, provider="plantbimoe"
)
