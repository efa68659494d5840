"""Head refit: the refitted output layer scores what the regression scored, is kept only when
better on validation, and the refitted checkpoint is the one tested."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from lightning import Trainer

from baselines.linear import evaluate
from tasks.head_refit import head_features, refit_checkpoint, refit_output_layer
from tests.finetune.test_sequence_task import KINDS, make_datamodule, make_task


@pytest.mark.parametrize(("task_type", "num_labels", "metric"), KINDS)
def test_refit_layer_scores_what_the_regression_scored(
    tmp_path: Path, task_type: str, num_labels: int, metric: str
) -> None:
    datamodule = make_datamodule(tmp_path, task_type, num_labels, metric)
    datamodule.setup("fit")
    task = make_task(task_type, num_labels, metric)
    layer = task.head.output_layer
    torch.nn.init.zeros_(layer.weight)  # a layer that has learned nothing: constant outputs
    report = refit_output_layer(task, datamodule)
    # the regression on the same features reads GC content, which decides the labels
    assert report.kept and report.val_refit > report.val_trained
    x, y = head_features(task, datamodule.eval_dataloader("val"))
    val = evaluate(layer, x, y, task_type, num_labels, "val")[f"val/{metric}"]
    assert val == pytest.approx(report.val_refit, abs=1e-4)  # the standardisation is folded in
    # a refit that cannot beat the layer in place (an overwhelming L2 penalty) leaves it untouched
    before = {k: v.clone() for k, v in layer.state_dict().items()}
    again = refit_output_layer(task, datamodule, alphas=(1e6,))
    assert not again.kept
    assert all(torch.equal(before[k], v) for k, v in layer.state_dict().items())


def test_rc_averaged_features_match_rc_averaged_outputs(tmp_path: Path) -> None:
    datamodule = make_datamodule(tmp_path, "binary", 2, "auroc")
    datamodule.setup("fit")
    task = make_task(rc_eval=True).eval()
    x, _ = head_features(task, datamodule.eval_dataloader("val"))
    outputs = [task.predict_batch(b, rc_average=True) for b in datamodule.eval_dataloader("val")]
    with torch.no_grad():
        torch.testing.assert_close(task.head.output_layer(x), torch.cat(outputs), atol=1e-5, rtol=1e-5)


def test_the_refitted_checkpoint_is_tested_and_recorded(tmp_path: Path) -> None:
    datamodule = make_datamodule(tmp_path, "binary", 2, "auroc")
    task = make_task(head_refit=True)
    trainer = Trainer(max_steps=3, logger=False, enable_progress_bar=False, enable_model_summary=False,
                      default_root_dir=str(tmp_path))
    trainer.fit(task, datamodule=datamodule)
    best = trainer.checkpoint_callback.best_model_path
    path = refit_checkpoint(trainer, task, datamodule, best)
    assert Path(path).name == f"{Path(best).stem}-refit.ckpt"
    refitted = torch.load(path, weights_only=True)["state_dict"]
    assert torch.equal(refitted["head.mlp.1.weight"], task.head.output_layer.weight)
    trainer.test(task, datamodule=datamodule, ckpt_path=path, weights_only=True)
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["head_refit"] == task.refit_report and set(task.refit_report) >= {"alpha", "kept"}
    assert "test/auroc" in results["metrics"]
