"""Tiling covers every position once; stitched per-base scores are those of the owning tile."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from plantbimoe.inference.runtime import Runtime
from plantbimoe.inference.tiling import tile_spans
from plantbimoe.inference.tracks import position_scores
from plantbimoe.tokenizer import A_ID, MASK_ID, add_special_tokens, pad_batch


@pytest.mark.parametrize(
    ("length", "window", "overlap"), [(10, 20, 5), (100, 20, 5), (101, 20, 0), (57, 16, 15)]
)
def test_tiles_cover_each_position_exactly_once(length: int, window: int, overlap: int) -> None:
    tiles = tile_spans(length, window, overlap)
    owned = np.concatenate([np.arange(t.keep_start, t.keep_end) for t in tiles])
    assert np.array_equal(owned, np.arange(length))
    assert tiles[0].start == 0 and tiles[-1].end == length
    for t in tiles:
        assert t.end - t.start == min(window, length)
        assert t.start <= t.keep_start < t.keep_end <= t.end
    for a, b in zip(tiles, tiles[1:], strict=False):  # the boundary: the middle of the overlap
        assert a.keep_end == b.keep_start == (b.start + a.end) // 2


def test_bad_tiling_arguments() -> None:
    for window, overlap in ((0, 0), (10, 10), (10, -1)):
        with pytest.raises(ValueError, match="overlap < window"):
            tile_spans(50, window, overlap)


def _direct_ref_logprobs(model, ids: np.ndarray, window: int, overlap: int) -> np.ndarray:
    """log p(reference base) with that base alone masked, in the tile that owns it."""
    rows, sites = [], []
    for tile in tile_spans(len(ids), window, overlap):
        for p in range(tile.keep_start, tile.keep_end):
            row = add_special_tokens(ids[tile.start : tile.end])
            row[1 + p - tile.start] = MASK_ID
            rows.append(row)
            sites.append(1 + p - tile.start)
    input_ids, mask = pad_batch(rows)
    with torch.no_grad():
        logits = model(input_ids, attention_mask=mask).logits[torch.arange(len(rows)), torch.tensor(sites)]
    logprobs = torch.log_softmax(logits[:, A_ID : A_ID + 4], dim=-1).numpy()
    return logprobs[np.arange(len(ids)), ids.astype(np.int64) - A_ID]


def test_stitched_ref_logprob_equals_single_site_masking_in_the_owning_tile(model, chr1_region) -> None:
    ids = chr1_region[:70]
    # a stride as long as the tile masks one base per pass: exact single-site masking
    scores = position_scores(model, ids, Runtime(batch_size=7), window=24, overlap=8, mask_stride=24)
    np.testing.assert_allclose(scores, _direct_ref_logprobs(model, ids, 24, 8), atol=1e-5)


def test_interleaved_masking_scores_every_base(model, chr1_region, runtime) -> None:
    ids = chr1_region[:90].copy()
    ids[10] = 11  # an N
    probs = position_scores(model, ids, runtime, "probs", window=32, overlap=8)
    assert probs.shape == (90, 4) and not np.isnan(probs).any()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    entropy = position_scores(model, ids, runtime, "entropy", window=32, overlap=8)
    assert ((entropy >= 0) & (entropy <= 2 + 1e-6)).all()
    ref = position_scores(model, ids, runtime, "ref_logprob", window=32, overlap=8)
    assert np.isnan(ref[10]) and np.isfinite(np.delete(ref, 10)).all()
    real = np.arange(90) != 10
    np.testing.assert_allclose(ref[real], np.log(probs[real, ids[real] - A_ID]), atol=1e-5)


def test_embedding_track_is_the_unmasked_hidden_state_of_the_owning_tile(model, chr1_region, runtime) -> None:
    ids = chr1_region[:50]
    out = position_scores(model, ids, runtime, "embeddings", window=20, overlap=6)
    tile = tile_spans(50, 20, 6)[1]
    with torch.no_grad():
        row = torch.from_numpy(add_special_tokens(ids[tile.start : tile.end]).astype(np.int64))[None]
        hidden = model(row).backbone.last_hidden_state[0, 1:-1]
    own = slice(tile.keep_start - tile.start, tile.keep_end - tile.start)
    np.testing.assert_allclose(out[tile.keep_start : tile.keep_end], hidden[own].numpy(), atol=1e-5)


def test_bad_score_arguments(model, chr1_region, runtime) -> None:
    with pytest.raises(ValueError, match="unknown score"):
        position_scores(model, chr1_region[:20], runtime, "conservation")
    with pytest.raises(ValueError, match="mask_stride must be >= 2"):
        position_scores(model, chr1_region[:20], runtime, mask_stride=1)
