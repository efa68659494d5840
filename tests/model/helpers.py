"""Tiny configurations and inputs for the model tests."""

from __future__ import annotations

from pathlib import Path

import torch

from plantbimoe import PlantBiMoEConfig

REFERENCE_DIR = Path(__file__).resolve().parents[1] / "data" / "reference"
GOLDEN_DIR = REFERENCE_DIR / "golden_small"


def small_config(**overrides: object) -> PlantBiMoEConfig:
    """2 layers (layer 1 MoE), d_model 32: a few milliseconds per forward."""
    base = dict(
        d_model=32,
        n_layer=2,
        intermediate_size=48,
        num_experts=4,
        num_experts_per_tok=1,
        ssm_cfg={"d_state": 8},
    )
    return PlantBiMoEConfig.from_dict({**base, **overrides})


def random_ids(b: int, length: int, seed: int = 0) -> torch.Tensor:
    """Nucleotide ids (A C G T N = 7..11)."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(7, 12, (b, length), generator=g)
