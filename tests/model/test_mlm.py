"""Masked-LM head and loss."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from plantbimoe import PlantBiMoEForMaskedLM, masked_lm_loss

from .helpers import random_ids, small_config


def test_lm_head_is_tied_and_loss_adds_aux() -> None:
    torch.manual_seed(0)
    model = PlantBiMoEForMaskedLM(small_config())
    assert model.lm_head.weight is model.backbone.embeddings.weight
    ids = random_ids(2, 16)
    labels = torch.full_like(ids, -100)
    labels[:, ::3] = ids[:, ::3]
    out = model(ids, labels=labels)
    assert out.logits.shape == (2, 16, 12) and out.logits.dtype == torch.float32
    expected = F.cross_entropy(out.logits[labels != -100], labels[labels != -100])
    assert torch.allclose(out.mlm_loss, expected, atol=1e-6)
    assert torch.allclose(out.loss, out.mlm_loss + out.aux_loss)
    assert out.aux_loss.item() > 0  # one MoE layer: load-balance + z-loss
    assert model(ids).loss is None


def test_no_targets_gives_exact_zero_connected_loss() -> None:
    torch.manual_seed(0)
    model = PlantBiMoEForMaskedLM(small_config())
    ids = random_ids(1, 12)
    out = model(ids, labels=torch.full_like(ids, -100), loss_weights=torch.zeros(1, 12))
    assert out.mlm_loss.item() == 0.0
    out.mlm_loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() and torch.all(g == 0) for g in grads)


def test_weighted_loss_is_a_weighted_mean_and_leaves_inputs_alone() -> None:
    logits = torch.randn(1, 4, 12)
    labels = torch.tensor([[7, -100, 8, 9]])
    weights = torch.tensor([[1.0, 5.0, 0.5, 2.0]])
    ce = F.cross_entropy(logits[0], labels[0].clamp(min=0), reduction="none")
    expected = (ce[0] * 1.0 + ce[2] * 0.5 + ce[3] * 2.0) / 3.5
    assert torch.allclose(masked_lm_loss(logits, labels, weights), expected, atol=1e-6)
    assert weights.tolist() == [[1.0, 5.0, 0.5, 2.0]]
