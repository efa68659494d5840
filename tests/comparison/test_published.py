"""The published-results data file: every number sourced, consistent with our dataset configs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from comparison.published import default_path, load_published
from tests.framework.hydra_utils import CONF_DIR

# DESIGN.md section 4 (the paper's task averages, %): AgroNT, best PDLLM, PlantBiMoE
PAPER = {
    "polyadenylation": (93.62, 90.22, 93.63),
    "splice_site": (99.81, 99.79, 99.84),
    "lncrna": (83.11, 82.79, 84.12),
    "enhancer": (88.15, 84.04, 87.47),
    "chromatin_accessibility": (96.37, 96.54, 96.55),
    "promoter_strength": (73.85, 73.35, 75.23),
    "terminator_strength": (71.66, 69.38, 72.22),
    "histone_modification": (63.99, 66.01, 66.27),
    "core_promoter": (58.74, 64.41, 63.20),
    "conservation": (80.14, 81.18, 81.74),
    "open_chromatin": (43.21, 46.24, 46.88),
}


def test_task_groups_match_the_dataset_configs() -> None:
    published = load_published()
    for path in (CONF_DIR / "data" / "mpgb").glob("*.yaml"):
        config = yaml.safe_load(path.read_text())
        assert published.group_of(config["name"]) == config["task_group"], path.name
        assert published.task_groups[config["task_group"]][0] == config["metric"], path.name
    assert sum(len(d) for _, d in published.task_groups.values()) == 31


def test_paper_averages_and_the_dnabert2_rerun_are_there_with_sources() -> None:
    published = load_published()
    task = {
        (r.task_group, r.model): r for r in published.results if r.source.key == "paper" and not r.dataset
    }
    for group, values in PAPER.items():
        got = tuple(round(100 * task[(group, m)].value, 2) for m in ("AgroNT", "PlantDNAMamba", "PlantBiMoE"))
        assert got == values, group
    dnabert = [r for r in published.results if r.model == "DNABERT-2"]
    assert len(dnabert) == 9 and {r.source.key for r in dnabert} == {"dnallm_mark"}
    assert all(r.source.citation and r.source.url.startswith("https://") for r in published.results)


def test_bad_rows_are_named(tmp_path: Path) -> None:
    raw = yaml.safe_load(default_path().read_text())
    raw["results"].append(
        {"source": "paper", "model": "X", "task_group": "lncrna", "dataset": "core_promoter", "value": 50}
    )
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(raw))
    with pytest.raises(ValueError, match=r"results\[72\].*not a dataset of lncrna"):
        load_published(bad)
