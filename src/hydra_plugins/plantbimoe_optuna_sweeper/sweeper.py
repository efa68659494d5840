"""`OptunaSweeper`: one Optuna trial at a time through Hydra's launcher (ask, run, tell)."""

from __future__ import annotations

import logging
import statistics
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.plugins import Plugins
from hydra.core.utils import JobReturn, JobStatus
from hydra.errors import HydraException
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

if TYPE_CHECKING:
    import optuna

    from ._space import SweepPlan

log = logging.getLogger(__name__)


class OptunaSweeper(Sweeper):
    """Runs trials of a stored Optuna study until ``n_trials`` finished (completed or pruned; a
    failed trial does not count) (see `config.OptunaSweeperConf`).

    Each trial: ask the study for parameters, launch one job per grid combination (job number
    ``trial * combinations + k``, so a resumed study keeps its folders apart), tell the mean of
    the jobs' returned metric. The first job of a trial reports its validation curve for pruning
    (tasks.optuna_pruning); a pruned job marks the trial pruned. A failing job marks the trial
    failed and stops the sweep. At the end: best parameters, trials table and plots.
    """

    def __init__(
        self,
        study_name: str,
        direction: str,
        n_trials: int,
        storage: str | None,
        sampler: Mapping[str, Any] | None,
        pruner: Mapping[str, Any] | None,
        params: Mapping[str, str],
        plots: bool,
    ) -> None:
        if direction not in ("maximize", "minimize", "auto"):
            raise ValueError(f"hydra.sweeper.direction must be maximize, minimize or auto, got {direction!r}")
        if n_trials < 1:
            raise ValueError(f"hydra.sweeper.n_trials must be >= 1, got {n_trials}")
        self.study_name, self.direction, self.n_trials = study_name, direction, n_trials
        self.storage, self.plots = storage, plots
        self.sampler = _plain(sampler)
        self.pruner = _plain(pruner)
        self.params = dict(params or {})
        self.hydra_context: HydraContext | None = None
        self.config: DictConfig | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.hydra_context, self.config = hydra_context, config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def sweep(self, arguments: list[str]) -> list[JobReturn]:
        from . import _space, _study

        assert self.hydra_context is not None and self.config is not None
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        plan = _space.plan_sweep(
            parser.parse_overrides([f"{k}={v}" for k, v in self.params.items()]),
            parser.parse_overrides(arguments),
        )
        sweep_dir = Path(self.config.hydra.sweep.dir)
        direction = study_direction(self.direction, self._metric())
        self._check_grid(plan.fixed, plan.grid, sweep_dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        study = _study.open_study(
            self.study_name, self.storage, sweep_dir, direction, self.sampler, self.pruner
        )
        log.info("Search space of study %r:\n%s", self.study_name, plan.describe())
        returns: list[JobReturn] = []
        if (done := _study.finished_trials(study)) >= self.n_trials:
            log.info("Study %r is complete: %d finished trials of n_trials=%d; raise "
                     "hydra.sweeper.n_trials to run more", self.study_name, done, self.n_trials)
        while (done := _study.finished_trials(study)) < self.n_trials:
            returns += self._run_trial(study, plan, done)
        self._log_best(study)
        self._write_outputs(study, plan, sweep_dir)
        return returns

    def _log_best(self, study: optuna.Study) -> None:
        from optuna.trial import TrialState

        if study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            best = study.best_trial
            log.info("Best trial %d: %s = %.6g with %s", best.number, self._metric(), best.value, best.params)

    def _check_grid(self, fixed: list[str], grid: list[list[str]], sweep_dir: Path) -> None:
        """Every grid job must compose and land in this sweep's folder (the study's home)."""
        assert self.hydra_context is not None and self.config is not None
        for combo in grid:
            job = self.hydra_context.config_loader.load_sweep_config(self.config, [*fixed, *combo])
            if Path(job.hydra.sweep.dir) != sweep_dir:
                raise HydraException(
                    f"The sweep folder depends on a swept value ({' '.join(combo)}): "
                    f"{job.hydra.sweep.dir} vs {sweep_dir}. Tune one study per value, or give the "
                    "study a fixed name (hydra.sweeper.study_name=<name>) to average over them."
                )

    def _run_trial(self, study: optuna.Study, plan: SweepPlan, done: int = 0) -> list[JobReturn]:
        import optuna
        from optuna.trial import TrialState

        from tasks.optuna_pruning import reporting_to

        trial = study.ask(plan.space)
        log.info("Trial %d (finished so far: %d of n_trials=%d)", trial.number, done, self.n_trials)
        overrides = plan.trial_overrides(trial.params)
        returns, values, output_dirs = [], [], []
        try:
            for k, combo in enumerate(plan.grid):
                with reporting_to(trial if k == 0 else None):
                    (ret,) = self.launcher.launch(
                        [[*overrides, *combo]], initial_job_idx=trial.number * len(plan.grid) + k
                    )
                returns.append(ret)
                if ret.hydra_cfg is not None:
                    output_dirs.append(str(ret.hydra_cfg.hydra.runtime.output_dir))
                trial.set_user_attr("output_dirs", output_dirs)
                if ret.status is JobStatus.FAILED and isinstance(ret._return_value, optuna.TrialPruned):
                    study.tell(trial, state=TrialState.PRUNED)
                    log.info("Trial %d pruned: %s", trial.number, ret._return_value)
                    return returns
                value = ret.return_value  # raises the job's exception when it failed
                if value is None:
                    raise ValueError(self._no_metric(trial.number, output_dirs[-1:]))
                values.append(float(value))
        except BaseException:
            study.tell(trial, state=TrialState.FAIL)
            raise
        value = statistics.fmean(values)
        study.tell(trial, value)
        log.info("Trial %d: %s = %.6g with %s", trial.number, self._metric(), value, trial.params)
        return returns

    def _no_metric(self, number: int, output_dir: list[str]) -> str:
        where = f" in {output_dir[0]}" if output_dir else ""
        return (f"trial {number}: the job{where} logged no {self._metric()!r}, so the trial has no value "
                "(marked FAIL; failed trials do not count toward n_trials). Its train.log lists the metrics "
                "it did log. Fix: set optimized_metric to one of them, or make validation log it "
                "(trainer.val_check_interval <= trainer.max_steps, limit_val_batches > 0)")

    def _metric(self) -> str:
        assert self.config is not None
        return str(OmegaConf.select(self.config, "optimized_metric", default="objective"))

    def _write_outputs(self, study: optuna.Study, plan: SweepPlan, sweep_dir: Path) -> None:
        from . import _report

        assert self.config is not None
        choices = self.config.hydra.runtime.choices
        best = _report.best_params_path(sweep_dir, self.study_name)
        usage = ["python train.py -m", f"-cd {sweep_dir}"]
        keys = {o: o.split("=")[0].lstrip("+~") for o in plan.fixed}
        if choices.get("experiment") and "experiment" not in keys.values():
            usage.append(f"experiment={choices.experiment}")
        usage += [o for o, k in keys.items() if not k.startswith(("hydra", "hparams_search"))]
        usage += [f"+{_report.BEST_GROUP}={best.stem}", "seed=1,2,3"]
        wrote_best = _report.write_best_params(study, best, self._metric(), set(choices), " ".join(usage))
        written = [best] if wrote_best else []
        written.append(_report.write_trials_table(study, sweep_dir / "trials.csv"))
        if self.plots:
            written += _report.save_plots(study, sweep_dir / "plots")
        for path in written:
            log.info("Wrote %s", path)
        if wrote_best:
            log.info("Test the best parameters over seeds:\n  %s", " ".join(usage))


def study_direction(direction: str, metric: str) -> str:
    """maximize or minimize: `direction` itself, or for ``auto`` the direction of `metric` (the
    optimized_metric, e.g. ``val/mse_best``): minimize for mse and losses, as
    plantbimoe.task_types.metric_mode says."""
    if direction != "auto":
        return direction
    from plantbimoe.task_types import metric_mode

    name = metric.rsplit("/", 1)[-1].removesuffix("_best")
    try:
        mode = "min" if name.endswith("loss") else metric_mode(name)
    except ValueError as error:
        raise ValueError(f"hydra.sweeper.direction=auto: no known direction for optimized_metric {metric!r} "
                         f"({error}); set hydra.sweeper.direction to maximize or minimize") from error
    return "maximize" if mode == "max" else "minimize"


def _plain(node: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A config node as a plain dict (None stays None)."""
    if node is None:
        return None
    if isinstance(node, DictConfig):
        return OmegaConf.to_container(node, resolve=True)  # type: ignore[return-value]
    return dict(node)
