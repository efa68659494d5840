"""Our aggregated runs (tasks.aggregate) beside the published results, as one table.

Entries are on the metric's 0-1 scale; the Markdown view shows them x100 as the paper does.
A published source that lists every dataset of a task group also gets that group's mean
(marked derived). Our task averages say how many of the group's MPGB datasets they cover, and
a star marks data outside MPGB (e.g. the embedded TAIR10 benchmark), which the published
numbers do not describe.
"""

from __future__ import annotations

import csv
import statistics
from collections import defaultdict
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from comparison.published import Published
from plantbimoe.atomic import atomic_text, atomic_write_text

OURS = "ours"
METRIC_NAMES = {"auroc": "AUROC", "mcc": "MCC", "r2": "R²", "auprc": "AUPRC", "f1": "F1"}


@dataclass(frozen=True)
class Entry:
    """One cell: a model's value on a dataset or a task group (task level: `dataset` empty)."""

    level: str
    task_group: str
    dataset: str
    metric: str
    model: str
    source: str
    value: float
    std: float | None = None
    runs: int | None = None
    datasets: int | None = None
    mpgb_datasets: int | None = None
    group_size: int | None = None
    mpgb: bool = True
    note: str = ""


def our_entries(rows: list[dict], published: Published) -> list[Entry]:
    """Entries of `tasks.aggregate.aggregate` rows (dataset and task level)."""
    covered: dict[tuple[str, str], list[str]] = defaultdict(list)
    for row in rows:
        if row["level"] == "dataset":
            covered[(row["model"], row["task_group"])].append(row["dataset"])
    entries = []
    for row in rows:
        group = row["task_group"]
        size = len(published.task_groups[group][1]) if group in published.task_groups else None
        common = {k: row[k] for k in ("task_group", "metric", "model", "runs")}
        if row["level"] == "dataset":
            mpgb = published.group_of(row["dataset"]) is not None
            entries.append(
                Entry("dataset", dataset=row["dataset"], source=OURS, value=row["mean"], std=row["std"],
                      mpgb=mpgb, **common)
            )
        else:
            names = covered[(row["model"], group)]
            inside = sum(published.group_of(d) == group for d in names)
            entries.append(
                Entry("task", dataset="", source=OURS, value=row["mean"], std=row["std"], datasets=len(names),
                      mpgb_datasets=inside, group_size=size, mpgb=inside == len(names), **common)
            )
    return entries


def published_entries(published: Published) -> list[Entry]:
    """Every published result, plus derived task means where a source covers a whole group."""
    entries = []
    per_group: dict[tuple[str, str, str], dict[str, float]] = defaultdict(dict)
    task_level = set()
    for r in published.results:
        level = "dataset" if r.dataset else "task"
        size = None if r.dataset else len(published.task_groups[r.task_group][1])
        entries.append(
            Entry(level, r.task_group, r.dataset or "", r.metric, r.name, r.source.label, r.value,
                  group_size=size, datasets=size, mpgb_datasets=size, note=r.note)
        )
        if r.dataset:
            per_group[(r.name, r.source.label, r.task_group)][r.dataset] = r.value
        else:
            task_level.add((r.name, r.task_group))
    for (name, source, group), values in per_group.items():
        metric, datasets = published.task_groups[group]
        if (name, group) not in task_level and set(values) == set(datasets):
            entries.append(
                Entry("task", group, "", metric, name, source, statistics.fmean(values.values()),
                      datasets=len(datasets), mpgb_datasets=len(datasets), group_size=len(datasets),
                      note=f"mean of its {len(datasets)} dataset(s), derived here")
            )
    return entries


def group_order(entries: list[Entry], published: Published) -> list[str]:
    """Task groups of `entries`: the data file's order first, then any other group by name."""
    rank = {g: i for i, g in enumerate(published.task_groups)}
    return sorted({e.task_group for e in entries}, key=lambda g: (rank.get(g, len(rank)), g))


def _cell(entry: Entry) -> str:
    text = f"{100 * entry.value:.2f}"
    if entry.std is not None:
        text += f" ± {100 * entry.std:.2f}"
    if entry.source == OURS and entry.level == "task" and entry.mpgb_datasets != entry.group_size:
        text += f" [{entry.mpgb_datasets}/{entry.group_size or '?'}]"
    return text + ("" if entry.mpgb else "*")


def _table(entries: list[Entry], rows: list[tuple[str, ...]], key, header: list[str]) -> list[str]:
    models = sorted({e.model for e in entries if e.source == OURS})
    models += list(dict.fromkeys(e.model for e in entries if e.source != OURS))
    cells = {(key(e), e.model): _cell(e) for e in entries}
    lines = ["| " + " | ".join(header + models) + " |", "|" + "---|" * (len(header) + len(models))]
    for row in rows:
        lines.append("| " + " | ".join([*row[1:], *(cells.get((row[0], m), "") for m in models)]) + " |")
    return lines


def to_markdown(entries: list[Entry], published: Published) -> str:
    """Task-average and dataset tables (x100), then sources and notes."""
    groups = group_order(entries, published)
    task = [e for e in entries if e.level == "task"]
    data = [e for e in entries if e.level == "dataset"]
    metric = {g: METRIC_NAMES.get(m, m) for g, (m, _) in published.task_groups.items()}
    task_rows = [(g, f"{g} ({metric.get(g, '?')})") for g in groups if any(e.task_group == g for e in task)]
    names = sorted({(e.task_group, e.dataset) for e in data}, key=lambda gd: (groups.index(gd[0]), gd[1]))
    data_rows = [(d, d, g) for g, d in names]
    lines = ["# MPGB leaderboard", "",
             "Scores x100 (the task's headline metric). Ours: mean ± standard deviation over seeds.", "",
             "## Task averages", ""]
    lines += _table(task, task_rows, lambda e: e.task_group, ["task (metric)"])
    lines += ["", "## Datasets", ""]
    lines += _table(data, data_rows, lambda e: e.dataset, ["dataset", "task"])
    lines += ["", "## Sources", ""]
    lines += [f"- {s.label}: {s.citation} {s.url} {s.note}" for s in published.sources.values()]
    lines += ["", "[k/N]: our task average covers k of the group's N MPGB datasets (published averages cover"
              " all N). *: not MPGB data (e.g. the embedded TAIR10 benchmark); not comparable to published"
              " numbers."]
    return "\n".join(lines) + "\n"


def write_leaderboard(entries: list[Entry], published: Published, out: Path) -> tuple[Path, Path]:
    """`out`.md (the tables) and `out`.csv (one row per entry, values 0-1)."""
    md, table = out.with_suffix(".md"), out.with_suffix(".csv")
    atomic_write_text(md, to_markdown(entries, published))
    with atomic_text(table) as handle:
        writer = csv.DictWriter(handle, fieldnames=[f.name for f in fields(Entry)], lineterminator="\n")
        writer.writeheader()
        writer.writerows(asdict(e) for e in entries)
    return md, table
