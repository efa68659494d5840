"""Pooling honours the attention mask and can leave out [CLS]/[SEP]."""

from __future__ import annotations

import torch

from plantbimoe import center_pool, cls_pool, masked_mean_pool


def test_poolings() -> None:
    hidden = torch.arange(2 * 5 * 1, dtype=torch.float32).view(2, 5, 1)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    ids = torch.tensor([[0, 7, 1, 4, 4], [0, 7, 8, 9, 1]])
    assert masked_mean_pool(hidden, mask)[:, 0].tolist() == [1.0, 7.0]
    assert masked_mean_pool(hidden, mask, ids, exclude_token_ids=(0, 1))[:, 0].tolist() == [1.0, 7.0]
    no_mask = masked_mean_pool(hidden, None, ids, exclude_token_ids=(0, 1))[:, 0]  # row 0 keeps pads
    assert torch.allclose(no_mask, torch.tensor([8 / 3, 7.0]))
    assert masked_mean_pool(hidden, torch.zeros_like(mask))[:, 0].tolist() == [0.0, 0.0]
    assert cls_pool(hidden, mask)[:, 0].tolist() == [0.0, 5.0]
    assert center_pool(hidden, mask)[:, 0].tolist() == [1.0, 7.0]
    assert center_pool(hidden)[:, 0].tolist() == [2.0, 7.0]
