"""Open (create or resume) the Optuna study of a sweep."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import optuna
from hydra.utils import instantiate
from optuna.trial import TrialState

log = logging.getLogger(__name__)
DB_FILE = "optuna.db"
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def storage_url(storage: str | None, sweep_dir: Path) -> str:
    """`storage`, or SQLite in the sweep folder when it is None."""
    return storage or f"sqlite:///{(sweep_dir / DB_FILE).resolve()}"


def open_storage(url: str) -> optuna.storages.RDBStorage:
    """RDB storage for any SQLAlchemy URL; SQLite waits for locks held by other processes."""
    engine_kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else None
    return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs)


def existing_trials(storage: optuna.storages.BaseStorage, study_name: str) -> int:
    """How many trials (any state) the study `study_name` holds; 0 when it does not exist."""
    summaries = optuna.get_all_study_summaries(storage, include_best_trial=False)
    return next((s.n_trials for s in summaries if s.study_name == study_name), 0)


def build_sampler(sampler: Mapping[str, Any] | None, offset: int) -> optuna.samplers.BaseSampler:
    """The configured sampler; its ``seed`` is shifted by `offset` (the trials already in the
    study) so a resumed study does not draw its first configurations again."""
    if sampler is None:
        return optuna.samplers.TPESampler(seed=offset)
    seed = sampler.get("seed")
    return instantiate(sampler, **({} if seed is None else {"seed": int(seed) + offset}))


def open_study(
    study_name: str,
    storage: str | None,
    sweep_dir: Path,
    direction: str,
    sampler: Mapping[str, Any] | None,
    pruner: Mapping[str, Any] | None,
) -> optuna.Study:
    """Create the study, or load it when a study of that name is already stored (resume)."""
    url = storage_url(storage, sweep_dir)
    backend = open_storage(url)
    done = existing_trials(backend, study_name)
    study = optuna.create_study(
        study_name=study_name,
        storage=backend,
        direction=direction,
        sampler=build_sampler(sampler, done),
        pruner=instantiate(pruner) if pruner else optuna.pruners.NopPruner(),
        load_if_exists=True,
    )
    if study.direction.name.lower() != direction.lower():
        raise ValueError(
            f"study {study_name!r} in {url} was created to {study.direction.name.lower()}, not to {direction}"
        )
    log.info("Optuna study %r (%s): %s", study_name, url, f"resumed with {done} trials" if done else "new")
    return study


def finished_trials(study: optuna.Study) -> int:
    """Trials that completed or were pruned: failed (and running) ones do not count toward n_trials."""
    return len(study.get_trials(deepcopy=False, states=FINISHED))
