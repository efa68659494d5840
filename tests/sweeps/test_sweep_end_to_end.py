"""`python train.py -m hparams_search=finetune_optuna ...` on the tiny model and the embedded
TAIR10 benchmark: a 3-trial study in SQLite, best parameters usable by train.py, plots; a second
invocation resumes the study and records a pruned trial."""

from __future__ import annotations

import csv
import runpy
import sys
from pathlib import Path

import optuna
import pytest
from hydra.core.global_hydra import GlobalHydra
from optuna.trial import TrialState

from datamodules.annotation_bench import ensure_benchmark

TRAIN = Path(__file__).resolve().parents[2] / "train.py"
MAX_PER_CLASS = 100


def _train(args: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """`python train.py <args>`, run in this process (the sweeper runs trials in-process anyway)."""
    GlobalHydra.instance().clear()
    monkeypatch.setattr(sys, "argv", [str(TRAIN), *args])
    runpy.run_path(str(TRAIN), run_name="__main__")


@pytest.mark.slow
def test_sweep_writes_study_best_params_and_plots_then_resumes_with_a_pruned_trial(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    ensure_benchmark(tmp_path / "data" / "bench" / "arabidopsis_thaliana", max_per_class=MAX_PER_CLASS)
    common = [
        "experiment=finetune_arabidopsis",
        "data/mpgb=embedded/tair10_splice_donor",
        f"paths.data_dir={tmp_path / 'data'}",
        f"paths.log_dir={tmp_path / 'logs'}",
        f"+data.prepare.max_per_class={MAX_PER_CLASS}",
        "backbone.d_model=32",
        "backbone.n_layer=2",
        "backbone.intermediate_size=64",
        "callbacks.progress_bar=null",
        "data.batch_size=8",  # fixed: out of the search
        "data.max_train_samples=32",
        "data.max_val_samples=32",
        "trainer.max_steps=2",
        "trainer.val_check_interval=2",
        "trainer.log_every_n_steps=1",
    ]
    _train(["-m", "hparams_search=finetune_optuna", *common, "hydra.sweeper.n_trials=3"], monkeypatch)
    sweep = tmp_path / "logs" / "finetune_arabidopsis" / "optuna" / "tair10_splice_donor"
    storage = f"sqlite:///{sweep / 'optuna.db'}"
    study = optuna.load_study(study_name="tair10_splice_donor", storage=storage)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 3
    assert "data.batch_size" not in study.trials[0].params and "optimizer.lr" in study.trials[0].params
    assert sorted(p.name for p in (sweep / "plots").glob("*.png")) == [
        "history.png", "intermediate_values.png", "param_importances.png"
    ]
    assert all((sweep / str(n) / "tensorboard").is_dir() for n in range(3))

    best = sweep / "best_params" / "tair10_splice_donor.yaml"
    usage = next(line for line in best.read_text().splitlines() if line.startswith("# Use: "))
    assert f"-cd {sweep}" in usage and "+best_params=tair10_splice_donor" in usage
    capsys.readouterr()
    _train(["-cd", str(sweep), *common, "+best_params=tair10_splice_donor", "--cfg", "job"], monkeypatch)
    assert f"lr: {study.best_params['optimizer.lr']}" in capsys.readouterr().out

    _train(
        [
            "-m", "hparams_search=finetune_optuna", *common, "hydra.sweeper.n_trials=4",
            "hydra.sweeper.pruner._target_=optuna.pruners.ThresholdPruner",
            "~hydra.sweeper.pruner.n_startup_trials", "+hydra.sweeper.pruner.lower=2.0",  # AUROC < 2: prune
        ],
        monkeypatch,
    )
    study = optuna.load_study(study_name="tair10_splice_donor", storage=storage)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 3 + [TrialState.PRUNED]
    assert study.trials[3].last_step == 2
    with open(sweep / "trials.csv") as handle:
        assert [row["state"] for row in csv.DictReader(handle)] == ["COMPLETE"] * 3 + ["PRUNED"]

    capsys.readouterr()  # the same study again: nothing to run, it says so
    _train(["-m", "hparams_search=finetune_optuna", *common, "hydra.sweeper.n_trials=4"], monkeypatch)
    said = "".join(capsys.readouterr())
    assert "'tair10_splice_donor' is complete: 4 finished trials of n_trials=4" in said
    assert f"Best trial {study.best_trial.number}: val/auroc_best" in said
    assert len(optuna.load_study(study_name="tair10_splice_donor", storage=storage).trials) == 4
