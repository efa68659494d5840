"""Dataset configs select their task preset; each preset runs end to end through train's runner."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate

from tasks.runner import run
from tests.finetune.helpers import labelled_rows, random_sequences, write_fasta, write_table
from tests.framework.hydra_utils import CONF_DIR, compose_config

DATASETS = sorted(p.stem for p in (CONF_DIR / "data" / "mpgb").glob("*.yaml"))
EMBEDDED = sorted(f"embedded/{p.stem}" for p in (CONF_DIR / "data" / "mpgb" / "embedded").glob("*.yaml"))
PRESETS = sorted(p.stem for p in (CONF_DIR / "task" / "mpgb").glob("*.yaml") if p.stem != "sequence")
SMALL = [
    "backbone.d_model=32",
    "backbone.n_layer=2",
    "backbone.intermediate_size=64",
    "callbacks.progress_bar=null",
]


def _compose(overrides: list[str], tmp_path: Path):
    return compose_config(overrides, tmp_path)


def test_the_benchmark_has_31_datasets_and_11_task_presets() -> None:
    assert len(DATASETS) == 31 and len(EMBEDDED) == 5 and len(PRESETS) == 11
    groups = {
        yaml.safe_load((CONF_DIR / "data" / "mpgb" / f"{d}.yaml").read_text())["task_group"] for d in DATASETS
    }
    assert groups == set(PRESETS)


@pytest.mark.parametrize("dataset", DATASETS + EMBEDDED)
def test_dataset_selects_its_task_preset(dataset: str, tmp_path: Path) -> None:
    experiment = "finetune_arabidopsis" if dataset.startswith("embedded/") else "finetune_mpgb"
    overrides = [f"experiment={experiment}", f"data/mpgb={dataset}"]
    cfg = _compose(overrides, tmp_path)
    assert HydraConfig.get().runtime.choices["task"] == f"mpgb/{cfg.data.task_group}"
    assert (cfg.task.task_type, cfg.task.num_labels, cfg.task.metric) == (
        cfg.data.task_type,
        cfg.data.num_labels,
        cfg.data.metric,
    )
    assert cfg.optimized_metric == f"val/{cfg.data.metric}_best"
    assert cfg.callbacks.model_checkpoint.monitor == f"val/{cfg.data.metric}"
    datamodule = instantiate(cfg.data)
    assert datamodule.name == cfg.data.name and str(datamodule.root).startswith(str(tmp_path))
    if dataset.startswith("embedded/"):
        assert datamodule.prepare.func.__name__ == "ensure_benchmark"


@pytest.mark.parametrize(
    ("dataset", "extra", "steps"),
    [
        ("embedded/tair10_splice_donor", [], 300),
        ("embedded/tair10_splice_acceptor", [], 600),
        ("embedded/tair10_polyadenylation", [], 300),
        ("embedded/tair10_lncrna", [], 1000),
        ("embedded/tair10_lncrna", ["trainer.max_steps=7"], 7),
    ],
)
def test_the_recipe_gives_each_dataset_its_step_budget(
    dataset: str, extra: list[str], steps: int, tmp_path: Path
) -> None:
    """lncRNA trains 1,000 steps (conf/finetune_steps/long_sequences.yaml), acceptors 600
    (splice_acceptor.yaml), the other embedded tasks 300, and an explicit trainer.max_steps wins."""
    cfg = _compose(["experiment=finetune_arabidopsis", f"data/mpgb={dataset}", *extra], tmp_path)
    assert cfg.trainer.max_steps == steps


@pytest.mark.parametrize(("extra", "window"), [([], 300), (["data.max_length=100"], 100)])
def test_core_promoter_pools_positionally_over_the_whole_window(
    extra: list[str], window: int, tmp_path: Path
) -> None:
    """The preset's positional window follows the data, so a cropped dataset still composes."""
    cfg = _compose(["experiment=finetune_arabidopsis", "data/mpgb=embedded/tair10_core_promoter", *extra],
                   tmp_path)
    assert cfg.task.pooling == "positional" and cfg.task.pooling_window == window


def _toy_files(cfg, root: Path) -> None:
    """Small files in the dataset's own format and names, labels fitting its task kind."""
    rng = np.random.default_rng(0)
    data = cfg.data
    num_labels = data.num_labels or 3  # chromatin accessibility: the count is read from the files
    rows = labelled_rows(data.task_type, num_labels, random_sequences(rng, 40, 30, 80), rng)
    splits = {"train": rows[:24], "val": rows[24:32], "test": rows[32:]}
    if data.val_file is None:
        splits["train"] += splits.pop("val")
    for split, part in splits.items():
        path = root / data[f"{split}_file"]
        if data.format == "fasta":
            write_fasta(path, part)
        else:
            write_table(path, part, "," if data.format == "csv" else "\t")


def _one_dataset_per_preset() -> list[str]:
    chosen = {}
    for dataset in DATASETS:
        group = yaml.safe_load((CONF_DIR / "data" / "mpgb" / f"{dataset}.yaml").read_text())["task_group"]
        chosen.setdefault(group, dataset)
    return [chosen[p] for p in PRESETS]


@pytest.mark.parametrize("dataset", _one_dataset_per_preset())
def test_each_task_preset_trains_and_tests_through_the_runner(dataset: str, tmp_path: Path) -> None:
    overrides = [
        "experiment=finetune_mpgb",
        f"data/mpgb={dataset}",
        f"data.root={tmp_path / 'data'}",
        "data.batch_size=8",
        "trainer.max_epochs=null",
        "trainer.max_steps=2",
        "trainer.val_check_interval=2",
        "trainer.log_every_n_steps=1",
        *SMALL,
    ]
    cfg = _compose(overrides, tmp_path / "run")
    (tmp_path / "data").mkdir()
    _toy_files(cfg, tmp_path / "data")
    value = run(cfg)
    assert value is not None and np.isfinite(value)
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["dataset"] == cfg.data.name and results["task_group"] == cfg.data.task_group
    assert f"test/{cfg.data.metric}" in results["metrics"]
    assert (tmp_path / "run" / "checkpoints").is_dir()
