"""The sequence-task module: every kind trains, pooling ignores padding, RC averaging is invariant."""

from __future__ import annotations

import json
import math
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
from lightning import Callback, Trainer

from datamodules.mpgb import MPGBDataModule
from plantbimoe import PlantBiMoEConfig, PlantBiMoEForMaskedLM
from plantbimoe.tokenizer import add_special_tokens, encode, pad_batch, reverse_complement
from tasks.heads import POOLINGS
from tasks.metrics import metric_names
from tasks.sequence import SequenceTask
from tests.finetune.helpers import labelled_rows, random_sequences, tiny_backbone, write_table

KINDS = [
    ("binary", 2, "auroc"),
    ("multiclass", 3, "mcc"),
    ("multilabel", 3, "auroc"),
    ("regression", 1, "r2"),
]


def make_task(
    task_type: str = "binary", num_labels: int = 2, metric: str = "auroc", **kwargs
) -> SequenceTask:
    torch.manual_seed(0)
    optimizer = partial(torch.optim.AdamW, lr=1e-3, weight_decay=0.01)
    return SequenceTask(tiny_backbone(), optimizer, task_type, num_labels, metric, **kwargs)


def make_datamodule(root: Path, task_type: str, num_labels: int, metric: str) -> MPGBDataModule:
    rng = np.random.default_rng(1)
    rows = labelled_rows(task_type, num_labels, random_sequences(rng, 48, 20, 60), rng)
    for name, part in (("train.csv", rows[:32]), ("dev.csv", rows[32:40]), ("test.csv", rows[40:])):
        write_table(root / name, part)
    return MPGBDataModule(
        name=f"toy_{task_type}",
        root=str(root),
        format="csv",
        task_type=task_type,
        num_labels=num_labels,
        metric=metric,
        train_file="train.csv",
        val_file="dev.csv",
        test_file="test.csv",
        batch_size=8,
        rc_augment=True,
        task_group="toy",
    )


@pytest.mark.parametrize(("task_type", "num_labels", "metric"), KINDS)
def test_each_kind_trains_validates_and_tests(
    task_type: str, num_labels: int, metric: str, tmp_path: Path
) -> None:
    datamodule = make_datamodule(tmp_path, task_type, num_labels, metric)
    task = make_task(task_type, num_labels, metric, rc_eval=True)
    head_before = task.head.mlp[-1].weight.detach().clone()
    trainer = Trainer(
        max_steps=4,
        val_check_interval=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=str(tmp_path),
    )
    trainer.fit(task, datamodule=datamodule)
    assert not torch.equal(head_before, task.head.mlp[-1].weight)
    assert f"val/{metric}_best" in trainer.callback_metrics
    trainer.test(task, datamodule=datamodule, verbose=False)
    logged = {k: float(v) for k, v in trainer.callback_metrics.items()}
    for name in metric_names(task_type):
        assert f"test/{name}" in logged
    assert math.isfinite(logged["test/loss"])
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["dataset"] == f"toy_{task_type}" and results["label"] == "random-init"
    assert results["metrics"][f"test/{metric}"] == pytest.approx(logged[f"test/{metric}"])


