"""`python -m tasks.benchmark --study pretraining`: the plan (sizes, seeds, the shared random-init
run), the verdict table, and an end-to-end run of the linear probes and a low-data pair."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from datamodules.annotation_bench import ensure_benchmark
from plantbimoe import PlantBiMoEConfig
from plantbimoe.mlm import PlantBiMoEForMaskedLM
from plantbimoe.pretrained import export_pretrained
from tasks.benchmark import main, plan, pretraining_study, study_out
from tasks.pretraining_report import deltas, split_size

MAX_PER_CLASS = 40


def test_plan_shares_the_random_init_runs_and_gives_every_fine_tune_three_seeds(tmp_path: Path) -> None:
    models = pretraining_study("some-model")
    runs = plan(tmp_path, ["splice_donor"], models, None, [], "full")
    seeds = {name: sorted(r.seed for r in runs if r.model == name) for name in models}
    assert seeds["plantbimoe-pretrained-n250"] == [1, 2, 3] and seeds["cnn-n1000"] == [1, 2, 3]
    assert seeds["plantbimoe-pretrained"] == seeds["plantbimoe"] == [1, 2, 3]
    assert seeds["probe-pretrained"] == [1]
    shared = next(r for r in runs if r.model == "plantbimoe")
    assert shared.folder == study_out("models", "full") / "runs" / "splice_donor" / "plantbimoe" / "seed1"
    pretrained = next(r for r in runs if r.model == "plantbimoe-pretrained-n250")
    assert "init_from=some-model" in pretrained.command and "data.max_train_samples=250" in pretrained.command
    named = plan(tmp_path, ["splice_donor"], models, (2, 3), [], "full")
    assert sorted(r.seed for r in named if r.model == "probe-pretrained") == [2, 3]
    alone = plan(tmp_path, ["splice_donor"], models, (1,), [], "quick", share=False)
    assert all(r.folder.is_relative_to(tmp_path) for r in alone)


def test_split_size_and_deltas() -> None:
    assert split_size("plantbimoe-pretrained-n250") == ("plantbimoe-pretrained", 250)
    assert split_size("kmer+positional") == ("kmer+positional", None)
    rows = [
        {"task": "t", "metric": "auroc", "model": m, "mean": v, "runs": 3, "std": 0.0}
        for m, v in [("plantbimoe-n250", 0.6), ("plantbimoe-pretrained-n250", 0.7),
                     ("plantbimoe", 0.9), ("plantbimoe-pretrained", 0.85), ("probe-pretrained", 0.8)]
    ]
    table = deltas(rows)
    assert [(d["size"], round(d["delta"], 4)) for d in table] == [(250, 0.1), (None, -0.05)]


def test_a_model_keeps_its_colour_in_panels_that_lack_other_models() -> None:
    from tasks.pretraining_report import curve_figure

    def row(task: str, model: str, mean: float) -> dict:
        return {"task": task, "metric": "auroc", "model": model, "mean": mean, "std": 0.01, "runs": 3}

    rows = [row("a", "plantbimoe-pretrained", 0.9), row("a", "plantbimoe", 0.8), row("a", "cnn", 0.7),
            row("b", "plantbimoe", 0.8), row("b", "cnn", 0.7), row("b", "probe-random-init", 0.6)]
    fig = curve_figure(rows, full_size=4000, title="t")
    colours: dict[str, set] = {}
    for ax in fig.axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            line = handle.lines[0] if hasattr(handle, "lines") else handle  # error bars or a marker
            colours.setdefault(label, set()).add(line.get_color())
    assert colours.keys() == {"plantbimoe-pretrained", "plantbimoe", "cnn", "probe-random-init"}
    assert all(len(c) == 1 for c in colours.values())
    assert len(set.union(*colours.values())) == 4


@pytest.mark.slow
def test_pretraining_study_runs_probes_and_a_low_data_pair(tmp_path: Path) -> None:
    data = tmp_path / "data"
    ensure_benchmark(data / "bench" / "arabidopsis_thaliana", max_per_class=MAX_PER_CLASS)
    model = export_pretrained(PlantBiMoEForMaskedLM(PlantBiMoEConfig.preset("tiny")), tmp_path / "pretrained")
    out = tmp_path / "report"
    chosen = ["probe-random-init", "probe-pretrained", "probe-random-init-layers", "probe-pretrained-layers",
              "plantbimoe-n250", "plantbimoe-pretrained-n250"]
    args = [
        "--study", "pretraining", "--out", str(out), "--tasks", "splice_donor", "--seeds", "1", "--jobs", "2",
        "--init-from", str(model), "--models", *chosen, "--set", f"paths.data_dir={data}",
        f"+data.prepare.max_per_class={MAX_PER_CLASS}", "trainer.max_steps=2", "trainer.val_check_interval=2",
        "data.batch_size=8", "callbacks.progress_bar=null",
    ]
    assert main(args) == 0
    runs = out / "runs" / "splice_donor"
    for name in chosen:
        results = json.loads((runs / name / "seed1" / "results.json").read_text())
        assert results["label"] == name and 0.0 <= results["metrics"]["test/auroc"] <= 1.0
    probe = json.loads((runs / "probe-pretrained" / "seed1" / "results.json").read_text())
    assert probe["init_from"] == str(model) and probe["alpha"] > 0 and probe["layer"] == "final"
    layered = json.loads((runs / "probe-pretrained-layers" / "seed1" / "results.json").read_text())
    assert set(layered["layers"]) == {"0", "1", "2", "3", "final"} and layered["layer"] in layered["layers"]
    best = max(layered["layers"].values(), key=lambda s: s["val"])
    assert layered["metrics"]["test/auroc"] == pytest.approx(best["test"])
    text = (out / "results.md").read_text()
    assert "Pretrained minus random init" in text
    assert "| splice_donor | auroc | plantbimoe-pretrained vs plantbimoe | 250 |" in text
    assert "| splice_donor | auroc | probe-pretrained vs probe-random-init | full cap |" in text
    assert "| splice_donor | auroc | probe-pretrained-layers vs probe-random-init-layers | full cap |" in text
    assert (out / "results.png").stat().st_size > 0
