"""Parameter counts of the released configuration (meta device: no memory)."""

from __future__ import annotations

import json

import torch

from plantbimoe import PlantBiMoEConfig, PlantBiMoEForMaskedLM, count_parameters

from .helpers import REFERENCE_DIR


def test_released_config_counts() -> None:
    manifest = json.loads((REFERENCE_DIR / "released_state_dict_manifest.json").read_text())
    counts = manifest["parameter_counts"]
    config = PlantBiMoEConfig.from_json(REFERENCE_DIR / "plantbimoe_released_config.json")
    with torch.device("meta"):
        model = PlantBiMoEForMaskedLM(config)
    total, active = count_parameters(model)
    assert (total, active) == (115_612_160, 63_707_648)
    assert (total, active) == (counts["total_unique_parameters"], counts["active_parameters_per_token"])
    # our state dict holds the same number of tensor elements as the released one (tied names twice)
    stacked = sum(v.numel() for v in model.state_dict().values())
    assert stacked == counts["state_dict_elements_including_tied_duplicates"]


def test_active_equals_total_when_every_expert_is_used() -> None:
    config = PlantBiMoEConfig.preset("tiny")
    config.num_experts_per_tok = config.num_experts
    with torch.device("meta"):
        total, active = count_parameters(PlantBiMoEForMaskedLM(config))
    assert total == active
