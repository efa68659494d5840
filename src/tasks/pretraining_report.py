"""The pretraining study's verdict: pretrained minus random init per task and training-set size, and
a plot of the headline test metric against the number of training examples.

Rows come from `tasks.benchmark_report.summarise` (mean over seeds of each run folder's
results.json). Model names carry the size: ``plantbimoe-pretrained-n250`` is the pretrained
backbone fine-tuned on 250 examples; no suffix means the full training cap; ``probe-*`` are
linear probes of frozen features on the full cap (``-layers``: the layer chosen on validation).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from plantbimoe.atomic import atomic_path

SIZE = re.compile(r"^(?P<model>.+?)-n(?P<n>\d+)$")
PAIRS = (
    ("plantbimoe-pretrained", "plantbimoe"),
    ("probe-pretrained", "probe-random-init"),
    ("probe-pretrained-layers", "probe-random-init-layers"),
)
CURVES = ("plantbimoe-pretrained", "plantbimoe", "cnn", "kmer+positional")


def split_size(model: str) -> tuple[str, int | None]:
    """('plantbimoe-pretrained', 250) from 'plantbimoe-pretrained-n250'; size None = the full cap."""
    match = SIZE.match(model)
    return (match["model"], int(match["n"])) if match else (model, None)


def deltas(rows: list[dict]) -> list[dict]:
    """Per task and size: pretrained and random-init means, runs, and their difference."""
    cells = {(r["task"], *split_size(r["model"])): r for r in rows}
    out = []
    for task in dict.fromkeys(r["task"] for r in rows):
        sizes = sorted({n for (t, _, n) in cells if t == task}, key=lambda n: (n is None, n or 0))
        for ours, control in PAIRS:
            for n in sizes:
                a, b = cells.get((task, ours, n)), cells.get((task, control, n))
                if a is None or b is None:
                    continue
                out.append({"task": task, "metric": a["metric"], "comparison": f"{ours} vs {control}",
                            "size": n, "pretrained": a["mean"], "random": b["mean"],
                            "runs": f"{a['runs']}/{b['runs']}", "delta": a["mean"] - b["mean"]})
    return out


def to_markdown(rows: list[dict]) -> str:
    """The verdict table (pretrained minus random init); empty when no pair has finished."""
    table = deltas(rows)
    if not table:
        return ""
    lines = ["#### Pretrained minus random init", "",
             "| task | metric | comparison | training examples | pretrained | random init | runs "
             "| difference |",
             "|---|---|---|---|---|---|---|---|"]
    for d in table:
        size = "full cap" if d["size"] is None else f"{d['size']:,}"
        lines.append(f"| {d['task']} | {d['metric']} | {d['comparison']} | {size} | {d['pretrained']:.4f} | "
                     f"{d['random']:.4f} | {d['runs']} | {d['delta']:+.4f} |")
    return "\n".join(lines) + "\n"


def plot_curves(rows: list[dict], path: Path, full_size: int, title: str) -> None:
    """Write `curve_figure` to `path` (PNG)."""
    import matplotlib.pyplot as plt

    fig = curve_figure(rows, full_size, title)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)


def curve_figure(rows: list[dict], full_size: int, title: str) -> Any:
    """One panel per task: headline test metric (mean, error bar = std over seeds) against the
    number of training examples (log scale; the full cap drawn at `full_size`), per model, in one
    colour per model across panels; the probes as single markers at the full cap."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(dict.fromkeys(r["task"] for r in rows))
    width = 3.2 * len(tasks) + 2.2
    fig, axes = plt.subplots(1, len(tasks), figsize=(width, 3.4), squeeze=False)
    sizes = sorted({split_size(r["model"])[1] or full_size for r in rows})
    probes = (("probe-pretrained", "^"), ("probe-random-init", "v"))
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    # one colour per model in every panel, whichever models a panel has
    colour = {name: cycle[i % len(cycle)] for i, name in enumerate([*CURVES, *(m for m, _ in probes)])}
    for ax, task in zip(axes[0], tasks, strict=True):
        task_rows = [r for r in rows if r["task"] == task]
        for model in CURVES:
            points = sorted(((n or full_size), r["mean"], r["std"] or 0.0)
                            for r in task_rows for m, n in [split_size(r["model"])] if m == model)
            if points:
                xs, ys, es = zip(*points, strict=True)
                ax.errorbar(xs, ys, yerr=es, marker="o", capsize=2, label=model, color=colour[model])
        for model, marker in probes:
            probe = [r for r in task_rows if r["model"] == model]
            if probe:
                ax.plot([full_size], [probe[0]["mean"]], marker=marker, linestyle="none", label=model,
                        color=colour[model])
        ax.set_xscale("log")
        ax.minorticks_off()
        ax.set_xticks(sizes, [f"{n:,}" + (" (cap)" if n == full_size else "") for n in sizes])
        ax.set_title(task, fontsize=9)
        ax.set_xlabel("training examples", fontsize=8)
        ax.set_ylabel(f"test {task_rows[0]['metric']}", fontsize=8)
        ax.tick_params(labelsize=7)
    handles, labels = axes[0][0].get_legend_handles_labels()
    for ax in axes[0][1:]:  # a model missing from the first panel still gets its legend entry
        for h, label in zip(*ax.get_legend_handles_labels(), strict=True):
            if label not in labels:
                handles.append(h)
                labels.append(label)
    legend_width = 2.0 / width  # inches kept for the legend, right of the panels
    fig.legend(handles, labels, fontsize=8, loc="center left", bbox_to_anchor=(1 - legend_width, 0.5))
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0, 1 - legend_width, 1))
    return fig
