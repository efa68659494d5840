"""A floor for every table: k-mer frequencies with logistic or ridge regression, no deep model.

``+kmer.positional_width=W`` adds a one-hot of the central W bases (the positional variant,
labelled ``kmer+positional``; a list such as ``[20,40,80,200]`` picks W on validation with the
L2 strength): site-centred tasks (splice sites, polyadenylation) carry most of their signal in a
few positions that k-mer counts cannot place.

Runs on the same composed config as train.py (same datasets, splits, caps), picks the L2 strength
on validation by the dataset's headline metric, and logs ``val/*`` and ``test/*`` the same way
(TensorBoard under the run folder, plus ``results.json`` labelled ``kmer``):

    python -m baselines.kmer experiment=finetune_arabidopsis data/mpgb=embedded/tair10_lncrna
    python -m baselines.kmer experiment=finetune_mpgb data/mpgb=core_promoter +kmer.k=[4,5,6]
    python -m baselines.kmer experiment=finetune_arabidopsis '+kmer.positional_width=[20,40,80,200]'
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import hydra
import numpy as np
import torch
from omegaconf import DictConfig

from baselines.linear import DEFAULT_ALPHAS, SPLITS, fit_best_features, record_run
from datamodules.mpgb.readers import LabeledSequences
from plantbimoe.tokenizer import A_ID, T_ID

log = logging.getLogger(__name__)
DEFAULT_K = (2, 3, 4, 5)


def kmer_frequencies(data: LabeledSequences, ks: Sequence[int] = DEFAULT_K) -> np.ndarray:
    """(N, sum 4^k) float32: per sequence, the frequency of every k-mer over A/C/G/T windows."""
    tokens = data.tokens.astype(np.int64)
    is_base = (tokens >= A_ID) & (tokens <= T_ID)
    base = np.where(is_base, tokens - A_ID, 0)
    seq_id = np.repeat(np.arange(len(data)), data.lengths())
    blocks = []
    for k in ks:
        n = len(tokens) - k + 1
        if n <= 0:
            blocks.append(np.zeros((len(data), 4**k), dtype=np.float32))
            continue
        code = np.zeros(n, dtype=np.int64)
        valid = np.ones(n, dtype=bool)
        for offset in range(k):
            code = code * 4 + base[offset : offset + n]
            valid &= is_base[offset : offset + n]
        valid &= seq_id[:n] == seq_id[k - 1 :]  # the window stays inside one sequence
        counts = np.bincount(seq_id[:n][valid] * 4**k + code[valid], minlength=len(data) * 4**k)
        counts = counts.reshape(len(data), 4**k).astype(np.float32)
        blocks.append(counts / np.maximum(counts.sum(1, keepdims=True), 1.0))
    return np.concatenate(blocks, axis=1)


def central_one_hot(data: LabeledSequences, width: int) -> np.ndarray:
    """(N, 4 * width) float32: one-hot A/C/G/T of the `width` bases starting at n // 2 - width // 2
    of each sequence (n its length); N, and positions outside a short sequence, are all zeros."""
    if width < 1:
        raise ValueError(f"kmer.positional_width must be >= 1, got {width}")
    lengths = data.lengths()
    starts = data.offsets[:-1] + lengths // 2 - width // 2
    index = starts[:, None] + np.arange(width)[None, :]  # (N, width) into the flat token array
    inside = (index >= data.offsets[:-1, None]) & (index < data.offsets[1:, None])
    tokens = data.tokens[np.clip(index, 0, max(len(data.tokens) - 1, 0))].astype(np.int64)
    is_base = inside & (tokens >= A_ID) & (tokens <= T_ID)
    out = np.zeros((len(data), width, 4), dtype=np.float32)
    rows, cols = np.nonzero(is_base)
    out[rows, cols, tokens[rows, cols] - A_ID] = 1.0
    return out.reshape(len(data), 4 * width)


def features(
    data: LabeledSequences, ks: Sequence[int], positional_width: int = 0, kmers: np.ndarray | None = None
) -> np.ndarray:
    """k-mer frequencies (`kmers` when already computed), then the central one-hot when
    `positional_width` > 0."""
    blocks = [kmer_frequencies(data, ks) if kmers is None else kmers]
    if positional_width:
        blocks.append(central_one_hot(data, positional_width))
    return np.concatenate(blocks, axis=1)


def run_baseline(
    datamodule,
    ks: Sequence[int] = DEFAULT_K,
    alphas: Sequence[float] = DEFAULT_ALPHAS,
    positional_widths: Sequence[int] = (0,),
) -> tuple[dict[str, float], dict[str, float]]:
    """Fit on train for every (central one-hot width, alpha), keep the best on validation by the
    headline metric (highest, lowest for mse); return (val + test metrics, the chosen ``alpha``
    and ``positional_width``)."""
    datamodule.setup("fit")
    datamodule.setup("test")
    task_type, k, headline = datamodule.task_type, datamodule.num_labels, datamodule.metric
    y = {split: torch.from_numpy(datamodule.splits[split].labels) for split in SPLITS}
    kmers = {split: kmer_frequencies(datamodule.splits[split], ks) for split in y}  # once for every width
    candidates = (
        (width, {s: torch.from_numpy(features(datamodule.splits[s], ks, width, kmers[s])) for s in y})
        for width in positional_widths
    )
    width, fit, _ = fit_best_features(candidates, y, task_type, k, headline, alphas, "kmer width=")
    return fit.metrics, {"alpha": fit.alpha, "positional_width": width}


@hydra.main(version_base="1.3", config_path="../../conf", config_name="train")
def main(cfg: DictConfig) -> float:
    """Hydra entry point: same overrides as train.py; ``+kmer.k``, ``+kmer.alphas``,
    ``+kmer.positional_width`` and ``+kmer.label`` (the run's name in results.json) tune the baseline."""
    options = cfg.get("kmer") or {}
    datamodule = hydra.utils.instantiate(cfg.data)
    if not hasattr(datamodule, "splits"):
        raise ValueError("the k-mer baseline needs an MPGB-format dataset: select data/mpgb=<dataset>")
    datamodule.prepare_data()
    widths = options.get("positional_width", 0) or 0
    widths = [int(w) for w in ([widths] if isinstance(widths, int | str) else widths)]
    label = options.get("label") or ("kmer+positional" if any(widths) else "kmer")
    metrics, chosen = run_baseline(
        datamodule,
        tuple(options.get("k", DEFAULT_K)),
        tuple(options.get("alphas", DEFAULT_ALPHAS)),
        widths,
    )
    hparams = {"k": list(options.get("k", DEFAULT_K)), **chosen}
    return record_run(cfg, datamodule, label, metrics, hparams, init_from=None)


if __name__ == "__main__":
    main()
