"""The honest MLM floor: predict a masked base from the k bases on each side, by counting.

`ContextCounts(k)` counts, over training sequences, how often each base follows each context of
j bases to the left and j to the right, for every j = 0..k. A masked position is scored with the
largest j whose 2j neighbours in the *model's input* are all bases (a neighbour that is [MASK],
N, a special token, padding or off the sequence makes it back off to a shorter context), with
add-one smoothing: p(b | ctx) = (n(ctx, b) + 1) / (n(ctx) + 4). It sees what the model sees, so a
model that does not beat it has learned no more than local k-mer statistics.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from plantbimoe.tokenizer import A_ID, T_ID


def _bases(tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(is_base, base index 0-3 or 0) of token ids."""
    tokens = np.asarray(tokens)
    is_base = (tokens >= A_ID) & (tokens <= T_ID)
    return is_base, np.where(is_base, tokens.astype(np.int64) - A_ID, 0)


def _context_codes(base: np.ndarray, is_base: np.ndarray, j: int) -> tuple[np.ndarray, np.ndarray]:
    """For every position of the last axis: the code of its 2j neighbours (left then right, each
    base a digit in base 4) and whether all of them are bases inside the row."""
    length = base.shape[-1]
    code = np.zeros(base.shape, dtype=np.int64)
    valid = np.ones(base.shape, dtype=bool)
    for offset in [*range(-j, 0), *range(1, j + 1)]:
        shifted_base = np.zeros_like(base)
        shifted_ok = np.zeros_like(is_base)
        src = slice(max(0, offset), length + min(0, offset))
        dst = slice(max(0, -offset), length - max(0, offset))
        shifted_base[..., dst] = base[..., src]
        shifted_ok[..., dst] = is_base[..., src]
        code = code * 4 + shifted_base
        valid &= shifted_ok
    return code, valid


class ContextCounts:
    """Base counts given j = 0..k bases on each side (see the module docstring)."""

    def __init__(self, k: int = 3) -> None:
        if not 0 <= k <= 6:
            raise ValueError(f"context baseline: k must lie in 0..6 (4^(2k) contexts), got {k}")
        self.k = k
        self.counts = [np.zeros((4 ** (2 * j), 4), dtype=np.float64) for j in range(k + 1)]

    def fit(self, sequences: Iterable[np.ndarray]) -> ContextCounts:
        """Add the counts of every base of `sequences` (token-id arrays; contexts stay inside each)."""
        for tokens in sequences:
            is_base, base = _bases(tokens)
            for j, table in enumerate(self.counts):
                code, valid = _context_codes(base, is_base, j)
                keep = valid & is_base
                table += np.bincount(code[keep] * 4 + base[keep], minlength=table.size).reshape(table.shape)
        return self

    def log_probs(self, input_ids: np.ndarray, positions: tuple[np.ndarray, ...]) -> np.ndarray:
        """(n, 4) natural-log probabilities of A/C/G/T at `positions` (an index tuple into the
        (B, L) `input_ids`, e.g. from np.nonzero(labels != -100)), backing off per position."""
        is_base, base = _bases(input_ids)
        chosen = np.full(len(positions[0]), -1)
        codes = np.zeros(len(positions[0]), dtype=np.int64)
        for j in range(self.k, -1, -1):
            code, valid = _context_codes(base, is_base, j)
            take = (chosen < 0) & valid[positions]
            chosen[take], codes[take] = j, code[positions][take]
        probs = np.empty((len(codes), 4))
        for j, table in enumerate(self.counts):
            rows = chosen == j
            counts = table[codes[rows]] + 1.0
            probs[rows] = counts / counts.sum(1, keepdims=True)
        return np.log(probs)

    def loss(self, input_ids: np.ndarray, labels: np.ndarray) -> tuple[float, int]:
        """(summed cross-entropy, number of targets) over the positions whose label is a base."""
        is_target = (labels >= A_ID) & (labels <= T_ID)
        positions = np.nonzero(is_target)
        if len(positions[0]) == 0:
            return 0.0, 0
        log_p = self.log_probs(input_ids, positions)
        picked = log_p[np.arange(len(log_p)), labels[positions].astype(np.int64) - A_ID]
        return float(-picked.sum()), len(picked)

