"""Our forward pass reproduces the original implementation's outputs on the golden small model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from plantbimoe import PlantBiMoEConfig, load_released_folder, ours_to_released, released_to_ours

from .helpers import GOLDEN_DIR

ATOL = 1e-4


@pytest.fixture(scope="module")
def golden_run():
    model = load_released_folder(GOLDEN_DIR)
    ids = torch.from_numpy(np.load(GOLDEN_DIR / "inputs.npy"))
    with torch.no_grad():
        out = model(ids, output_hidden_states=True)
    return model, out


def _max_err(ours: torch.Tensor, name: str) -> float:
    ref = torch.from_numpy(np.load(GOLDEN_DIR / name))
    assert ours.shape == ref.shape
    return (ours - ref).abs().max().item()


def test_logits_and_final_hidden_match(golden_run) -> None:
    _, out = golden_run
    assert _max_err(out.logits, "logits.npy") < ATOL
    assert _max_err(out.backbone.last_hidden_state, "hidden.npy") < ATOL


def test_residual_stream_per_layer_matches(golden_run) -> None:
    _, out = golden_run
    assert _max_err(torch.stack(out.backbone.hidden_states), "residual_stream.npy") < ATOL


def test_routing_matches(golden_run) -> None:
    model, out = golden_run
    ref = json.loads((GOLDEN_DIR / "router.json").read_text())
    assert model.config.moe_layer_indices() == ref["moe_layer_indices"]
    assert len(out.backbone.routing) == len(ref["moe_layer_indices"])
    for routing, layer in zip(out.backbone.routing, ref["moe_layer_indices"], strict=True):
        expected = ref["layers"][str(layer)]
        k = ref["top_k"]
        sel = torch.tensor(expected["selected_experts"]).reshape(-1, k)
        w = torch.tensor(expected["routing_weights"]).reshape(-1, k)
        assert torch.equal(routing.selected_experts, sel)
        assert (routing.routing_weights - w).abs().max().item() < 1e-5
        counts = torch.bincount(sel.reshape(-1), minlength=ref["num_experts"])
        assert counts.tolist() == expected["assignments_per_expert"]


def test_full_checkpoint_form_loads_identically(tmp_path: Path, golden_run) -> None:
    """A pytorch_model.bin holding every name (tied ones too) gives the same model."""
    model, out = golden_run
    full = ours_to_released(model.state_dict(), model.config, include_tied=True)
    assert "lm_head.weight" in full
    shutil.copy(GOLDEN_DIR / "config.json", tmp_path / "config.json")
    torch.save(full, tmp_path / "pytorch_model.bin")
    reloaded = load_released_folder(tmp_path)
    for (k, a), b in zip(model.state_dict().items(), reloaded.state_dict().values(), strict=True):
        assert torch.equal(a, b), k


def test_save_pretrained_form_round_trips(tmp_path: Path, golden_run) -> None:
    model, _ = golden_run
    released = load_file(str(GOLDEN_DIR / "model.safetensors"))
    back = ours_to_released(released_to_ours(released, model.config), model.config, include_tied=False)
    assert sorted(back) == sorted(released)
    assert all(torch.equal(back[k], released[k]) for k in released)
    # a live model's state dict exports to a safetensors file (no shared tensors left)
    save_file(ours_to_released(model.state_dict(), model.config, include_tied=False), str(tmp_path / "m.st"))
    assert sorted(load_file(str(tmp_path / "m.st"))) == sorted(released)


def test_unequal_tied_pair_is_rejected() -> None:
    config = PlantBiMoEConfig.from_json(GOLDEN_DIR / "config.json")
    sd = load_file(str(GOLDEN_DIR / "model.safetensors"))
    sd["lm_head.weight"] = sd["plantbimoe.backbone.embeddings.word_embeddings.weight"] + 1.0
    with pytest.raises(ValueError, match="tied parameters differ"):
        released_to_ours(sd, config)


def _folder_with(folder: Path, sd: dict) -> Path:
    folder.mkdir()
    shutil.copy(GOLDEN_DIR / "config.json", folder / "config.json")
    save_file(sd, str(folder / "model.safetensors"))
    return folder


def test_missing_and_unexpected_keys_are_listed(tmp_path: Path) -> None:
    sd = load_file(str(GOLDEN_DIR / "model.safetensors"))
    del sd["plantbimoe.backbone.norm_f.weight"]
    with pytest.raises(ValueError, match=r"missing: backbone\.norm_f\.weight"):
        load_released_folder(_folder_with(tmp_path / "a", sd))
    sd = load_file(str(GOLDEN_DIR / "model.safetensors"))
    sd["plantbimoe.backbone.layers.0.extra.weight"] = torch.zeros(2)
    with pytest.raises(ValueError, match=r"unexpected .*layers\.0\.extra\.weight"):
        load_released_folder(_folder_with(tmp_path / "b", sd))
    sd = load_file(str(GOLDEN_DIR / "model.safetensors"))
    del sd["plantbimoe.backbone.layers.1.feed_forward.experts.2.up_proj.weight"]
    with pytest.raises(ValueError, match=r"layer 1 up_proj: expected experts 0\.\.3, found \[0, 1, 3\]"):
        load_released_folder(_folder_with(tmp_path / "c", sd))
