"""Embeddings: pooling over bases, layers, strand averaging, tiling of long sequences, determinism."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from plantbimoe.inference.embedding import embed_sequences, parse_layers
from plantbimoe.inference.runtime import Runtime
from plantbimoe.inference.tiling import tile_spans
from plantbimoe.tokenizer import add_special_tokens, reverse_complement


def _hidden(model, ids: np.ndarray, layer: int | None = None) -> torch.Tensor:
    """Per-base states of [CLS] ids [SEP] (specials dropped)."""
    row = torch.from_numpy(add_special_tokens(ids).astype(np.int64))[None]
    with torch.no_grad():
        out = model(row, output_hidden_states=True).backbone
    states = out.last_hidden_state if layer is None else out.hidden_states[layer]
    return states[0, 1:-1]


def test_mean_pooling_runs_over_the_bases_only(model, chr1_region, runtime) -> None:
    seqs = [chr1_region[:40], chr1_region[100:173]]
    emb = embed_sequences(model, seqs, runtime)
    assert emb.shape == (2, 32) and emb.dtype == np.float32
    for e, s in zip(emb, seqs, strict=True):
        np.testing.assert_allclose(e, _hidden(model, s).mean(0).numpy(), atol=1e-5)


def test_center_and_cls_pooling(model, chr1_region, runtime) -> None:
    s = chr1_region[:41]
    center = embed_sequences(model, [s], runtime, pooling="center")[0]
    np.testing.assert_allclose(center, _hidden(model, s)[20].numpy(), atol=1e-5)
    cls = embed_sequences(model, [s], runtime, pooling="cls")[0]
    row = torch.from_numpy(add_special_tokens(s).astype(np.int64))[None]
    with torch.no_grad():
        np.testing.assert_allclose(cls, model(row).backbone.last_hidden_state[0, 0].numpy(), atol=1e-5)


def test_layers(model, chr1_region, runtime) -> None:
    assert parse_layers(None, 2) == ["final"]
    assert parse_layers("all", 2) == [0, 1, "final"]
    assert parse_layers("1,final", 2) == [1, "final"]
    with pytest.raises(ValueError, match="expected 0..1"):
        parse_layers("2", 2)
    s = chr1_region[:30]
    per_layer = embed_sequences(model, [s], runtime, layers=[0, 1, "final"])
    assert per_layer.shape == (1, 3, 32)
    np.testing.assert_allclose(per_layer[0, 0], _hidden(model, s, layer=0).mean(0).numpy(), atol=1e-5)
    np.testing.assert_allclose(per_layer[0, 2], embed_sequences(model, [s], runtime)[0], atol=1e-6)


@pytest.mark.parametrize("pooling", ["mean", "center"])
def test_strand_averaging_is_symmetric(model, chr1_region, runtime, pooling: str) -> None:
    s = chr1_region[:51]  # odd: the centre base is the same base on both strands
    forward = embed_sequences(model, [s], runtime, pooling=pooling, rc_average=True)
    reverse = embed_sequences(model, [reverse_complement(s)], runtime, pooling=pooling, rc_average=True)
    np.testing.assert_allclose(forward, reverse, atol=1e-5)
    one_strand = embed_sequences(model, [s], runtime, pooling=pooling)
    assert not np.allclose(forward, one_strand, atol=1e-4)


def test_long_sequences_are_tiled_and_stitched(model, chr1_region, runtime) -> None:
    s = chr1_region[:100]
    whole = embed_sequences(model, [s], runtime)
    assert np.allclose(embed_sequences(model, [s], runtime, max_length=100, overlap=10), whole)
    tiled = embed_sequences(model, [s], runtime, max_length=32, overlap=8)[0]
    stitched = torch.zeros(100, 32)
    for t in tile_spans(100, 32, 8):
        hidden = _hidden(model, s[t.start : t.end])
        stitched[t.keep_start : t.keep_end] = hidden[t.keep_start - t.start : t.keep_end - t.start]
    np.testing.assert_allclose(tiled, stitched.mean(0).numpy(), atol=1e-5)
    with pytest.raises(ValueError, match="cls pooling needs the sequence in one window"):
        embed_sequences(model, [s], runtime, pooling="cls", max_length=32)


def test_results_do_not_depend_on_batching(model, chr1_region) -> None:
    seqs = [chr1_region[i : i + 20 + 7 * i] for i in range(9)]
    one = embed_sequences(model, seqs, Runtime(batch_size=1))
    many = embed_sequences(model, seqs, Runtime(batch_size=4))
    np.testing.assert_allclose(one, many, atol=1e-5)
    assert np.array_equal(many, embed_sequences(model, seqs, Runtime(batch_size=4)))
