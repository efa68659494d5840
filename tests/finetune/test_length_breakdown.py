"""tasks.length_breakdown: a fine-tuned model's metrics by sequence length, as predict reads them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torchmetrics.functional.classification import binary_auroc

from plantbimoe.inference.runtime import Runtime
from plantbimoe.sequence_task import PlantBiMoEForSequenceTask, central_crop
from plantbimoe.tokenizer import encode
from tasks.length_breakdown import main
from tests.interop.helpers import save_lightning_checkpoint, sequence_task


@pytest.fixture(scope="module")
def labelled(tmp_path_factory) -> tuple[Path, list[str], np.ndarray]:
    rng = np.random.default_rng(4)
    lengths = rng.integers(20, 200, size=40)
    sequences = ["".join(rng.choice(list("ACGT"), size=n)) for n in lengths]
    labels = np.arange(40) % 2
    path = tmp_path_factory.mktemp("data") / "test.tsv"
    rows = "".join(f"{s}\t{y}\n" for s, y in zip(sequences, labels, strict=True))
    path.write_text("sequence\tlabel\n" + rows)
    return path, sequences, labels


def test_bins_hold_every_sequence_once_and_the_crop_is_the_models(labelled, tmp_path: Path) -> None:
    path, sequences, labels = labelled
    task = sequence_task("binary", 2, crop=60, seed=2)
    ckpt = save_lightning_checkpoint(task, tmp_path / "m.ckpt")
    out = tmp_path / "bins.json"
    assert main([str(ckpt), str(path), "--edges", "60", "120", "-o", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["crop"] == 60
    rows = {row["lengths"]: row for row in report["rows"]}
    lengths = np.array([len(s) for s in sequences])
    assert [rows[k]["n"] for k in ("1-60", "61-120")] == [int((lengths <= 60).sum()),
                                                         int(((lengths > 60) & (lengths <= 120)).sum())]
    assert rows["all"]["n"] == 40 == sum(row["n"] for key, row in rows.items() if key != "all")
    assert list(rows) == ["all", "1-60", "61-120", ">120"]
    model = PlantBiMoEForSequenceTask.from_pretrained(ckpt)
    with torch.no_grad():
        outputs = model.predict([central_crop(encode(s), 60) for s in sequences], Runtime())
    expected = binary_auroc(torch.sigmoid(torch.from_numpy(outputs[:, 0])), torch.from_numpy(labels))
    assert rows["all"]["auroc"] == pytest.approx(float(expected), abs=1e-4)
    assert main([str(ckpt), str(path), "--edges", "60", "--max-length", "0", "-o", str(out)]) == 0
    whole = json.loads(out.read_text())
    assert whole["crop"] == 0 and whole["rows"][1]["auroc"] == rows["1-60"]["auroc"]  # short ones: uncut
    assert [row["lengths"] for row in whole["rows"]] == ["all", "1-60", ">60"]


def test_tiles_average_the_outputs_of_half_overlapping_windows(labelled, tmp_path: Path) -> None:
    path, sequences, labels = labelled
    model = PlantBiMoEForSequenceTask.from_pretrained(
        save_lightning_checkpoint(sequence_task("binary", 2, crop=60, seed=2), tmp_path / "m.ckpt"))
    ids = [encode(s) for s in sequences]
    with torch.no_grad():
        tiled = model.predict_tiled(ids, 60, Runtime())
        for i in (int(np.argmax([len(s) for s in ids])), int(np.argmin([len(s) for s in ids]))):
            n = len(ids[i])
            windows = [ids[i]] if n <= 60 else [ids[i][a : a + 60] for a in [*range(0, n - 60, 30), n - 60]]
            expected = model.predict(windows, Runtime()).mean(axis=0)
            np.testing.assert_allclose(tiled[i], expected, atol=1e-5)


def test_bad_arguments_name_the_problem(labelled, tmp_path: Path, capsys) -> None:
    path, _, _ = labelled
    ckpt = save_lightning_checkpoint(sequence_task("binary", 2), tmp_path / "m.ckpt")
    assert main([str(ckpt), str(path), "--edges", "120", "60"]) == 2
    assert "--edges must be increasing positive lengths" in capsys.readouterr().err
    other = tmp_path / "test.xlsx"
    other.write_text("x")
    assert main([str(ckpt), str(other), "--edges", "60"]) == 2
    assert "test.xlsx: cannot tell the format from the name" in capsys.readouterr().err
    assert main([str(ckpt), str(tmp_path / "missing.tsv"), "--edges", "60"]) == 2
    assert "missing.tsv" in capsys.readouterr().err
