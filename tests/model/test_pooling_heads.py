"""Centre-window, attention and positional pooling: by-hand values, padding ignored, gradients
reach the learned parts."""

from __future__ import annotations

import pytest
import torch

from plantbimoe import AttentionPool, center_pool, center_window_pool
from plantbimoe.heads import POSITIONAL_DIM, SequenceHead
from plantbimoe.pooling import PositionalPool


def test_center_window_by_hand() -> None:
    hidden = torch.arange(2 * 8, dtype=torch.float32).view(2, 8, 1)
    mask = torch.tensor([[1] * 6 + [0] * 2, [1] * 8], dtype=torch.bool)
    # row 0: n = 6, centre 3, window 3 -> positions 2, 3, 4; row 1: n = 8, centre 4 -> 3, 4, 5
    assert center_window_pool(hidden, mask, 3)[:, 0].tolist() == [3.0, 12.0]
    # window 1 is the centre token; an even window starts half a window left of the centre
    torch.testing.assert_close(center_window_pool(hidden, mask, 1), center_pool(hidden, mask))
    assert center_window_pool(hidden, mask, 2)[:, 0].tolist() == [2.5, 11.5]
    # wider than the real length: the real positions only (padding never counts)
    assert center_window_pool(hidden, mask, 100)[:, 0].tolist() == [2.5, 11.5]
    with pytest.raises(ValueError, match="window must be >= 1"):
        center_window_pool(hidden, mask, 0)


def test_attention_pool_ignores_padding_and_learns() -> None:
    torch.manual_seed(0)
    pool = AttentionPool(4, num_heads=2)
    hidden = torch.randn(1, 5, 4)
    mask = torch.tensor([[1, 1, 1, 0, 0]], dtype=torch.bool)
    garbage = hidden.clone()
    garbage[:, 3:] = 1e4  # padded positions hold anything
    torch.testing.assert_close(pool(hidden, mask), pool(garbage, mask))
    weights = pool.weights(hidden, mask)
    torch.testing.assert_close(weights.sum(1), torch.ones(1, 2))
    assert torch.all(weights[:, 3:] == 0)
    pool(hidden, mask).sum().backward()
    assert pool.score.weight.grad is not None and pool.score.weight.grad.abs().sum() > 0
    empty = pool(hidden, torch.zeros_like(mask))
    assert torch.isfinite(empty).all() and torch.all(empty == 0)


def test_attention_offset_bias_is_relative_to_each_rows_centre() -> None:
    pool = AttentionPool(2, max_offset=2)
    torch.nn.init.zeros_(pool.score.weight)  # content says nothing: only the offset bias counts
    with torch.no_grad():
        pool.offset_bias.weight[:, 0] = torch.tensor([0.0, 0.0, 50.0, 0.0, 0.0])  # offset 0 only
    hidden = torch.arange(2 * 6 * 2, dtype=torch.float32).view(2, 6, 2)
    mask = torch.tensor([[1, 1, 1, 1, 0, 0], [1] * 6], dtype=torch.bool)
    # the weight goes to the centre of each row's real part: n // 2 = 2 and 3
    torch.testing.assert_close(pool(hidden, mask), torch.stack([hidden[0, 2], hidden[1, 3]]))
    far = torch.zeros(1, 40, 2)
    far[0, 0] = 1.0  # offsets beyond max_offset share the edge bias and stay finite
    assert torch.isfinite(pool(far, torch.ones(1, 40, dtype=torch.bool))).all()


def test_positional_pool_by_hand() -> None:
    pool = PositionalPool(1, window=4, dim=1)
    with torch.no_grad():  # the projection is the identity: the features are the hidden values
        pool.project.weight.fill_(1.0)
        pool.project.bias.zero_()
    hidden = torch.arange(2 * 8, dtype=torch.float32).view(2, 8, 1)
    mask = torch.tensor([[1] * 3 + [0] * 5, [1] * 8], dtype=torch.bool)
    garbage = hidden.clone()
    garbage[0, 3:] = 1e4  # padded positions hold anything
    # row 0: n = 3, centre 1 -> positions -1..2, the one before the start is zero;
    # row 1: n = 8, centre 4 -> positions 2..5
    expected = torch.tensor([[0.0, 0.0, 1.0, 2.0], [10.0, 11.0, 12.0, 13.0]])
    torch.testing.assert_close(pool(garbage, mask), expected)
    pool(hidden, mask).sum().backward()
    assert pool.project.weight.grad is not None and pool.project.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="window and dim must be >= 1"):
        PositionalPool(1, window=0, dim=1)


def test_positional_head_gives_each_position_its_own_weights() -> None:
    head = SequenceHead(6, 3, pooling="positional", window=5)
    assert head.output_layer.in_features == 5 * POSITIONAL_DIM
    hidden, mask = torch.randn(2, 9, 6), torch.ones(2, 9, dtype=torch.bool)
    assert head.eval()(hidden, mask).shape == (2, 3)
    moved = hidden.clone()
    moved[:, 4] = hidden[:, 5]
    moved[:, 5] = hidden[:, 4]  # the mean is blind to swapping two positions, this head is not
    assert not torch.allclose(head(hidden, mask), head(moved, mask))
