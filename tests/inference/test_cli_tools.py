"""``plantbimoe embed``, ``predict``, ``score-windows`` and ``export`` on real TAIR10 sequences."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from plantbimoe.cli import main
from plantbimoe.inference.embedding import embed_sequences
from plantbimoe.inference.runtime import Runtime
from plantbimoe.sequence_task import PlantBiMoEForSequenceTask
from plantbimoe.tokenizer import add_special_tokens, encode, pad_batch
from tests.interop.helpers import save_lightning_checkpoint, sequence_task

STARTS = (2_000_000, 3_000_000, 4_000_000)


@pytest.fixture(scope="module")
def inputs(chr1, tmp_path_factory) -> dict[str, Path]:
    """Real chr1 pieces (40-90 bp, one soft-masked) as FASTA and CSV."""
    seq = chr1[1]
    pieces = [seq[s : s + 40 + 25 * i].decode() for i, s in enumerate(STARTS)]
    pieces[1] = pieces[1].lower()
    folder = tmp_path_factory.mktemp("inputs")
    records = [f">piece{i} chr1:{s}\n{p}\n" for i, (s, p) in enumerate(zip(STARTS, pieces, strict=True))]
    (folder / "seqs.fa").write_text("".join(records))
    with open(folder / "seqs.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["name", "sequence", "label"])
        writer.writerows([(f"piece{i}", p, 0) for i, p in enumerate(pieces)])
    return {"fasta": folder / "seqs.fa", "csv": folder / "seqs.csv", "pieces": pieces}


def test_embed_fasta_and_csv(inputs, model_dir, model, tmp_path: Path) -> None:
    out = tmp_path / "emb.npy"
    model_arg = str(model_dir)
    args = ["embed", model_arg, str(inputs["fasta"]), "-o", str(out), "--quiet", "--rc-average"]
    assert main([*args, "--precision", "fp32"]) == 0  # compared with the library in float32
    emb = np.load(out)
    assert emb.shape == (3, 32)
    assert (tmp_path / "emb.ids.txt").read_text().split() == ["piece0", "piece1", "piece2"]
    expected = embed_sequences(model, [encode(p) for p in inputs["pieces"]], Runtime(), rc_average=True)
    np.testing.assert_allclose(emb, expected, atol=1e-5)
    assert main(args) == 0  # default precision auto: bf16 where the CPU has it, within bf16 rounding
    np.testing.assert_allclose(np.load(out), expected, atol=0.05, rtol=0.05)
    out2 = tmp_path / "layers.npy"
    assert main(["embed", model_arg, str(inputs["csv"]), "-o", str(out2), "--layers", "all", "--quiet"]) == 0
    assert np.load(out2).shape == (3, 3, 32)
    assert (tmp_path / "layers.ids.txt").read_text().split() == ["piece0", "piece1", "piece2"]


@pytest.mark.skipif(importlib.util.find_spec("pyarrow") is not None, reason="pyarrow is installed")
def test_parquet_without_pyarrow_fails_early(inputs, model_dir, tmp_path: Path, capsys) -> None:
    assert main(["embed", str(model_dir), str(inputs["csv"]), "-o", str(tmp_path / "e.parquet")]) == 2
    assert "pip install pyarrow" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_embed_bad_input_names_the_line(model_dir, tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("id,sequence\na,ACGT\nb,ACXGT\n")
    assert main(["embed", str(model_dir), str(bad), "-o", str(tmp_path / "e.npy"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "bad.csv: line 3: 'X' at position 3" in err
    assert not (tmp_path / "e.npy").exists()


@pytest.fixture(scope="module")
def fine_tuned(tmp_path_factory):
    task = sequence_task("multiclass", 3, head_hidden_size=8, rc_eval=True, seed=5)
    with torch.no_grad():  # a head that is not near-uniform
        for p in task.head.parameters():
            p.mul_(20)
    folder = tmp_path_factory.mktemp("ft")
    return task, save_lightning_checkpoint(task, folder / "ft.ckpt")


def test_predict_matches_the_task_module(inputs, fine_tuned, tmp_path: Path) -> None:
    task, ckpt = fine_tuned
    out = tmp_path / "pred.tsv"
    assert main(["predict", str(ckpt), str(inputs["fasta"]), "-o", str(out), "--quiet"]) == 0
    with open(out) as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    assert list(rows[0]) == ["id", "prediction", "prob_0", "prob_1", "prob_2"]
    probs = np.array([[float(r[f"prob_{k}"]) for k in range(3)] for r in rows])
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert [int(r["prediction"]) for r in rows] == probs.argmax(axis=1).tolist()
    input_ids, mask = pad_batch([add_special_tokens(encode(p)) for p in inputs["pieces"]])
    with torch.no_grad():
        outputs = task.predict_batch({"input_ids": input_ids, "attention_mask": mask}, rc_average=True)
    expected = torch.softmax(outputs, dim=-1)
    np.testing.assert_allclose(probs, expected.numpy(), atol=1e-5)
    # the exported folder predicts the same (safetensors + task.json)
    assert main(["export", str(ckpt), str(tmp_path / "exported")]) == 0
    assert (tmp_path / "exported" / "task.json").is_file()
    out2 = tmp_path / "pred2.tsv"
    assert main(["predict", str(tmp_path / "exported"), str(inputs["csv"]), "-o", str(out2), "--quiet"]) == 0
    assert out2.read_text() == out.read_text()


def test_predict_crops_as_the_model_was_evaluated(inputs, tmp_path: Path) -> None:
    """A model fine-tuned with data.crop reads the central `crop` bases unless --max-length says otherwise."""
    task = sequence_task("binary", 2, crop=50, seed=6)
    ckpt = save_lightning_checkpoint(task, tmp_path / "cropped.ckpt")
    out, fp32 = tmp_path / "pred.tsv", ["--quiet", "--precision", "fp32"]
    assert main(["predict", str(ckpt), str(inputs["fasta"]), "-o", str(out), *fp32]) == 0
    central = [p[(len(p) - 50) // 2 :][:50] if len(p) > 50 else p for p in inputs["pieces"]]
    input_ids, mask = pad_batch([add_special_tokens(encode(p)) for p in central])
    with torch.no_grad():
        expected = torch.sigmoid(task.predict_batch({"input_ids": input_ids, "attention_mask": mask}, False))
    with open(out) as handle:
        probs = [float(r["prob_1"]) for r in csv.DictReader(handle, delimiter="\t")]
    np.testing.assert_allclose(probs, expected[:, 0].numpy(), atol=1e-5)
    assert main(["export", str(ckpt), str(tmp_path / "exported")]) == 0  # task.json keeps the crop
    out2 = tmp_path / "pred2.tsv"
    assert main(["predict", str(tmp_path / "exported"), str(inputs["fasta"]), "-o", str(out2), *fp32]) == 0
    assert out2.read_text() == out.read_text()
    whole = tmp_path / "whole.tsv"
    whole_args = ["predict", str(ckpt), str(inputs["fasta"]), "-o", str(whole), *fp32, "--max-length", "1000"]
    assert main(whole_args) == 0
    assert whole.read_text() != out.read_text()
    tiled = tmp_path / "tiled.tsv"
    assert main(["predict", str(ckpt), str(inputs["fasta"]), "-o", str(tiled), *fp32, "--tiles"]) == 0
    model = PlantBiMoEForSequenceTask.from_pretrained(ckpt)
    expected_tiled = torch.sigmoid(torch.from_numpy(
        model.predict_tiled([encode(p) for p in inputs["pieces"]], 50, Runtime())[:, 0]))
    with open(tiled) as handle:
        tiled_probs = [float(r["prob_1"]) for r in csv.DictReader(handle, delimiter="\t")]
    np.testing.assert_allclose(tiled_probs, expected_tiled.numpy(), atol=1e-5)


def test_predict_tiles_by_default_when_the_model_was_evaluated_on_tiles(inputs, tmp_path: Path) -> None:
    """data.eval_tiles is kept in the checkpoint (and task.json): predict reads tiles unless --no-tiles."""
    task = sequence_task("binary", 2, crop=50, eval_tiles=True, seed=6)
    ckpt = save_lightning_checkpoint(task, tmp_path / "tiled.ckpt")
    fp32 = ["--quiet", "--precision", "fp32"]
    runs = {name: tmp_path / f"{name}.tsv" for name in ("default", "tiles", "central")}
    for name, extra in (("default", []), ("tiles", ["--tiles"]), ("central", ["--no-tiles"])):
        assert main(["predict", str(ckpt), str(inputs["fasta"]), "-o", str(runs[name]), *fp32, *extra]) == 0
    assert runs["default"].read_text() == runs["tiles"].read_text() != runs["central"].read_text()
    model = PlantBiMoEForSequenceTask.from_pretrained(ckpt)
    assert model.eval_tiles and model.crop == 50
    expected = torch.sigmoid(torch.from_numpy(
        model.predict_tiled([encode(p) for p in inputs["pieces"]], 50, Runtime())[:, 0]))
    with open(runs["default"]) as handle:
        probs = [float(r["prob_1"]) for r in csv.DictReader(handle, delimiter="\t")]
    np.testing.assert_allclose(probs, expected.numpy(), atol=1e-5)
    assert main(["export", str(ckpt), str(tmp_path / "exported")]) == 0
    exported = tmp_path / "exported.tsv"
    folder = str(tmp_path / "exported")
    assert main(["predict", folder, str(inputs["fasta"]), "-o", str(exported), *fp32]) == 0
    assert exported.read_text() == runs["default"].read_text()


def test_predict_needs_a_fine_tuned_model(inputs, model_dir, tmp_path: Path, capsys) -> None:
    assert main(["predict", str(model_dir), str(inputs["fasta"]), "-o", str(tmp_path / "p.tsv")]) == 2
    assert "predict needs a fine-tuned one" in capsys.readouterr().err


def test_score_windows_bedgraph_and_npz(inputs, model_dir, tmp_path: Path) -> None:
    bedgraph = tmp_path / "ref.bedgraph"
    args = ["score-windows", str(model_dir), str(inputs["fasta"]), "--window", "32", "--overlap", "8"]
    args.append("--quiet")
    assert main([*args, "-o", str(bedgraph)]) == 0
    lines = bedgraph.read_text().splitlines()
    assert lines[0].startswith("track type=bedGraph")
    assert len(lines) - 1 == sum(len(p) for p in inputs["pieces"])
    chrom, start, end, value = lines[1].split("\t")
    assert (chrom, start, end) == ("piece0", "0", "1") and float(value) < 0
    npz = tmp_path / "probs.npz"
    assert main([*args, "-o", str(npz), "--score", "probs"]) == 0
    arrays = np.load(npz)
    assert [arrays[f"piece{i}"].shape for i in range(3)] == [(len(p), 4) for p in inputs["pieces"]]


def test_export_refuses_an_occupied_folder(model_dir, tmp_path: Path, capsys) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "x").write_text("keep")
    assert main(["export", str(model_dir), str(tmp_path / "out")]) == 2
    assert "not an empty folder" in capsys.readouterr().err
    assert main(["export", str(model_dir), str(tmp_path / "out"), "--overwrite"]) == 0


def test_predict_tiles_need_a_crop(inputs, fine_tuned, tmp_path: Path, capsys) -> None:
    _, ckpt = fine_tuned  # fine-tuned on whole sequences: no crop to tile with
    assert main(["predict", str(ckpt), str(inputs["fasta"]), "-o", str(tmp_path / "p.tsv"), "--tiles"]) == 2
    assert "--tiles needs a crop" in capsys.readouterr().err
    assert not (tmp_path / "p.tsv").exists()
