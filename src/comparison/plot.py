"""The comparison as an image: task averages per model, grouped by MPGB task."""

from __future__ import annotations

from pathlib import Path

from comparison.leaderboard import METRIC_NAMES, OURS, Entry, group_order
from comparison.published import Published
from plantbimoe.atomic import atomic_path


def plot_comparison(entries: list[Entry], published: Published, path: Path) -> Path:
    """Grouped bars (x100) of every model's task averages; ours are hatched, with error bars of the
    standard deviation over seeds and their MPGB coverage k/N above the bar when they do not cover
    the whole group (* = not MPGB data)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    task = [e for e in entries if e.level == "task"]
    if not task:
        raise ValueError("nothing to plot: no task-level entry")
    groups = group_order(task, published)
    models = sorted({e.model for e in task if e.source == OURS})
    models += list(dict.fromkeys(e.model for e in task if e.source != OURS))
    by_key = {(e.task_group, e.model): e for e in task}
    width = 0.8 / len(models)
    figure, axes = plt.subplots(figsize=(max(8.0, 1.1 * len(groups) + 5), 5.5))
    colours = plt.get_cmap("tab20").colors
    for i, model in enumerate(models):
        xs, ys, found = [], [], []
        for x, group in enumerate(groups):
            if (group, model) in by_key:
                xs.append(x - 0.4 + (i + 0.5) * width)
                found.append(by_key[(group, model)])
                ys.append(100 * found[-1].value)
        ours = bool(found) and found[0].source == OURS
        label = f"{model} (ours)" if ours else model
        errors = [100 * (e.std or 0.0) for e in found] if ours else None
        bars = axes.bar(xs, ys, width, label=label, color=colours[i % len(colours)], yerr=errors,
                        capsize=2, error_kw={"elinewidth": 0.8}, hatch="//" if ours else None,
                        edgecolor="black", linewidth=0.4)
        for bar, entry in zip(bars, found, strict=True):
            if ours and (entry.mpgb_datasets != entry.group_size or not entry.mpgb):
                coverage = f"{entry.mpgb_datasets}/{entry.group_size or '?'}" + ("" if entry.mpgb else "*")
                axes.annotate(coverage, (bar.get_x(), bar.get_height()), fontsize=6, va="bottom")
    metric = {g: METRIC_NAMES.get(m, m) for g, (m, _) in published.task_groups.items()}
    axes.set_xticks(range(len(groups)))
    axes.set_xticklabels([f"{g}\n{metric.get(g, '')}" for g in groups], rotation=30, ha="right", fontsize=8)
    axes.set_ylabel("score x100 (headline metric of the task)")
    axes.set_title("MPGB task averages: our runs (± std over seeds) beside published results")
    axes.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    axes.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=110)
    plt.close(figure)
    return path
