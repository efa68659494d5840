"""Initialisation rules and activation checkpointing."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from plantbimoe import PlantBiMoEForMaskedLM

from .helpers import random_ids, small_config


def test_initialisation() -> None:
    torch.manual_seed(0)
    config = small_config(n_layer=4, d_model=64, intermediate_size=128)
    model = PlantBiMoEForMaskedLM(config)
    layer = model.backbone.layers[1]
    scale = 1 / math.sqrt(config.n_layer)
    assert abs(model.backbone.embeddings.weight.std().item() - 0.02) < 0.003
    assert abs(layer.ffn.experts.gate_proj.std().item() - 0.02) < 0.002
    assert abs(layer.ffn.experts.down_proj.std().item() - 0.02 * scale) < 0.001  # flaw #26 fixed
    assert abs(model.backbone.layers[0].ffn.down_proj.weight.std().item() - 0.02 * scale) < 0.001
    out_proj = layer.mixer.mamba_fwd.out_proj.weight  # kaiming-uniform bound 1/sqrt(fan_in), scaled
    assert out_proj.abs().max().item() <= scale / math.sqrt(out_proj.shape[1]) + 1e-7
    m = layer.mixer.mamba_rev
    assert torch.equal(m.A_log[3], torch.log(torch.arange(1.0, config.ssm_cfg.d_state + 1)))
    dt = F.softplus(m.dt_proj.bias)
    ssm = config.ssm_cfg
    assert dt.min().item() >= ssm.dt_min * 0.999 and dt.max().item() <= ssm.dt_max * 1.001


def test_gradient_checkpointing_gives_the_same_loss_and_gradients() -> None:
    torch.manual_seed(0)
    ids = random_ids(2, 16)
    labels = torch.where(torch.rand(2, 16) < 0.3, ids, -100)
    results = []
    for ckpt in (False, True):
        torch.manual_seed(0)
        model = PlantBiMoEForMaskedLM(small_config(gradient_checkpointing=ckpt)).train()
        loss = model(ids, labels=labels).loss
        loss.backward()
        results.append((loss.detach(), [p.grad.clone() for p in model.parameters()]))
    assert torch.allclose(results[0][0], results[1][0])
    for a, b in zip(results[0][1], results[1][1], strict=True):
        assert torch.allclose(a, b, atol=1e-6)
