"""Our aggregated runs beside the published results: Markdown, CSV and the plot, via the CLI."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from comparison.cli import main
from comparison.leaderboard import our_entries, published_entries, to_markdown
from comparison.published import default_path, load_published
from tasks.aggregate import aggregate, collect


def _result(folder: Path, dataset: str, group: str, metric: str, seed: int, value: float) -> None:
    folder.mkdir(parents=True)
    result = {
        "dataset": dataset,
        "task_group": group,
        "task_type": "binary",
        "metric": metric,
        "label": "tiny",
        "seed": seed,
        "init_from": None,
        "metrics": {f"test/{metric}": value},
    }
    (folder / "results.json").write_text(json.dumps(result))


def _runs(root: Path) -> Path:
    _result(root / "a", "core_promoter", "core_promoter", "mcc", 1, 0.60)
    _result(root / "b", "core_promoter", "core_promoter", "mcc", 2, 0.62)
    _result(root / "c", "histone_h3k27ac", "histone_modification", "mcc", 1, 0.50)
    _result(root / "d", "tair10_splice_donor", "splice_site", "auroc", 1, 0.90)
    return root


def test_entries_carry_coverage_and_derived_published_means(tmp_path: Path) -> None:
    published = load_published()
    ours = our_entries(aggregate(collect([_runs(tmp_path)])), published)
    task = {e.task_group: e for e in ours if e.level == "task"}
    assert task["core_promoter"].value == 0.61 and task["core_promoter"].mpgb_datasets == 1
    assert (task["histone_modification"].mpgb_datasets, task["histone_modification"].group_size) == (1, 3)
    assert not task["splice_site"].mpgb  # the embedded benchmark is not MPGB data
    derived = [e for e in published_entries(published) if "derived" in e.note]
    histone = next(
        e for e in derived if e.task_group == "histone_modification" and e.model.startswith("DNABERT-2")
    )
    assert round(histone.value, 4) == round((0.580 + 0.495 + 0.754) / 3, 4)
    assert not any(e.task_group == "promoter_strength" for e in derived)  # only 1 of its 2 datasets
    text = to_markdown(ours + published_entries(published), published)
    assert "| core_promoter (MCC) | 61.00 ± 1.41 | 58.74 |" in text
    assert "50.00 [1/3]" in text and "90.00 [0/2]*" in text


def test_cli_writes_markdown_csv_and_plot(tmp_path: Path) -> None:
    out = tmp_path / "reports" / "board"
    assert main(["leaderboard", str(_runs(tmp_path / "runs")), "--out", str(out)]) == 0
    assert "## Task averages" in out.with_suffix(".md").read_text()
    with open(out.with_suffix(".csv")) as handle:
        rows = list(csv.DictReader(handle))
    ours = [r for r in rows if r["source"] == "ours" and r["level"] == "dataset"]
    assert {r["dataset"] for r in ours} == {"core_promoter", "histone_h3k27ac", "tair10_splice_donor"}
    assert any(r["model"] == "DNABERT-2 [DNALLM-Mark re-run]" for r in rows)
    assert out.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_has_seed_error_bars_and_data_is_taken_after_the_command(tmp_path: Path, monkeypatch,
                                                                      capsys) -> None:
    from matplotlib.axes import Axes

    drawn = []
    bar = Axes.bar

    def spy(self, *args, **kwargs):
        drawn.append((kwargs.get("label"), kwargs.get("yerr")))
        return bar(self, *args, **kwargs)

    monkeypatch.setattr(Axes, "bar", spy)
    out = tmp_path / "board"
    runs = str(_runs(tmp_path / "runs"))
    assert main(["leaderboard", runs, "--out", str(out), "--data", str(default_path())]) == 0  # as documented
    ours = dict(drawn)["tiny (ours)"]
    assert ours is not None and max(ours) > 1.0  # core_promoter: 100 x std of 0.60 and 0.62
    assert main(["leaderboard", "--out", str(out), "--no-plot"]) == 0
    assert "no run folders given" in capsys.readouterr().err
