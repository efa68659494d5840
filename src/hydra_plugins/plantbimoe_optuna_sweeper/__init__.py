"""Hydra sweeper that runs an Optuna study through Optuna's ask-and-tell API.

``hydra_plugins`` is a namespace package (no ``__init__.py``): Hydra imports it and registers
every ``Sweeper`` subclass found in its modules. Modules whose name starts with ``_`` are skipped
by that scan, so Optuna is imported only when a sweep runs, not on every ``train.py`` start.
Configuration: conf/hparams_search/finetune_optuna.yaml; see `config.OptunaSweeperConf`.
"""
