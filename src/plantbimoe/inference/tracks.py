"""Per-position scores along long sequences: tiled, masked in interleaved passes, stitched.

Each tile (see tiling.py) is read as ``[CLS] bases [SEP]``. For the masked scores the tile runs
`mask_stride` times; pass r masks every base whose sequence position is r modulo `mask_stride`
(1/`mask_stride` of the tile, 12.5% at the default 8, close to pretraining's masking rate), so each
base is predicted once with itself masked. Scores per base:
- ``ref_logprob``: log p(reference base) under the masked prediction over A C G T (NaN at N);
- ``entropy``: entropy in bits of the masked prediction over A C G T (0 = certain, 2 = uniform);
- ``probs``: the four masked probabilities (A, C, G, T), shape (L, 4);
- ``embeddings``: the final hidden state of one unmasked pass, shape (L, d).
Tiles are processed `TILES_PER_GROUP` at a time, so memory beyond the output stays bounded.
"""

from __future__ import annotations

import numpy as np
import torch

from ..mlm import PlantBiMoEForMaskedLM
from ..tokenizer import A_ID, MASK_ID, N_ID, add_special_tokens
from .forward import forward_batches, nucleotide_logprobs
from .runtime import Runtime
from .tiling import Tile, tile_spans

SCORES = ("ref_logprob", "entropy", "probs", "embeddings")
TILES_PER_GROUP = 64


def _masked_logprobs(model: PlantBiMoEForMaskedLM, ids: np.ndarray, tiles: list[Tile], runtime: Runtime,
                     mask_stride: int, out: np.ndarray) -> None:
    rows, read_at, owned = [], [], []
    for tile in tiles:
        positions = np.arange(tile.start, tile.end)
        for residue in range(mask_stride):
            masked = positions % mask_stride == residue
            keep = masked & (positions >= tile.keep_start) & (positions < tile.keep_end)
            if not keep.any():
                continue
            tokens = add_special_tokens(ids[tile.start : tile.end])
            tokens[1:-1][masked] = MASK_ID
            rows.append(tokens)
            read_at.append(np.flatnonzero(keep) + 1)
            owned.append(positions[keep])
    for where, values in zip(owned, nucleotide_logprobs(model, rows, read_at, runtime), strict=True):
        out[where] = values


@torch.no_grad()
def _embeddings(model: PlantBiMoEForMaskedLM, ids: np.ndarray, tiles: list[Tile], runtime: Runtime,
                out: np.ndarray) -> None:
    rows = [add_special_tokens(ids[t.start : t.end]) for t in tiles]
    for index, result, _ in forward_batches(model, rows, runtime):
        for j, i in enumerate(index):
            t = tiles[i]
            kept = slice(1 + t.keep_start - t.start, 1 + t.keep_end - t.start)
            out[t.keep_start : t.keep_end] = result.backbone.last_hidden_state[j, kept].float().cpu().numpy()


def position_scores(
    model: PlantBiMoEForMaskedLM,
    ids: np.ndarray,
    runtime: Runtime,
    score: str = "ref_logprob",
    window: int = 4096,
    overlap: int = 512,
    mask_stride: int = 8,
    desc: str | None = None,
) -> np.ndarray:
    """Score `score` at every base of `ids` (1-D nucleotide ids): (L,) for the scalar scores,
    (L, 4) for ``probs``, (L, d) for ``embeddings``; float32. `desc` labels a progress bar."""
    if score not in SCORES:
        raise ValueError(f"unknown score {score!r}; expected one of {', '.join(SCORES)}")
    if mask_stride < 2:
        raise ValueError(f"mask_stride must be >= 2 (1 would mask every base at once), got {mask_stride}")
    tiles = tile_spans(len(ids), window, overlap)
    width = model.config.d_model if score == "embeddings" else 4
    out = np.full((len(ids), width), np.nan, dtype=np.float32)
    with runtime.bar(len(tiles), desc or "", unit="tile", enabled=desc is not None) as bar:
        for g in range(0, len(tiles), TILES_PER_GROUP):
            group = tiles[g : g + TILES_PER_GROUP]
            if score == "embeddings":
                _embeddings(model, ids, group, runtime, out)
            else:
                _masked_logprobs(model, ids, group, runtime, mask_stride, out)
            bar.update(len(group))
    if score == "embeddings":
        return out
    if score == "probs":
        return np.exp(out)
    if score == "entropy":
        return (-(np.exp(out) * out).sum(axis=1) / np.log(2.0)).astype(np.float32)
    base = np.clip(ids.astype(np.int64) - A_ID, 0, 3)
    return np.where(ids == N_ID, np.nan, out[np.arange(len(ids)), base]).astype(np.float32)
