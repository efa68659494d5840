"""Study storage and resume, and one trial's jobs (grid mean, pruning, failure) with a stub launcher."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobReturn, JobStatus
from omegaconf import OmegaConf
from optuna.trial import TrialState

from hydra_plugins.plantbimoe_optuna_sweeper import _study
from hydra_plugins.plantbimoe_optuna_sweeper._space import plan_sweep
from hydra_plugins.plantbimoe_optuna_sweeper.sweeper import OptunaSweeper
from tasks.optuna_pruning import active_trial

SAMPLER = {"_target_": "optuna.samplers.TPESampler", "seed": 3, "n_startup_trials": 10}


def _open(sweep_dir: Path, direction: str = "maximize") -> optuna.Study:
    return _study.open_study("s", None, sweep_dir, direction, SAMPLER, None)


def test_sqlite_in_the_sweep_folder_resumes_without_redrawing(tmp_path: Path) -> None:
    space = {"x": optuna.distributions.FloatDistribution(0, 1)}
    first = _open(tmp_path)
    assert (tmp_path / _study.DB_FILE).is_file()
    for _ in range(2):
        first.tell(first.ask(space), 0.5)
    resumed = _open(tmp_path)
    assert _study.finished_trials(resumed) == 2
    earlier = [t.params["x"] for t in resumed.trials]
    assert resumed.ask(space).params["x"] not in earlier  # the sampler's seed moved on by 2
    with pytest.raises(ValueError, match="created to maximize"):
        _open(tmp_path, "minimize")


def test_any_sqlalchemy_url_is_a_storage(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    study = _study.open_study("s", url, tmp_path / "sweep", "minimize", SAMPLER, None)
    assert (tmp_path / "elsewhere.db").is_file() and not (tmp_path / "sweep").exists()
    assert study.direction.name == "MINIMIZE"


class StubLauncher:
    """Runs nothing: returns per-seed values, or a prune or failure from the trial's first job."""

    def __init__(self, outcome: str = "ok") -> None:
        self.outcome, self.calls = outcome, []

    def launch(self, job_overrides, initial_job_idx: int) -> list[JobReturn]:
        (overrides,) = job_overrides
        self.calls.append((initial_job_idx, list(overrides), active_trial()))
        seed = int(next(o for o in overrides if o.startswith("seed=")).split("=")[1])
        ret = JobReturn(overrides=overrides, status=JobStatus.COMPLETED)
        if self.outcome == "none":
            ret.return_value = None
            ret.hydra_cfg = OmegaConf.create({"hydra": {"runtime": {"output_dir": "/runs/7"}}})
        elif self.outcome != "ok":
            ret.status = JobStatus.FAILED
            ret.return_value = optuna.TrialPruned("low") if self.outcome == "prune" else RuntimeError("boom")
        else:
            ret.return_value = 0.1 * seed
        return [ret]


def _sweeper(launcher: StubLauncher) -> OptunaSweeper:
    sweeper = OptunaSweeper("s", "maximize", 3, None, SAMPLER, None, {}, plots=False)
    sweeper.launcher = launcher
    sweeper.config = OmegaConf.create({"optimized_metric": "val/auroc_best"})
    return sweeper


def test_a_trial_runs_every_grid_job_and_tells_their_mean(tmp_path: Path,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    parser = OverridesParser.create()
    plan = plan_sweep(parser.parse_overrides(["x=interval(0, 1)"]), parser.parse_overrides(["seed=1,3"]))
    study = _open(tmp_path)
    study.tell(study.ask(plan.space), 0.0)  # trial 0: the next one is trial 1
    launcher = StubLauncher()
    with caplog.at_level("INFO"):
        _sweeper(launcher)._run_trial(study, plan, done=1)
    assert "Trial 1 (finished so far: 1 of n_trials=3)" in caplog.text  # one numbering: Optuna's
    assert "Trial 1: val/auroc_best = 0.2" in caplog.text
    trial = study.trials[1]
    assert trial.state is TrialState.COMPLETE and trial.value == pytest.approx(0.2)
    assert [c[0] for c in launcher.calls] == [2, 3]  # job number = trial * grid size + k
    assert launcher.calls[0][2] is not None and launcher.calls[1][2] is None  # first job reports
    assert launcher.calls[0][1][0].startswith("x=") and launcher.calls[1][1][-1] == "seed=3"


@pytest.mark.parametrize(("outcome", "state"), [("prune", TrialState.PRUNED), ("fail", TrialState.FAIL)])
def test_a_pruned_job_prunes_the_trial_and_a_failure_fails_it(outcome: str, state, tmp_path: Path) -> None:
    parser = OverridesParser.create()
    plan = plan_sweep(parser.parse_overrides(["x=interval(0, 1)"]), parser.parse_overrides(["seed=1,2"]))
    study = _open(tmp_path)
    launcher = StubLauncher(outcome)
    if outcome == "fail":
        with pytest.raises(RuntimeError, match="boom"):
            _sweeper(launcher)._run_trial(study, plan)
    else:
        _sweeper(launcher)._run_trial(study, plan)
    assert study.trials[0].state is state and len(launcher.calls) == 1


def test_a_job_without_the_metric_fails_the_trial_with_reason_and_fix(tmp_path: Path) -> None:
    parser = OverridesParser.create()
    plan = plan_sweep(parser.parse_overrides(["x=interval(0, 1)"]), parser.parse_overrides(["seed=1"]))
    study = _open(tmp_path)
    with pytest.raises(ValueError) as error:
        _sweeper(StubLauncher("none"))._run_trial(study, plan)
    message = str(error.value)
    assert "trial 0: the job in /runs/7 logged no 'val/auroc_best'" in message
    assert "Fix:" in message and "val_check_interval" in message
    assert study.trials[0].state is TrialState.FAIL and _study.finished_trials(study) == 0
