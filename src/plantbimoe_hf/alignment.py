"""Map our token positions (one per base, plus [CLS]/[SEP]) to a Hugging Face tokenizer's tokens.

Our batches hold one id per nucleotide; a checkpoint's tokenizer may cut the same bases into
k-mers (AgroNT) or BPE pieces (DNABERT-2). Each of our positions gets the index of the
checkpoint token covering it: a base gets the token containing it, a special token before the
first base gets the checkpoint's first special token (its [CLS]), one after the last base its
last special token (its [SEP]/<eos>); padding gets -1. Special tokens between bases (e.g. MLM
masks) are refused.
"""

from __future__ import annotations

import numpy as np
import torch

from plantbimoe.tokenizer import A_ID, N_ID

LETTERS = np.frombuffer(b"ACGTN", dtype=np.uint8)  # our ids A_ID..N_ID, in order


def batch_to_strings(input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[list[str], torch.Tensor]:
    """The nucleotides of each row as a string, and the (B, L) mask of the positions they hold."""
    is_base = attention_mask.bool() & (input_ids >= A_ID) & (input_ids <= N_ID)
    ids, mask = input_ids.cpu().numpy(), is_base.cpu().numpy()
    texts = [LETTERS[row[keep] - A_ID].tobytes().decode("ascii") for row, keep in zip(ids, mask, strict=True)]
    return texts, is_base


def spans_from_tokens(text: str, tokens: list[str], special: list[int]) -> list[tuple[int, int] | None]:
    """Character span of each token of `text` (None for special and padding tokens), for
    tokenizers without offsets: tokens are matched in order (a WordPiece ``##`` prefix is
    ignored); a token that does not match the text (unknown) covers one character."""
    spans: list[tuple[int, int] | None] = []
    pos = 0
    for token, is_special in zip(tokens, special, strict=True):
        if is_special:
            spans.append(None)
            continue
        piece = token[2:] if token.startswith("##") else token
        width = len(piece) if piece and text.startswith(piece, pos) else 1
        spans.append((pos, pos + width))
        pos += width
    return spans


def position_index(
    spans: list[tuple[int, int] | None],
    special: list[int],
    token_mask: list[int],
    our_real: np.ndarray,
    our_base: np.ndarray,
) -> np.ndarray:
    """For one row: the checkpoint token index of each of our positions (-1 = padding).

    `spans` and `special`/`token_mask` describe the checkpoint's tokens; `our_real` and
    `our_base` are our row's attention mask and base mask (L,). Raises when a base is covered
    by no token (the tokenizer dropped or truncated it).
    """
    n_bases = int(our_base.sum())
    char_token = np.full(n_bases, -1, dtype=np.int64)
    for t, span in enumerate(spans):
        if span is not None and token_mask[t]:
            char_token[span[0] : min(span[1], n_bases)] = t
    if (char_token < 0).any():
        missing = int(np.flatnonzero(char_token < 0)[0])
        raise ValueError(f"base {missing} of {n_bases} is covered by no token of the checkpoint's tokenizer")
    real_tokens = [t for t, m in enumerate(token_mask) if m]
    specials = [t for t in real_tokens if special[t]] or real_tokens
    index = np.full(our_real.shape[0], -1, dtype=np.int64)
    index[our_base] = char_token
    bases = np.flatnonzero(our_base)
    first, last = (bases[0], bases[-1]) if bases.size else (our_real.shape[0], -1)
    other = np.flatnonzero(our_real & ~our_base)
    inside = other[(other > first) & (other < last)]
    if inside.size:
        raise ValueError(f"position {int(inside[0])}: special token between bases (allowed at the ends only)")
    index[other[other < first]] = specials[0]
    index[other[other > last]] = specials[-1]
    return index


def gather_positions(hidden: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """(B, T, d) checkpoint hidden states -> (B, L, d) at our positions; padding is zero."""
    picked = hidden.gather(1, index.clamp(min=0).unsqueeze(-1).expand(-1, -1, hidden.shape[-1]))
    return picked * (index >= 0).unsqueeze(-1).to(hidden.dtype)
