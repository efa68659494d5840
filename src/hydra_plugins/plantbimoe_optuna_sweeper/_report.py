"""What a sweep leaves beside its study: the best parameters as a Hydra config, a trials table,
and the study's plots."""

from __future__ import annotations

import csv
import logging
import re
import warnings
from pathlib import Path
from typing import Any

import optuna
import yaml
from optuna.trial import TrialState

from plantbimoe.atomic import atomic_text, atomic_write_text

log = logging.getLogger(__name__)
BEST_GROUP = "best_params"


def slug(name: str) -> str:
    """`name` as a file-name stem (letters, digits, ``._-``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "study"


def nested(params: dict[str, Any]) -> dict[str, Any]:
    """Dotted keys (``optimizer.lr``) as nested mappings, for a ``@package _global_`` config."""
    tree: dict[str, Any] = {}
    for dotted, value in params.items():
        node = tree
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return tree


def _write_text(path: Path, text: str) -> None:
    atomic_write_text(path, text)


def best_params_path(sweep_dir: Path, study_name: str) -> Path:
    """Where the best parameters of `study_name` go: a config group ``best_params`` of the sweep
    folder, so ``train.py -cd <sweep_dir> +best_params=<name>`` applies them."""
    return sweep_dir / BEST_GROUP / f"{slug(study_name)}.yaml"


def write_best_params(study: optuna.Study, path: Path, metric: str, groups: set[str], usage: str) -> bool:
    """The best trial's parameters as a ``@package _global_`` config at `path` (False when no
    trial completed). Config-group choices in `groups` (e.g. ``optimizer``) become ``override``
    defaults; `usage` (the command line that applies the file) goes in its header."""
    completed = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not completed:
        log.warning("No completed trial in study %r: no best parameters written", study.study_name)
        return False
    best = study.best_trial
    values = {k: v for k, v in best.params.items() if k not in groups}
    overrides = [{f"override /{k}": v} for k, v in best.params.items() if k in groups]
    header = [
        "# @package _global_",
        f"# Best trial ({best.number}) of Optuna study {study.study_name!r}: {metric} = {best.value:.6g}"
        f" ({study.direction.name.lower()}), {len(completed)} completed trials.",
        f"# Use: {usage}",
    ]
    body = {**({"defaults": [*overrides, "_self_"]} if overrides else {}), **nested(values)}
    _write_text(path, "\n".join(header) + "\n" + yaml.safe_dump(body, sort_keys=False))
    return True


def write_trials_table(study: optuna.Study, path: Path) -> Path:
    """One CSV row per trial: number, state, value, last reported step, duration, parameters."""
    trials = study.get_trials(deepcopy=False)
    names = sorted({name for t in trials for name in t.params})
    rows = []
    for t in trials:
        duration = (t.datetime_complete - t.datetime_start).total_seconds() if t.datetime_complete else None
        rows.append(
            {
                "number": t.number,
                "state": t.state.name,
                "value": t.value,
                "last_step": t.last_step,
                "seconds": None if duration is None else round(duration, 1),
                **{name: t.params.get(name) for name in names},
                "output_dirs": " ".join(t.user_attrs.get("output_dirs", [])),
            }
        )
    with atomic_text(path) as handle:
        fields = ["number", "state", "value", "last_step", "seconds", *names, "output_dirs"]
        writer = csv.DictWriter(handle, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return path


def save_plots(study: optuna.Study, folder: Path) -> list[Path]:
    """History, intermediate values (pruning) and parameter importances as PNG images; a plot
    the study cannot make yet (e.g. importances before two completed trials) is skipped."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as oplt

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    plots = {
        "history": oplt.plot_optimization_history,
        "intermediate_values": oplt.plot_intermediate_values,
        "param_importances": oplt.plot_param_importances,
    }
    for name, plot in plots.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                axes = plot(study)
        except (ValueError, RuntimeError) as error:
            log.info("Optuna plot %s skipped: %s", name, error)
            continue
        figure = axes.figure if hasattr(axes, "figure") else axes.flat[0].figure
        figure.set_size_inches(8, 5)
        figure.tight_layout()
        path = folder / f"{name}.png"
        figure.savefig(path, dpi=100)
        plt.close(figure)
        written.append(path)
    return written
