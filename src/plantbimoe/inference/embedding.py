"""Per-sequence embeddings: pooled hidden states, optionally per layer and averaged over strands.

Each sequence is read as ``[CLS] bases [SEP]``. Pooling: ``mean`` over the nucleotide positions
(specials and padding left out), ``center`` (the base at index n // 2) or ``cls`` (the [CLS]
position). Layers: ``"final"`` is the last hidden state (after the final norm); an integer i is
the residual stream after layer i (0-based, before the final norm). Sequences longer than
`max_length` bases are tiled with `overlap` (see tiling.py): the mean then runs over the stitched
per-position states (each base once), ``center`` comes from the tile that owns the centre base;
``cls`` needs the sequence in one window. With `rc_average`, each embedding is the mean of the
sequence's and its reverse complement's (the same bases, mirrored).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..mlm import PlantBiMoEForMaskedLM
from ..tokenizer import add_special_tokens, reverse_complement
from .forward import forward_batches
from .runtime import Runtime
from .tiling import tile_spans

POOLINGS = ("mean", "center", "cls")
Layer = int | str


@dataclass
class _Job:
    sequence: int
    tokens: np.ndarray  # [CLS] bases [SEP]
    keep: np.ndarray  # token positions summed into the embedding


def parse_layers(spec: str | None, n_layer: int) -> list[Layer]:
    """'0,3,final' or 'all' (every layer, then final) -> layer list; None -> ['final']."""
    if not spec:
        return ["final"]
    if spec == "all":
        return [*range(n_layer), "final"]
    layers: list[Layer] = []
    for item in spec.split(","):
        item = item.strip()
        if item == "final":
            layers.append(item)
        elif item.lstrip("-").isdigit() and 0 <= int(item) < n_layer:
            layers.append(int(item))
        else:
            raise ValueError(f"layer {item!r}: expected 0..{n_layer - 1}, 'final' or 'all'")
    return layers


def _jobs(index: int, ids: np.ndarray, pooling: str, max_length: int | None, overlap: int,
          rc_average: bool) -> list[_Job]:
    n = len(ids)
    tiles = tile_spans(n, max_length or n, min(overlap, (max_length or n) - 1))
    if pooling == "cls" and len(tiles) > 1:
        raise ValueError(f"sequence {index + 1}: {n} bp is longer than max_length={max_length}; "
                         "cls pooling needs the sequence in one window (use mean or center)")
    if pooling == "center":
        tiles = [t for t in tiles if t.keep_start <= n // 2 < t.keep_end]
    jobs = []
    for tile in tiles:
        bases = ids[tile.start : tile.end]
        if pooling == "mean":
            offsets = np.arange(tile.keep_start, tile.keep_end) - tile.start
        elif pooling == "center":
            offsets = np.array([n // 2 - tile.start])
        else:
            offsets = np.array([-1])  # token 0: [CLS]
        jobs.append(_Job(index, add_special_tokens(bases), offsets + 1))
        if rc_average:
            mirrored = np.where(offsets < 0, -1, len(bases) - 1 - offsets)
            jobs.append(_Job(index, add_special_tokens(reverse_complement(bases)), mirrored + 1))
    return jobs


def embed_sequences(
    model: PlantBiMoEForMaskedLM,
    sequences: Sequence[np.ndarray],
    runtime: Runtime,
    pooling: str = "mean",
    layers: Sequence[Layer] = ("final",),
    rc_average: bool = False,
    max_length: int | None = None,
    overlap: int = 256,
    desc: str | None = None,
) -> np.ndarray:
    """Embeddings of `sequences` (1-D nucleotide ids): float32 (N, d) for one layer, else
    (N, len(layers), d), in input order."""
    if pooling not in POOLINGS:
        raise ValueError(f"unknown pooling {pooling!r}; expected one of {', '.join(POOLINGS)}")
    if any(len(s) == 0 for s in sequences):
        raise ValueError("cannot embed an empty sequence")
    jobs = [j for i, s in enumerate(sequences) for j in _jobs(i, s, pooling, max_length, overlap, rc_average)]
    d = model.config.d_model
    sums = torch.zeros(len(sequences), len(layers), d, dtype=torch.float64)
    counts = torch.zeros(len(sequences), dtype=torch.float64)
    need_hidden = any(layer != "final" for layer in layers)
    rows = [j.tokens for j in jobs]
    for index, out, _ in forward_batches(model, rows, runtime, output_hidden_states=need_hidden, desc=desc):
        states = [out.backbone.last_hidden_state if layer == "final" else out.backbone.hidden_states[layer]
                  for layer in layers]
        stacked = torch.stack(states, dim=1).float()  # (b, layers, L, d)
        for j, i in enumerate(index):
            keep = torch.as_tensor(jobs[i].keep, device=stacked.device)
            sums[jobs[i].sequence] += stacked[j, :, keep].sum(dim=1).double().cpu()
            counts[jobs[i].sequence] += len(keep)
    embeddings = (sums / counts[:, None, None]).float().numpy()
    return embeddings[:, 0] if len(layers) == 1 else embeddings
