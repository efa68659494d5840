"""Prune hopeless Optuna trials from their validation curve.

The Optuna sweeper (hydra_plugins.plantbimoe_optuna_sweeper) runs each trial in this process
and makes it the active trial with `reporting_to(trial)`. `OptunaPruning` reports the monitored
validation metric after every validation to that trial and raises ``optuna.TrialPruned`` when
the study's pruner says so; the sweeper then records the trial as pruned. With no active trial
(a plain run, or a launcher that runs jobs in other processes) the callback does nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import optuna
from lightning import Callback, LightningModule, Trainer

log = logging.getLogger(__name__)
_active: list[optuna.Trial] = []


@contextmanager
def reporting_to(trial: optuna.Trial | None) -> Iterator[None]:
    """Make `trial` the one `OptunaPruning` reports to while the block runs (None: no trial)."""
    if trial is None:
        yield
        return
    _active.append(trial)
    try:
        yield
    finally:
        _active.remove(trial)


def active_trial() -> optuna.Trial | None:
    """The trial of the job running now, if a sweep set one."""
    return _active[-1] if _active else None


class OptunaPruning(Callback):
    """Report `monitor` (e.g. ``val/auroc``) at each validation, keyed by the global step, and
    stop the run with ``optuna.TrialPruned`` when the study's pruner decides to."""

    def __init__(self, monitor: str) -> None:
        self.monitor = monitor

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        trial = active_trial()
        if trial is None or trainer.sanity_checking:
            return
        value = trainer.callback_metrics.get(self.monitor)
        if value is None:
            raise KeyError(
                f"OptunaPruning: {self.monitor!r} was not logged; logged: {sorted(trainer.callback_metrics)}"
            )
        step = trainer.global_step
        trial.report(float(value), step=step)
        if trial.should_prune():
            message = f"trial {trial.number} pruned at step {step} ({self.monitor} = {float(value):.4f})"
            log.info(message)
            raise optuna.TrialPruned(message)
