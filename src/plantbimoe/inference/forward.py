"""Batched forward passes over token rows of different lengths."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch

from ..mlm import MaskedLMOutput, PlantBiMoEForMaskedLM
from ..tokenizer import NUCLEOTIDE_IDS, pad_batch
from .runtime import Runtime


@torch.no_grad()
def forward_batches(
    model: torch.nn.Module,
    rows: Sequence[np.ndarray],
    runtime: Runtime,
    output_hidden_states: bool = False,
    desc: str | None = None,
) -> Iterator[tuple[list[int], MaskedLMOutput, torch.Tensor]]:
    """Run `model` (called as ``model(input_ids, attention_mask=...)``, a masked-LM model or any
    module with that call) on `rows` (1-D token ids, specials included) batched by length: yields
    (row indices of the batch, output, attention mask), rows right-padded in index order. A
    progress bar over rows shows when `desc` is given (and the runtime shows progress)."""
    extra = {"output_hidden_states": True} if output_hidden_states else {}
    lengths = [len(r) for r in rows]
    with runtime.bar(len(rows), desc or "", unit="row", enabled=desc is not None) as bar:
        for index in runtime.batches(lengths):
            input_ids, mask = pad_batch([rows[i] for i in index])
            input_ids, mask = input_ids.to(runtime.device), mask.to(runtime.device)
            with runtime.autocast():
                out = model(input_ids, attention_mask=mask, **extra)
            yield index, out, mask
            bar.update(len(index))


def nucleotide_logprobs(
    model: PlantBiMoEForMaskedLM,
    rows: Sequence[np.ndarray],
    read_at: Sequence[np.ndarray],
    runtime: Runtime,
    desc: str | None = None,
) -> list[np.ndarray]:
    """For each row, float32 (len(read_at[i]), 4) log-probabilities over A, C, G, T (log-softmax of
    the masked-LM logits restricted to the four nucleotides) at token positions `read_at[i]`."""
    nucleotides = torch.tensor(NUCLEOTIDE_IDS, device=runtime.device)
    results: list[np.ndarray] = [np.empty((0, 4), np.float32)] * len(rows)
    for index, out, _ in forward_batches(model, rows, runtime, desc=desc):
        for j, i in enumerate(index):
            positions = torch.as_tensor(read_at[i], dtype=torch.long, device=runtime.device)
            logits = out.logits[j, positions][:, nucleotides].float()
            results[i] = torch.log_softmax(logits, dim=-1).cpu().numpy()
    return results
