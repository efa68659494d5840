"""Our positions -> a checkpoint tokenizer's tokens (no transformers needed)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from plantbimoe.tokenizer import DNATokenizer
from plantbimoe_hf.alignment import batch_to_strings, gather_positions, position_index, spans_from_tokens


def test_rows_become_their_bases_without_specials_or_padding() -> None:
    batch = DNATokenizer()(["ACGTN", "ggA"])
    texts, is_base = batch_to_strings(batch["input_ids"], batch["attention_mask"])
    assert texts == ["ACGTN", "GGA"]
    assert is_base.sum(1).tolist() == [5, 3] and not is_base[:, 0].any()


def test_spans_follow_kmers_wordpieces_and_unknown_tokens() -> None:
    spans = spans_from_tokens("ACGTACN", ["<cls>", "ACG", "##TAC", "<unk>", "<eos>"], [1, 0, 0, 0, 1])
    assert spans == [None, (0, 3), (3, 6), (6, 7), None]


def test_every_position_gets_its_covering_token() -> None:
    # checkpoint tokens: <cls> ACG T <eos> <pad>; ours: [CLS] A C G T [SEP] [PAD]
    spans = [None, (0, 3), (3, 4), None, None]
    index = position_index(
        spans,
        special=[1, 0, 0, 1, 1],
        token_mask=[1, 1, 1, 1, 0],
        our_real=np.array([1, 1, 1, 1, 1, 1, 0], dtype=bool),
        our_base=np.array([0, 1, 1, 1, 1, 0, 0], dtype=bool),
    )
    assert index.tolist() == [0, 1, 1, 1, 2, 3, -1]


def test_uncovered_bases_and_inner_specials_are_errors() -> None:
    real = np.ones(4, dtype=bool)
    with pytest.raises(ValueError, match="covered by no token"):
        position_index([None, (0, 1), None], [1, 0, 1], [1, 1, 1], real, np.array([0, 1, 1, 0], dtype=bool))
    with pytest.raises(ValueError, match="between bases"):
        position_index([(0, 1), (1, 2)], [0, 0], [1, 1], real, np.array([1, 0, 1, 0], dtype=bool))


def test_gather_zeroes_padding() -> None:
    hidden = torch.arange(2 * 3 * 2, dtype=torch.float32).reshape(2, 3, 2)
    out = gather_positions(hidden, torch.tensor([[0, 2, -1], [1, 1, 0]]))
    assert out[0, 1].tolist() == hidden[0, 2].tolist() and out[0, 2].abs().sum() == 0
    assert out[1, 0].tolist() == hidden[1, 1].tolist()
