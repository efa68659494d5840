"""load_pretrained / export_pretrained / load_backbone_state: golden model, round trips, bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from plantbimoe import (
    PlantBiMoEConfig,
    PlantBiMoEModel,
    export_pretrained,
    load_backbone_state,
    load_pretrained,
)
from plantbimoe.convert import ours_to_released
from plantbimoe.pretrained import read_checkpoint

from .helpers import GOLDEN_DIR, mlm_task, save_lightning_checkpoint, sequence_task, tiny_config, tiny_mlm

ATOL = 1e-4


def _golden(name: str) -> torch.Tensor:
    return torch.from_numpy(np.load(GOLDEN_DIR / name))


@pytest.fixture(scope="module")
def golden_out():
    model = load_pretrained(GOLDEN_DIR)
    assert not model.training
    with torch.no_grad():
        return model, model(_golden("inputs.npy"), output_hidden_states=True)


def test_golden_logits_hidden_and_residual_stream(golden_out) -> None:
    _, out = golden_out
    assert out.logits.shape == (2, 200, 12)
    assert (out.logits - _golden("logits.npy")).abs().max() < ATOL
    assert (out.backbone.last_hidden_state - _golden("hidden.npy")).abs().max() < ATOL
    assert (torch.stack(out.backbone.hidden_states) - _golden("residual_stream.npy")).abs().max() < ATOL


def test_golden_routing(golden_out) -> None:
    _, out = golden_out
    ref = json.loads((GOLDEN_DIR / "router.json").read_text())
    for routing, layer in zip(out.backbone.routing, ref["moe_layer_indices"], strict=True):
        expected = ref["layers"][str(layer)]
        selected = torch.tensor(expected["selected_experts"]).reshape(-1, ref["top_k"])
        weights = torch.tensor(expected["routing_weights"]).reshape(-1, ref["top_k"])
        assert torch.equal(routing.selected_experts, selected)
        assert (routing.routing_weights - weights).abs().max() < 1e-5


def test_training_script_form_with_every_tied_name_loads(tmp_path: Path, golden_out) -> None:
    model, out = golden_out
    shutil.copy(GOLDEN_DIR / "config.json", tmp_path / "config.json")
    full = ours_to_released(model.state_dict(), model.config, include_tied=True)
    torch.save(full, tmp_path / "pytorch_model.bin")
    with torch.no_grad():
        logits = load_pretrained(tmp_path)(_golden("inputs.npy")).logits
    assert torch.equal(logits, out.logits)


def test_export_round_trip_of_the_golden_folder(tmp_path: Path, golden_out) -> None:
    model, out = golden_out
    folder = export_pretrained(GOLDEN_DIR, tmp_path / "export")
    written = load_file(str(folder / "model.safetensors"))
    original = load_file(str(GOLDEN_DIR / "model.safetensors"))
    assert sorted(written) == sorted(original)
    assert all(torch.equal(written[k], original[k]) for k in original)
    config = json.loads((folder / "config.json").read_text())
    assert config == json.loads((GOLDEN_DIR / "config.json").read_text())
    reloaded = load_pretrained(folder)
    with torch.no_grad():
        assert torch.equal(reloaded(_golden("inputs.npy")).logits, out.logits)
    export_pretrained(reloaded, tmp_path / "again")  # a live model exports too
    assert load_file(str(tmp_path / "again" / "model.safetensors")).keys() == original.keys()


def test_mlm_lightning_checkpoint_loads_and_round_trips(tmp_path: Path) -> None:
    task = mlm_task()
    ckpt = save_lightning_checkpoint(task, tmp_path / "mlm.ckpt")
    ids = torch.randint(7, 12, (2, 30), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = task.model.eval()(ids).logits
        assert torch.equal(load_pretrained(ckpt)(ids).logits, expected)
        folder = export_pretrained(ckpt, tmp_path / "export")
        assert torch.equal(load_pretrained(folder)(ids).logits, expected)
        assert torch.equal(load_pretrained(folder / "model.safetensors")(ids).logits, expected)
    config = json.loads((folder / "config.json").read_text())
    assert config["architectures"] == ["PlantbimoeForMaskedLM"] and config["d_model"] == 32
    assert "moe_every" not in config  # our options appear only when they differ from the defaults


def test_load_backbone_state_agrees_across_sources(tmp_path: Path) -> None:
    task = sequence_task("binary", 2, head_hidden_size=8)
    ckpt = save_lightning_checkpoint(task, tmp_path / "ft.ckpt")
    folder = export_pretrained(ckpt, tmp_path / "ft")
    assert json.loads((folder / "task.json").read_text())["task_type"] == "binary"
    expected = task.backbone.state_dict()
    for source in (ckpt, folder, folder / "model.safetensors"):
        config, state = load_backbone_state(source)
        assert config.d_model == 32 and state.keys() == expected.keys()
        assert all(torch.equal(state[k], expected[k]) for k in expected)
        PlantBiMoEModel(config, initialize=False).load_state_dict(state, strict=True)
    exported = read_checkpoint(folder)
    assert exported.task == read_checkpoint(ckpt).task
    assert all(torch.equal(exported.head[k], v) for k, v in task.head.state_dict().items())


def test_fine_tuned_model_as_masked_lm_warns(tmp_path: Path) -> None:
    ckpt = save_lightning_checkpoint(sequence_task("regression", 1), tmp_path / "reg.ckpt")
    with pytest.warns(UserWarning, match="fine-tuned regression model"):
        load_pretrained(ckpt)


def test_config_that_does_not_fit_the_weights_is_named(tmp_path: Path) -> None:
    shutil.copytree(GOLDEN_DIR, tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    config["d_model"], config["n_layer"] = 128, 2
    (tmp_path / "m" / "config.json").write_text(json.dumps(config))
    expected = r"config.json \(d_model=128, n_layer=2.* look like d_model=64, n_layer=4.*wrong shape"
    with pytest.raises(ValueError, match=expected):
        load_pretrained(tmp_path / "m")


def test_bad_sources_give_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="model not found"):
        load_pretrained(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no config.json"):
        load_pretrained(tmp_path / "empty")
    (tmp_path / "sharded").mkdir()
    (tmp_path / "sharded" / "__0_0.distcp").write_bytes(b"")
    with pytest.raises(ValueError, match="sharded FSDP checkpoint without its meta.pt; consolidate"):
        load_pretrained(tmp_path / "sharded")
    for name in ("meta.pt", ".metadata"):  # an FSDP2 folder whose shards cannot be read
        (tmp_path / "sharded" / name).write_bytes(b"junk")
    with pytest.raises(ValueError, match="cannot read the sharded checkpoint"):
        load_pretrained(tmp_path / "sharded")
    (tmp_path / "junk.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="cannot read as a checkpoint"):
        load_pretrained(tmp_path / "junk.ckpt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "plain.ckpt")
    with pytest.raises(ValueError, match="not a Lightning checkpoint"):
        load_pretrained(tmp_path / "plain.ckpt")
    folder = export_pretrained(tiny_mlm(), tmp_path / "m")
    tensors = load_file(str(folder / "model.safetensors"))
    save_file({**tensors, "head.mlp.1.weight": torch.zeros(1, 32)}, str(folder / "model.safetensors"))
    with pytest.raises(ValueError, match="head tensors .* but no task.json"):
        load_pretrained(folder)


def test_export_refuses_a_non_empty_folder_and_leaves_nothing_half_written(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    with pytest.raises(FileExistsError, match="not an empty folder"):
        export_pretrained(tiny_mlm(), out)
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]
    export_pretrained(tiny_mlm(), out, overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.safetensors"]
    assert not list(tmp_path.glob(".*tmp*"))
    reloaded = PlantBiMoEConfig.from_json(out / "config.json")
    assert reloaded.extra == {"architectures": ["PlantbimoeForMaskedLM"], "model_type": "plantbimoe",
                              "torch_dtype": "float32"}
    reloaded.extra = {}
    assert reloaded == tiny_config()
