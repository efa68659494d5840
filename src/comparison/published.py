"""The published MPGB results (published_mpgb.yaml beside this file), read and checked."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml

DATA_FILE = "published_mpgb.yaml"


@dataclass(frozen=True)
class Source:
    """Where published numbers come from."""

    key: str
    label: str
    scale: float
    citation: str
    url: str
    note: str = ""


@dataclass(frozen=True)
class Result:
    """One published number on our metric scale (0-1); `dataset` None = task average."""

    source: Source
    model: str
    task_group: str
    dataset: str | None
    metric: str
    value: float
    note: str = ""

    @property
    def name(self) -> str:
        """The model as shown beside our runs, e.g. ``AgroNT [PlantBiMoE paper]``."""
        return f"{self.model} [{self.source.label}]"


@dataclass(frozen=True)
class Published:
    """Task groups (headline metric, datasets), sources and results of the data file."""

    task_groups: dict[str, tuple[str, tuple[str, ...]]]
    sources: dict[str, Source]
    results: tuple[Result, ...]

    def group_of(self, dataset: str) -> str | None:
        """The MPGB task group of `dataset`, None when it is not an MPGB dataset."""
        return next((g for g, (_, names) in self.task_groups.items() if dataset in names), None)


def default_path() -> Path:
    """The data file shipped with the package."""
    return Path(str(resources.files("comparison") / DATA_FILE))


def load_published(path: str | Path | None = None) -> Published:
    """Read and check the data file (default: the shipped one); errors name the file and row."""
    path = Path(path) if path is not None else default_path()
    raw = yaml.safe_load(path.read_text())
    try:
        groups = {g: (str(v["metric"]), tuple(v["datasets"])) for g, v in raw["task_groups"].items()}
        sources = {k: Source(key=k, **v) for k, v in raw["sources"].items()}
    except (KeyError, TypeError) as error:
        raise ValueError(f"{path}: task_groups or sources malformed ({error})") from error
    results = []
    for i, row in enumerate(raw["results"]):
        where = f"{path}: results[{i}] {row}"
        unknown = set(row) - {"source", "model", "task_group", "dataset", "value", "note"}
        if unknown or not {"source", "model", "task_group", "value"} <= set(row):
            raise ValueError(f"{where}: needs source, model, task_group, value (dataset, note optional)")
        if row["source"] not in sources:
            raise ValueError(f"{where}: unknown source; known: {sorted(sources)}")
        if row["task_group"] not in groups:
            raise ValueError(f"{where}: unknown task group; known: {sorted(groups)}")
        metric, datasets = groups[row["task_group"]]
        dataset = row.get("dataset")
        if dataset is not None and dataset not in datasets:
            raise ValueError(f"{where}: {dataset} is not a dataset of {row['task_group']}")
        source = sources[row["source"]]
        value = float(row["value"]) / source.scale
        if not -1.0 <= value <= 1.0:
            raise ValueError(f"{where}: value outside the metric's range at scale {source.scale}")
        results.append(
            Result(source, str(row["model"]), row["task_group"], dataset, metric, value, row.get("note", ""))
        )
    keys = [(r.source.key, r.model, r.task_group, r.dataset) for r in results]
    if len(set(keys)) != len(keys):
        raise ValueError(f"{path}: a source lists the same model, task group and dataset twice")
    return Published(groups, sources, tuple(results))