@pytest.mark.parametrize("pooling", POOLINGS)
def test_padding_does_not_change_pooled_output(pooling: str) -> None:
    task = make_task(pooling=pooling, pooling_window=5).eval()
    short = add_special_tokens(encode("ACGTTGCAAGGCTTAACG"))
    long = add_special_tokens(encode("T" * 50))
    alone_ids, alone_mask = pad_batch([short])
    padded_ids, padded_mask = pad_batch([short, long], pad_to_multiple_of=64)
    with torch.no_grad():
        alone = task.head.pool(task.backbone(alone_ids, alone_mask).last_hidden_state, alone_mask)
        padded = task.head.pool(task.backbone(padded_ids, padded_mask).last_hidden_state, padded_mask)
        out_alone = task.predict_batch({"input_ids": alone_ids, "attention_mask": alone_mask}, False)
        out_padded = task.predict_batch({"input_ids": padded_ids, "attention_mask": padded_mask}, False)
    torch.testing.assert_close(alone[0], padded[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out_alone[0], out_padded[0], atol=1e-5, rtol=1e-5)


def test_rc_averaging_is_invariant_to_feeding_the_reverse_complement() -> None:
    task = make_task("multiclass", 3, "mcc").eval()
    seqs = [encode(s) for s in ("ACGTTGCAAGGCTTAACGGA", "TTTACG", "GGGCCCATATNNACG")]
    forward = pad_batch([add_special_tokens(s) for s in seqs])
    rc = pad_batch([add_special_tokens(reverse_complement(s)) for s in seqs])
    with torch.no_grad():
        a = task.predict_batch(
            dict(zip(("input_ids", "attention_mask"), forward, strict=True)), rc_average=True
        )
        b = task.predict_batch(dict(zip(("input_ids", "attention_mask"), rc, strict=True)), rc_average=True)
        plain_a = task.predict_batch(
            dict(zip(("input_ids", "attention_mask"), forward, strict=True)), rc_average=False
        )
        plain_b = task.predict_batch(
            dict(zip(("input_ids", "attention_mask"), rc, strict=True)), rc_average=False
        )
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(plain_a, plain_b, atol=1e-5)  # the backbone itself is not RC-equivariant


def _mlm_checkpoint(path: Path, backbone: dict) -> PlantBiMoEForMaskedLM:
    torch.manual_seed(5)
    mlm = PlantBiMoEForMaskedLM(PlantBiMoEConfig.from_dict(backbone))
    torch.save({"state_dict": {f"model.{k}": v for k, v in mlm.state_dict().items()}, "global_step": 7}, path)
    return mlm


def test_init_from_loads_backbone_and_reports_bad_keys(tmp_path: Path) -> None:
    mlm = _mlm_checkpoint(tmp_path / "pretrain.ckpt", tiny_backbone())
    task = make_task()
    report = task.init_from(tmp_path / "pretrain.ckpt")
    assert report.clean and report.prefix == "model.backbone."
    for name, tensor in task.backbone.state_dict().items():
        torch.testing.assert_close(tensor, mlm.backbone.state_dict()[name])
    assert task.run_label == "pretrain"

    other = tiny_backbone() | {"intermediate_size": 32}
    _mlm_checkpoint(tmp_path / "other.ckpt", other)
    with pytest.raises(ValueError, match=r"other.ckpt does not fit the backbone: .*shape mismatch: .*ffn"):
        make_task().init_from(tmp_path / "other.ckpt")
    state = torch.load(tmp_path / "pretrain.ckpt", weights_only=True)
    dropped = [k for k in state["state_dict"] if "norm_f" in k]
    for key in dropped:
        del state["state_dict"][key]
    torch.save(state, tmp_path / "partial.ckpt")
    with pytest.raises(ValueError, match=r"missing: norm_f"):
        make_task().init_from(tmp_path / "partial.ckpt")
    lenient = make_task(init_strict=False)
    assert lenient.init_from(tmp_path / "partial.ckpt").missing == ["norm_f.weight"]


def test_freeze_and_lower_backbone_learning_rate() -> None:
    frozen = make_task(freeze_backbone=True)
    optimizer = frozen.configure_optimizers()["optimizer"]
    head_params = {id(p) for p in frozen.head.parameters()}
    assert all(id(p) in head_params for g in optimizer.param_groups for p in g["params"])
    before = {k: v.clone() for k, v in frozen.backbone.state_dict().items()}
    ids, mask = pad_batch([add_special_tokens(encode("ACGTACGGT")), add_special_tokens(encode("TTGA"))])
    outputs, aux = frozen(ids, mask)
    assert aux is None
    torch.nn.functional.binary_cross_entropy_with_logits(
        outputs.squeeze(-1), torch.tensor([1.0, 0.0])
    ).backward()
    optimizer.step()
    assert all(torch.equal(before[k], v) for k, v in frozen.backbone.state_dict().items())
    slow = make_task(backbone_lr_factor=0.1)
    by_lr = {}
    for group in slow.configure_optimizers()["optimizer"].param_groups:
        by_lr.setdefault(group["lr"], set()).update(id(p) for p in group["params"])
    assert sorted(by_lr) == pytest.approx([1e-4, 1e-3])
    assert {id(p) for p in slow.backbone.parameters()} == by_lr[min(by_lr)]


def test_head_warmup_trains_the_head_alone_then_the_whole_network(tmp_path: Path) -> None:
    datamodule = make_datamodule(tmp_path, "binary", 2, "auroc")
    task = make_task(head_warmup_steps=2)
    backbone_start = {k: v.clone() for k, v in task.backbone.state_dict().items()}
    head_start = task.head.mlp[-1].weight.detach().clone()
    seen: list[tuple[int, bool]] = []

    class Record(Callback):
        def on_train_batch_end(self, trainer, module, *args) -> None:
            state = module.backbone.state_dict()
            unchanged = all(torch.equal(backbone_start[k], v) for k, v in state.items())
            seen.append((trainer.global_step, unchanged))

    trainer = Trainer(
        max_steps=4,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[Record()],
        default_root_dir=str(tmp_path),
    )
    trainer.fit(task, datamodule=datamodule)
    assert seen == [(1, True), (2, True), (3, False), (4, False)]
    assert not torch.equal(head_start, task.head.mlp[-1].weight)
    assert not make_task(head_warmup_steps=10).in_head_warmup()  # no trainer (inference): never frozen
    with pytest.raises(ValueError, match="task.head_warmup_steps must be an integer >= 0"):
        make_task(head_warmup_steps=-1)
    too_long = Trainer(max_steps=4, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                       enable_model_summary=False, default_root_dir=str(tmp_path))
    with pytest.raises(ValueError, match=r"head_warmup_steps=4 >= trainer.max_steps=4"):
        too_long.fit(make_task(head_warmup_steps=4), datamodule=datamodule)
