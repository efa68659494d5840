"""OptunaPruning reports the validation metric to the active trial and prunes when told."""

from __future__ import annotations

from types import SimpleNamespace

import optuna
import pytest
import torch

from tasks.optuna_pruning import OptunaPruning, active_trial, reporting_to


def _trainer(value: float | None, step: int = 10, sanity: bool = False) -> SimpleNamespace:
    metrics = {} if value is None else {"val/auroc": torch.tensor(value)}
    return SimpleNamespace(callback_metrics=metrics, global_step=step, sanity_checking=sanity)


def test_reports_then_prunes_below_the_threshold() -> None:
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.ThresholdPruner(lower=0.6))
    trial = study.ask()
    callback = OptunaPruning("val/auroc")
    with reporting_to(trial):
        assert active_trial() is trial
        callback.on_validation_end(_trainer(0.9, step=5), None)
        callback.on_validation_end(_trainer(0.2, sanity=True), None)  # sanity checks are not reported
        with pytest.raises(optuna.TrialPruned, match="pruned at step 10"):
            callback.on_validation_end(_trainer(0.5, step=10), None)
    assert active_trial() is None
    assert study.trials[0].intermediate_values == {5: pytest.approx(0.9), 10: pytest.approx(0.5)}


def test_does_nothing_without_a_trial_and_names_a_missing_metric() -> None:
    callback = OptunaPruning("val/auroc")
    callback.on_validation_end(_trainer(0.1), None)
    with reporting_to(optuna.create_study().ask()), pytest.raises(KeyError, match="val/auroc"):
        callback.on_validation_end(_trainer(None), None)
