"""The fine-tuning benchmark's report: Markdown and CSV tables (mean +- std over seeds) and a bar plot.

Written from the runs' own ``results.json`` and ``timing.json`` files, never typed by hand.
"""

from __future__ import annotations

import csv
import json
import os
import platform
import re
import statistics
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from plantbimoe.atomic import atomic_path, atomic_text, atomic_write_text
from tasks import pretraining_report
from tasks.sequence import RESULTS_FILE

FLOORS = ("kmer", "kmer+positional", "cnn")
FIELDS = ("task", "metric", "model", "runs", "mean", "std", "mcc_mean", "mcc_std", "wall_s")


def _mean_std(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else None)


def summarise(runs: Sequence[Any]) -> list[dict]:
    """One row per (task, model) with finished runs: headline test metric and MCC over seeds."""
    found: dict[tuple[str, str], list[tuple[dict, dict]]] = defaultdict(list)
    for run in runs:
        results = run.folder / RESULTS_FILE
        if results.is_file():
            timing = run.folder / "timing.json"
            found[(run.task, run.model)].append(
                (json.loads(results.read_text()), json.loads(timing.read_text()) if timing.is_file() else {})
            )
    rows = []
    for (task, model), items in found.items():
        metric = items[0][0]["metric"]
        mean, std = _mean_std([r["metrics"][f"test/{metric}"] for r, _ in items])
        mccs = [r["metrics"]["test/mcc"] for r, _ in items if "test/mcc" in r["metrics"]]
        mcc_mean, mcc_std = _mean_std(mccs)
        walls = [t["wall_seconds"] for _, t in items if "wall_seconds" in t]
        rows.append({
            "task": task, "metric": metric, "model": model, "runs": len(items),
            "mean": mean, "std": std, "mcc_mean": mcc_mean, "mcc_std": mcc_std,
            "wall_s": statistics.fmean(walls) if walls else None,
        })
    return rows


def _pm(mean: float | None, std: float | None) -> str:
    if mean is None:
        return ""
    return f"{mean:.4f}" + (f" ± {std:.4f}" if std is not None else "")


def verdicts(rows: list[dict], ours: str = "plantbimoe") -> list[str]:
    """Per task: our mean against the strongest floor's (wins and losses alike) or, in a table
    without floors, the best model."""
    lines = []
    for task in dict.fromkeys(r["task"] for r in rows):
        by_model = {r["model"]: r for r in rows if r["task"] == task}
        floors = [by_model[f] for f in FLOORS if f in by_model]
        if ours not in by_model or not floors:
            best = max(by_model.values(), key=lambda r: r["mean"])
            lines.append(f"- {task}: best {best['model']} ({best['mean']:.4f} {best['metric']})")
            continue
        best = max(floors, key=lambda r: r["mean"])
        delta = by_model[ours]["mean"] - best["mean"]
        word = "beats" if delta >= 0 else "LOSES to"
        lines.append(
            f"- {task}: {ours} {by_model[ours]['mean']:.4f} {word} the strongest floor "
            f"({best['model']}, {best['mean']:.4f}) by {delta:+.4f} {best['metric']}"
        )
    return lines


def machine() -> str:
    """CPU model and core count of this machine, for the report header."""
    name = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        match = re.search(r"model name\s*:\s*(.+)", cpuinfo.read_text())
        name = match.group(1).strip() if match else name
    return f"{name}, {os.cpu_count()} cores"


def to_markdown(rows: list[dict], title: str) -> str:
    """The report's Markdown body (table, then the verdict per task)."""
    head = "| task | metric | model | runs | test metric (mean ± std) | test MCC | wall s/run |"
    lines = [f"### Fine-tuning benchmark: {title}", "", f"Machine: {machine()}.", "", head,
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        wall = f"{r['wall_s']:.0f}" if r["wall_s"] is not None else ""
        cells = (r["task"], r["metric"], r["model"], r["runs"], _pm(r["mean"], r["std"]),
                 _pm(r["mcc_mean"], r["mcc_std"]), wall)
        lines.append("| " + " | ".join(map(str, cells)) + " |")
    verdict = verdicts(rows)
    if verdict:
        lines += ["", *verdict]
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: Path, title: str) -> None:
    """Grouped bars of the headline test metric per task, one bar per model, error bars = std."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(dict.fromkeys(r["task"] for r in rows))
    models = list(dict.fromkeys(r["model"] for r in rows))
    width = 0.8 / max(1, len(models))
    fig, ax = plt.subplots(figsize=(max(6.0, 1.6 * len(tasks) + 2) + 2.0, 4.2))
    for i, model in enumerate(models):
        cells = {r["task"]: r for r in rows if r["model"] == model}
        xs = [t + (i - (len(models) - 1) / 2) * width for t in range(len(tasks))]
        means = [cells[t]["mean"] if t in cells else 0.0 for t in tasks]
        errs = [(cells[t]["std"] or 0.0) if t in cells else 0.0 for t in tasks]
        ax.bar(xs, means, width, yerr=errs, capsize=2, label=model)
    metric_of = {r["task"]: r["metric"] for r in rows}
    ax.set_xticks(range(len(tasks)), [f"{t}\n({metric_of[t]})" for t in tasks], fontsize=8)
    ax.set_ylabel("test metric (mean ± std over seeds)")
    low = min((r["mean"] for r in rows), default=0.0)
    ax.set_ylim(max(0.0, low - 0.1), 1.0)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # outside: never over a bar
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)


def replace_block(doc: Path, key: str, body: str) -> None:
    """Put `body` between ``<!-- key:start -->`` and ``<!-- key:end -->`` in `doc` (appended if absent)."""
    start, end = f"<!-- {key}:start -->", f"<!-- {key}:end -->"
    text = doc.read_text() if doc.is_file() else ""
    block = f"{start}\n{body}{end}"
    if start in text and end in text:
        text = text[: text.index(start)] + block + text[text.index(end) + len(end):]
    else:
        text = text.rstrip("\n") + ("\n\n" if text else "") + block + "\n"
    atomic_write_text(doc, text)


def write_report(
    out: Path, runs: Sequence[Any], title: str, docs: Path | None = None, key: str = "benchmark",
    curve_full_size: int | None = None, note: str = "",
) -> list[Path]:
    """results.md, results.csv and results.png under `out` (and the block `key` in `docs`); the paths.

    With `curve_full_size` (the pretraining study) the Markdown gains the pretrained-minus-random
    table and the plot is the metric against the number of training examples instead of bars;
    `note` (a Markdown paragraph) ends the Markdown."""
    rows = summarise(runs)
    if not rows:
        return []
    out.mkdir(parents=True, exist_ok=True)
    markdown = to_markdown(rows, title)
    if curve_full_size is not None:
        verdict = pretraining_report.to_markdown(rows)
        markdown += f"\n{verdict}" if verdict else ""
    markdown += f"\n{note}" if note else ""
    md, table, png = out / "results.md", out / "results.csv", out / "results.png"
    atomic_write_text(md, markdown)
    with atomic_text(table) as handle:
        writer = csv.DictWriter(handle, fieldnames=FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    if curve_full_size is not None:
        pretraining_report.plot_curves(rows, png, curve_full_size, title)
    else:
        plot(rows, png, title)
    written = [md, table, png]
    if docs is not None:
        replace_block(docs, key, markdown)
        written.append(docs)
    return written
