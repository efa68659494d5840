"""Right padding never changes what the model computes at real positions (both directions, MoE)."""

from __future__ import annotations

import torch

from plantbimoe import PlantBiMoEForMaskedLM

from .helpers import random_ids, small_config


def test_padded_batch_matches_sequences_run_alone() -> None:
    torch.manual_seed(0)
    model = PlantBiMoEForMaskedLM(small_config()).eval()
    lengths = [40, 23]
    ids = random_ids(2, 40, seed=1)
    ids[1, 23:] = 4  # [PAD]
    mask = torch.arange(40)[None] < torch.tensor(lengths)[:, None]
    with torch.no_grad():
        batch = model(ids, attention_mask=mask, output_hidden_states=True)
        garbage = ids.clone()
        garbage[1, 23:] = random_ids(1, 17, seed=2)  # pad content must not matter either
        batch2 = model(garbage, attention_mask=mask)
        for b, n in enumerate(lengths):
            alone = model(ids[b : b + 1, :n], output_hidden_states=True)
            assert torch.allclose(batch.logits[b, :n], alone.logits[0], atol=1e-5)
            assert torch.allclose(batch2.logits[b, :n], alone.logits[0], atol=1e-5)
            for hb, ha in zip(batch.backbone.hidden_states, alone.backbone.hidden_states, strict=True):
                assert torch.allclose(hb[b, :n], ha[0], atol=1e-5)
    # routing statistics count real tokens only: the same as for a batch that needs no padding
    routing = batch.backbone.routing[0]
    real = mask.reshape(-1)
    assert routing.token_mask is not None and torch.equal(routing.token_mask, real)
    assert torch.allclose(routing.expert_load.sum(), torch.tensor(1.0))
    assert torch.all(routing.routing_weights[~real] == 0)
    assert torch.allclose(batch.backbone.aux_loss, batch2.backbone.aux_loss, atol=1e-6)
