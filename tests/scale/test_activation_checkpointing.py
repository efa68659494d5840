"""Per-block activation checkpointing changes memory, not the gradients."""

from __future__ import annotations

import torch

from plantbimoe import PlantBiMoEConfig, PlantBiMoEForMaskedLM


def _grads(checkpointing: bool) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    config = PlantBiMoEConfig.preset("tiny")
    config.d_model, config.intermediate_size, config.gradient_checkpointing = 32, 48, checkpointing
    model = PlantBiMoEForMaskedLM(config)
    ids = torch.randint(7, 11, (2, 40))
    mask = torch.ones_like(ids, dtype=torch.bool)
    mask[1, 30:] = False
    labels = torch.where(torch.rand(ids.shape) < 0.3, ids, torch.full_like(ids, -100))
    model(ids, attention_mask=mask, labels=labels).loss.backward()
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def test_checkpointed_blocks_give_the_same_gradients() -> None:
    plain, ckpt = _grads(False), _grads(True)
    assert plain.keys() == ckpt.keys() and len(plain) > 10
    for name in plain:
        torch.testing.assert_close(ckpt[name], plain[name], rtol=1e-5, atol=1e-6, msg=name)
