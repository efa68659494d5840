"""Aggregate fine-tuning runs (their ``results.json``) into one table, as Markdown and CSV.

Per model label and dataset: the headline test metric's mean and sample standard deviation over
seeds (a rerun with the same seed replaces the older run, with a warning). Per model label and
task group (MPGB task type): the mean over its datasets of those means, and the standard
deviation over seeds of the per-seed task average (seeds that ran on every dataset of the group;
blank with fewer than two).

    python -m tasks.aggregate logs/finetune_mpgb/multiruns --out reports/mpgb
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import statistics
import sys
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

from plantbimoe.atomic import atomic_text, atomic_write_text
from tasks.sequence import RESULTS_FILE

log = logging.getLogger(__name__)
FIELDS = ("level", "model", "task_group", "dataset", "metric", "runs", "mean", "std")


def collect(paths: Iterable[str | Path]) -> list[dict]:
    """Every results.json under `paths` (files or folders, searched recursively), oldest first."""
    found = []
    for path in map(Path, paths):
        files = [path] if path.is_file() else sorted(path.rglob(RESULTS_FILE))
        for file in files:
            result = json.loads(file.read_text())
            missing = [k for k in ("dataset", "metric", "label", "seed", "metrics") if k not in result]
            if missing:
                raise ValueError(f"{file}: not a results file (missing {missing})")
            result["_file"] = str(file)
            found.append(result)
    return sorted(found, key=lambda r: Path(r["_file"]).stat().st_mtime_ns)


def _std(values: list[float]) -> float | None:
    return statistics.stdev(values) if len(values) > 1 else None


def aggregate(results: list[dict]) -> list[dict]:
    """Rows of the dataset level, then of the task-group level (see the module docstring)."""
    per_dataset: dict[tuple, dict[int, float]] = defaultdict(dict)
    info: dict[tuple, tuple[str, str]] = {}
    for r in results:
        key = (r["label"], r["dataset"])
        metric = f"test/{r['metric']}"
        if metric not in r["metrics"]:
            raise ValueError(f"{r['_file']}: no {metric} in its metrics")
        if r["seed"] in per_dataset[key]:
            log.warning("%s replaces an older run of %s on %s with seed %s", r["_file"], *key, r["seed"])
        per_dataset[key][r["seed"]] = float(r["metrics"][metric])
        info[key] = (r.get("task_group") or r.get("task_type") or "", r["metric"])
    rows = []
    groups: dict[tuple, list[tuple]] = defaultdict(list)
    for key in sorted(per_dataset):
        values = list(per_dataset[key].values())
        group, metric = info[key]
        rows.append(
            {
                "level": "dataset",
                "model": key[0],
                "task_group": group,
                "dataset": key[1],
                "metric": metric,
                "runs": len(values),
                "mean": statistics.fmean(values),
                "std": _std(values),
            }
        )
        groups[(key[0], group, metric)].append(key)
    for (model, group, metric), keys in sorted(groups.items()):
        means = [statistics.fmean(per_dataset[k].values()) for k in keys]
        common = set.intersection(*(set(per_dataset[k]) for k in keys))
        per_seed = [statistics.fmean(per_dataset[k][s] for k in keys) for s in sorted(common)]
        rows.append(
            {
                "level": "task",
                "model": model,
                "task_group": group,
                "dataset": f"{len(keys)} dataset{'s' * (len(keys) > 1)}",
                "metric": metric,
                "runs": sum(len(per_dataset[k]) for k in keys),
                "mean": statistics.fmean(means),
                "std": _std(per_seed),
            }
        )
    return rows


def _cell(value: float | int | str | None) -> str:
    if value is None:
        return ""
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def to_markdown(rows: list[dict]) -> str:
    """A Markdown table of `rows`."""
    lines = ["| " + " | ".join(FIELDS) + " |", "|" + "---|" * len(FIELDS)]
    lines += ["| " + " | ".join(_cell(row[f]) for f in FIELDS) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def write_tables(rows: list[dict], out: Path) -> tuple[Path, Path]:
    """`out`.md and `out`.csv (written to temporary names, then renamed)."""
    md, table = out.with_suffix(".md"), out.with_suffix(".csv")
    atomic_write_text(md, to_markdown(rows))
    with atomic_text(table) as handle:
        writer = csv.DictWriter(handle, fieldnames=FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows({f: _cell(row[f]) for f in FIELDS} for row in rows)
    return md, table


def main(argv: list[str] | None = None) -> int:
    """Command line: aggregate the runs under the given folders."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="+", help="run folders (searched for results.json) or results files")
    parser.add_argument("--out", default=None, help="write <out>.md and <out>.csv")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    results = collect(args.paths)
    if not results:
        print(f"no {RESULTS_FILE} under {' '.join(args.paths)}", file=sys.stderr)
        return 1
    rows = aggregate(results)
    print(to_markdown(rows), end="")
    if args.out:
        for path in write_tables(rows, Path(args.out)):
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
