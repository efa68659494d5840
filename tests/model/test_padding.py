"""Padding never changes what the model computes at real positions (both directions, MoE)."""

from __future__ import annotations

import pytest
import torch

from plantbimoe import PlantBiMoEForMaskedLM

from .helpers import random_ids, small_config

LENGTHS = [40, 23]


def _padded_batch(side: str) -> tuple[torch.Tensor, torch.Tensor, list[slice]]:
    ids = random_ids(2, 40, seed=1)
    real = [slice(0, n) if side == "right" else slice(40 - n, 40) for n in LENGTHS]
    mask = torch.zeros(2, 40, dtype=torch.bool)
    for b, s in enumerate(real):
        mask[b, s] = True
    return ids.masked_fill(~mask, 4), mask, real  # 4 = [PAD]


@pytest.mark.parametrize("side", ["right", "left"])
def test_padded_batch_matches_sequences_run_alone(side: str) -> None:
    torch.manual_seed(0)
    model = PlantBiMoEForMaskedLM(small_config()).eval()
    ids, mask, real = _padded_batch(side)
    garbage = torch.where(mask, ids, random_ids(2, 40, seed=2))  # pad content must not matter
    with torch.no_grad():
        batch = model(ids, attention_mask=mask, output_hidden_states=True)
        batch2 = model(garbage, attention_mask=mask)
        for b, s in enumerate(real):
            alone = model(ids[b : b + 1, s], output_hidden_states=True)
            assert torch.allclose(batch.logits[b, s], alone.logits[0], atol=1e-5)
            assert torch.allclose(batch2.logits[b, s], alone.logits[0], atol=1e-5)
            for hb, ha in zip(batch.backbone.hidden_states, alone.backbone.hidden_states, strict=True):
                assert torch.allclose(hb[b, s], ha[0], atol=1e-5)
    # routing statistics count real tokens only, so the pad content leaves them unchanged
    routing = batch.backbone.routing[0]
    flat_mask = mask.reshape(-1)
    assert routing.token_mask is not None and torch.equal(routing.token_mask, flat_mask)
    assert torch.allclose(routing.expert_load.sum(), torch.tensor(1.0))
    assert torch.all(routing.routing_weights[~flat_mask] == 0)
    assert torch.allclose(batch.backbone.aux_loss, batch2.backbone.aux_loss, atol=1e-6)
