"""The Hugging Face adapter on tiny local ESM and BERT checkpoints with their own tokenizers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("transformers")

from hydra.errors import InstantiationException  # noqa: E402
from hydra.utils import instantiate  # noqa: E402

from plantbimoe.tokenizer import DNATokenizer  # noqa: E402
from plantbimoe_hf import HFBackbone  # noqa: E402
from tasks.runner import run  # noqa: E402
from tests.finetune.helpers import labelled_rows, random_sequences, write_table  # noqa: E402
from tests.framework.hydra_utils import compose_config  # noqa: E402
from tests.hf.checkpoints import save_tiny_bert, save_tiny_esm  # noqa: E402

BUILDERS = {"esm": save_tiny_esm, "bert": save_tiny_bert}


@pytest.fixture(scope="module", params=sorted(BUILDERS))
def checkpoint(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return BUILDERS[request.param](tmp_path_factory.mktemp(request.param))


def test_positions_carry_the_state_of_the_checkpoint_token_covering_them(checkpoint: Path) -> None:
    backbone = HFBackbone(str(checkpoint)).eval()
    sequences = ["ACGTACGTTN", "GGCA"]
    batch = DNATokenizer()(sequences)
    with torch.no_grad():
        out = backbone(batch["input_ids"], batch["attention_mask"])
        direct = backbone.model(**backbone.tokenizer(sequences, padding=True, return_tensors="pt"))
    assert out.last_hidden_state.shape == (2, batch["input_ids"].shape[1], 16)
    for row, text in enumerate(sequences):
        tokens = backbone.tokenizer(text)["input_ids"]
        n = len(tokens)
        hidden = direct.last_hidden_state[row]
        assert torch.allclose(out.last_hidden_state[row, 0], hidden[0], atol=1e-5)  # [CLS] -> its first token
        assert torch.allclose(out.last_hidden_state[row, len(text) + 1], hidden[n - 1], atol=1e-5)  # [SEP]
        # every base carries one of the hidden states of the row's own tokens
        states = hidden[1 : n - 1]
        for pos in range(1, len(text) + 1):
            assert torch.isclose(states, out.last_hidden_state[row, pos], atol=1e-5).all(-1).any()
    assert out.last_hidden_state[1, len(sequences[1]) + 2 :].abs().sum() == 0  # padding


def test_too_many_tokens_is_an_error_and_a_missing_folder_too(checkpoint: Path, tmp_path: Path) -> None:
    backbone = HFBackbone(str(checkpoint), max_tokens=4)
    batch = DNATokenizer()(["ACGTACGTACGTACGTACGT"])
    with pytest.raises(ValueError, match="data.max_length"):
        backbone(batch["input_ids"], batch["attention_mask"])
    with pytest.raises(FileNotFoundError, match="no config.json"):
        HFBackbone(str(tmp_path / "absent"))


def _toy_dataset(root: Path) -> None:
    rng = np.random.default_rng(0)
    rows = labelled_rows("binary", 2, random_sequences(rng, 48, 30, 60), rng)
    root.mkdir(parents=True)
    for name, part in (("train.csv", rows[:32]), ("dev.csv", rows[32:40]), ("test.csv", rows[40:])):
        write_table(root / name, part)


def test_backbone_hf_fine_tunes_through_the_task_module(checkpoint: Path, tmp_path: Path) -> None:
    cfg = compose_config(
        [
            "experiment=finetune_mpgb",
            "data/mpgb=core_promoter",
            f"data.root={tmp_path / 'data'}",
            "data.batch_size=8",
            "trainer.max_epochs=null",
            "trainer.max_steps=4",
            "trainer.val_check_interval=2",
            "trainer.log_every_n_steps=1",
            "callbacks.progress_bar=null",
            "optimizer.lr=1e-3",
            "backbone=hf",
            f"path={checkpoint}",
            f"task.run_label=tiny-{checkpoint.name}",
        ],
        tmp_path / "run",
    )
    _toy_dataset(tmp_path / "data")
    try:
        task = instantiate(cfg.task)
    except InstantiationException as error:  # the hook in SequenceTask (see the issue note) is missing
        if "not iterable" not in str(error):
            raise
        pytest.skip("SequenceTask does not take a backbone module yet")
    assert isinstance(task.backbone, HFBackbone)
    before = {k: v.clone() for k, v in task.backbone.state_dict().items()}
    value = run(cfg)
    assert value is not None and np.isfinite(value)
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["label"] == f"tiny-{checkpoint.name}" and "test/mcc" in results["metrics"]
    saved = next((tmp_path / "run" / "checkpoints").glob("*.ckpt"))
    state = torch.load(saved, weights_only=True)["state_dict"]
    changed = [k for k, v in before.items() if not torch.equal(state[f"backbone.{k}"], v)]
    assert changed, "the checkpoint's encoder weights were not trained"
