"""``plantbimoe info CONFIG``: architecture summary and parameter counts of a model configuration."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from ..config import PlantBiMoEConfig
from ..cpu import cpu_summary
from ..mlm import PlantBiMoEForMaskedLM
from ..params import count_parameters


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", metavar="CONFIG", help="a config.json path, or a preset name: tiny, base")


def load_config(spec: str) -> PlantBiMoEConfig:
    """A config.json path (or a folder holding one), else a preset name."""
    path = Path(spec)
    if path.is_dir():
        path = path / "config.json"
    if path.is_file():
        return PlantBiMoEConfig.from_json(path)
    return PlantBiMoEConfig.preset(spec)


def describe(config: PlantBiMoEConfig) -> str:
    """The summary `run` prints; the model is built on the meta device (no memory, no init cost)."""
    with torch.device("meta"):
        model = PlantBiMoEForMaskedLM(config, initialize=False)
    total, active = count_parameters(model)
    moe = config.moe_layer_indices()
    mixer = "BiMamba" if config.bidirectional else "Mamba"
    if config.bidirectional:
        tie = "tied" if config.bidirectional_weight_tie else "untied"
        mixer += f" ({config.bidirectional_strategy}, {tie} in/out projections)"
    lines = [
        f"layers:          {config.n_layer}",
        f"d_model:         {config.d_model}",
        f"mixer:           {mixer}, d_state {config.ssm_cfg.d_state}, expand {config.ssm_cfg.expand}",
        f"vocabulary:      {config.vocab_size} (padded to {config.padded_vocab_size})",
        f"ffn:             SwiGLU, intermediate size {config.intermediate_size}",
        f"experts:         {config.num_experts}",
        f"top-k:           {config.num_experts_per_tok}",
        f"MoE layers:      {', '.join(map(str, moe)) if moe else 'none'}",
        f"parameters:      {total:,} total",
        f"active/token:    {active:,}",
        f"this CPU:        {cpu_summary()}",
    ]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
    except ValueError as e:
        print(f"plantbimoe info: {e}", file=sys.stderr)
        return 2
    print(describe(config))
    return 0
