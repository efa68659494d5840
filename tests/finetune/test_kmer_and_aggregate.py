"""The k-mer baseline (features, fits, Hydra entry point) and the aggregation table."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from baselines.kmer import kmer_frequencies, main
from baselines.linear import fit_linear
from datamodules.mpgb.readers import LabeledSequences
from plantbimoe.tokenizer import encode
from tasks.aggregate import aggregate, collect, to_markdown
from tasks.aggregate import main as aggregate_main
from tasks.metrics import build_metrics, metric_inputs
from tasks.sequence import write_results
from tests.finetune.helpers import labelled_rows, random_sequences, write_table
from tests.framework.hydra_utils import compose_config


def _data(seqs: list[str], labels: list) -> LabeledSequences:
    tokens = [encode(s) for s in seqs]
    offsets = np.concatenate([[0], np.cumsum([len(t) for t in tokens])]).astype(np.int64)
    return LabeledSequences(np.concatenate(tokens), offsets, np.asarray(labels), "toy")


def test_kmer_frequencies_by_hand() -> None:
    feats = kmer_frequencies(_data(["ACGTA", "NNAAC"], [0, 1]), ks=(1, 2))
    assert feats.shape == (2, 4 + 16)
    np.testing.assert_allclose(feats[0, :4], [2 / 5, 1 / 5, 1 / 5, 1 / 5])  # A C G T
    dimers = {"AC": 1, "CG": 6, "GT": 11, "TA": 12}  # index = 4 * first + second
    expected = np.zeros(16)
    expected[list(dimers.values())] = 1 / 4
    np.testing.assert_allclose(feats[0, 4:], expected)
    # second sequence: no dimer across the boundary and none with N; AA and AC remain
    np.testing.assert_allclose(feats[1, 4:][[0, 1]], [1 / 2, 1 / 2])
    np.testing.assert_allclose(feats[1, :4], [2 / 3, 1 / 3, 0, 0])


def test_linear_fits_learn_easy_targets() -> None:
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.normal(size=(200, 5)).astype(np.float32))
    y_class = (x[:, 0] + 0.5 * x[:, 1] > 0).long()
    model = fit_linear(x, y_class, "binary", 2, alpha=1e-3)
    metrics = build_metrics("binary", 2)
    metrics.update(*metric_inputs("binary", model(x).detach(), y_class))
    assert float(metrics.compute()["auroc"]) > 0.98
    y_reg = 2 * x[:, 2] - x[:, 3] + 0.5
    ridge = fit_linear(x, y_reg, "regression", 1, alpha=1e-6)
    torch.testing.assert_close(ridge(x).squeeze(-1).detach(), y_reg, atol=1e-3, rtol=1e-3)
    softmax = fit_linear(x, (x[:, 0] > 0).long() + (x[:, 0] > 1).long(), "multiclass", 3, alpha=1e-3)
    assert softmax.weight.shape == (3, 5)


def test_kmer_entry_point_logs_like_a_run(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    rows = labelled_rows("binary", 2, random_sequences(rng, 90, 100, 300), rng)
    for name, part in (("train.csv", rows[:60]), ("dev.csv", rows[60:75]), ("test.csv", rows[75:])):
        write_table(tmp_path / name, part)
    cfg = compose_config(
        [
            "experiment=finetune_mpgb",
            "data/mpgb=core_promoter",
            f"data.root={tmp_path}",
            "+kmer.k=[1,2,3]",
            "+kmer.alphas=[0.01,0.1]",
        ],
        tmp_path / "run",
    )
    value = main.__wrapped__(cfg)
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["label"] == "kmer" and results["dataset"] == "core_promoter"
    assert results["metrics"]["val/mcc_best"] == pytest.approx(value)
    assert results["metrics"]["test/auroc"] > 0.8  # GC content decides the toy labels
    assert list((tmp_path / "run" / "tensorboard").glob("events.out.tfevents.*"))


def _fake_run(folder: Path, label: str, dataset: str, group: str, seed: int, value: float) -> None:
    write_results(
        folder,
        {
            "dataset": dataset,
            "task_group": group,
            "task_type": "binary",
            "metric": "auroc",
            "label": label,
            "seed": seed,
            "init_from": None,
            "metrics": {"test/auroc": value, "test/mcc": 0.0},
        },
    )


def test_aggregation_table_from_fake_runs(tmp_path: Path) -> None:
    _fake_run(tmp_path / "0", "random-init", "poly_a_x", "polyadenylation", 1, 0.70)
    _fake_run(tmp_path / "1", "random-init", "poly_a_x", "polyadenylation", 2, 0.80)
    _fake_run(tmp_path / "2", "random-init", "poly_a_y", "polyadenylation", 1, 0.60)
    _fake_run(tmp_path / "3", "random-init", "poly_a_y", "polyadenylation", 2, 0.90)
    rows = aggregate(collect([tmp_path]))
    by = {(r["level"], r["dataset"]): r for r in rows}
    assert by[("dataset", "poly_a_x")]["mean"] == pytest.approx(0.75)
    assert by[("dataset", "poly_a_x")]["std"] == pytest.approx(np.std([0.7, 0.8], ddof=1))
    task = by[("task", "2 datasets")]
    assert task["mean"] == pytest.approx(0.75) and task["runs"] == 4
    assert task["std"] == pytest.approx(np.std([0.65, 0.85], ddof=1))  # per-seed task averages
    assert "| dataset | random-init | polyadenylation | poly_a_x | auroc | 2 | 0.7500 |" in to_markdown(rows)
    assert aggregate_main([str(tmp_path), "--out", str(tmp_path / "table")]) == 0
    with open(tmp_path / "table.csv") as handle:
        table = list(csv.DictReader(handle))
    assert [r["dataset"] for r in table] == ["poly_a_x", "poly_a_y", "2 datasets"]
    _fake_run(tmp_path / "4", "random-init", "poly_a_x", "polyadenylation", 1, 0.5)  # a newer rerun of seed 1
    rerun = {(r["level"], r["dataset"]): r for r in aggregate(collect([tmp_path]))}
    assert rerun[("dataset", "poly_a_x")]["mean"] == pytest.approx(0.65)
