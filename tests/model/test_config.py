"""Configuration: the released config.json loads verbatim and round-trips; bad values are named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from plantbimoe import PlantBiMoEConfig

from .helpers import REFERENCE_DIR

RELEASED = REFERENCE_DIR / "plantbimoe_released_config.json"


def test_released_config_round_trip(tmp_path: Path) -> None:
    original = json.loads(RELEASED.read_text())
    config = PlantBiMoEConfig.from_json(RELEASED)
    assert config.extra["auto_map"] == original["auto_map"]
    assert config.to_dict(released_only=True) == original
    full = config.to_dict()
    assert {k: full[k] for k in original} == original
    assert PlantBiMoEConfig.from_dict(full) == config
    config.save_json(tmp_path / "config.json", released_only=True)
    assert json.loads((tmp_path / "config.json").read_text()) == original


def test_released_values_and_defaults() -> None:
    config = PlantBiMoEConfig.from_json(RELEASED)
    assert config == PlantBiMoEConfig.preset("base")
    assert config.dt_rank == 32  # "auto" = ceil(512 / 16)
    assert config.d_inner == 1024
    assert config.moe_layer_indices() == [1, 3, 5, 7, 9, 11, 13, 15]
    assert config.router_renormalize is False


def test_vocab_padding_and_moe_placement() -> None:
    config = PlantBiMoEConfig(vocab_size=13, pad_vocab_size_multiple=6, n_layer=6, moe_every=3)
    assert config.padded_vocab_size == 18
    assert config.moe_layer_indices() == [2, 5]
    assert PlantBiMoEConfig(n_layer=6, moe_layers=[4, 0]).moe_layer_indices() == [0, 4]
    assert PlantBiMoEConfig(d_model=100).dt_rank == 7


def test_tiny_preset() -> None:
    tiny = PlantBiMoEConfig.preset("tiny")
    assert (tiny.d_model, tiny.n_layer, tiny.intermediate_size) == (128, 4, 256)
    assert (tiny.num_experts, tiny.num_experts_per_tok) == (4, 1)
    with pytest.raises(ValueError, match="available: base, small, tiny"):
        PlantBiMoEConfig.preset("huge")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"hidden_size": 8}, "unknown config key 'hidden_size'"),
        ({"ssm_cfg": {"d_stat": 8}}, "unknown config key 'ssm_cfg.d_stat'"),
        ({"num_experts_per_tok": 5}, r"num_experts_per_tok \(5\) must be <= num_experts \(4\)"),
        ({"bidirectional_strategy": "concat"}, "bidirectional_strategy"),
        ({"d_model": 0}, "'d_model' must be >= 1"),
        ({"rms_norm": 1}, "'rms_norm' must be bool"),
        ({"n_layer": True}, "'n_layer' must be int"),
        ({"moe_layers": [1, 16]}, "moe_layers entry 16"),
        ({"ssm_cfg": {"dt_init": "zeros"}}, "dt_init"),
    ],
)
def test_bad_values_are_named(change: dict, message: str) -> None:
    d = {**json.loads(RELEASED.read_text()), **change}
    with pytest.raises(ValueError, match=message):
        PlantBiMoEConfig.from_dict(d)


def test_unreadable_file_names_the_path(tmp_path: Path) -> None:
    bad = tmp_path / "config.json"
    bad.write_text('{"d_model": 64, "oops": 1}')
    with pytest.raises(ValueError, match=r"config\.json: unknown config key 'oops'"):
        PlantBiMoEConfig.from_json(bad)
