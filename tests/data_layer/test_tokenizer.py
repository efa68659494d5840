"""Tokenizer: ids, soft-mask, IUPAC, errors, reverse complement, specials and padding."""

import numpy as np
import pytest
import torch

from plantbimoe import tokenizer as tk


def test_vocabulary_matches_the_released_ids():
    assert tk.VOCAB == ("[CLS]", "[SEP]", "[BOS]", "[MASK]", "[PAD]", "[RESERVED]", "[UNK]",
                        "A", "C", "G", "T", "N")
    assert list(tk.encode("ACGTN")) == [7, 8, 9, 10, 11]


def test_round_trip_with_softmask():
    rng = np.random.default_rng(0)
    text = "".join(rng.choice(list("ACGTNacgtn"), size=5000))
    ids, softmask = tk.encode_with_softmask(text)
    assert ids.dtype == np.uint8 and softmask.dtype == bool
    assert tk.decode(ids, softmask) == text
    assert tk.decode(ids) == text.upper()
    assert tk.encode(text.encode()).tolist() == ids.tolist()  # bytes and str agree


def test_lowercase_gives_same_ids_and_a_separate_softmask():
    ids, softmask = tk.encode_with_softmask("ACgtNn")
    assert ids.tolist() == tk.encode("ACGTNN").tolist()
    assert softmask.tolist() == [False, False, True, True, False, True]


def test_iupac_codes_map_to_n_and_u_to_t():
    codes = "RYSWKMBDHV"
    assert set(tk.encode(codes + codes.lower()).tolist()) == {tk.N_ID}
    assert tk.encode("Uu").tolist() == [tk.T_ID, tk.T_ID]


@pytest.mark.parametrize(("text", "char", "index"), [("ACGTX", "X", 4), ("AC-GT", "-", 2),
                                                      ("A C", " ", 1), ("ACé", "é", 2)])
def test_invalid_character_error_names_character_and_index(text, char, index):
    with pytest.raises(ValueError, match=rf"{char!r}.*at index {index}"):
        tk.encode(text)


def test_reverse_complement_values_and_specials():
    ids = tk.add_special_tokens(tk.encode("AACGTN"))
    assert tk.decode(tk.reverse_complement(ids)) == "[SEP]NACGTT[CLS]"


def test_reverse_complement_twice_is_identity_numpy_and_torch():
    rng = np.random.default_rng(1)
    ids = rng.integers(0, tk.VOCAB_SIZE, size=(3, 5, 64)).astype(np.uint8)
    assert np.array_equal(tk.reverse_complement(tk.reverse_complement(ids)), ids)
    tensor = torch.from_numpy(ids.astype(np.int64))
    once = tk.reverse_complement(tensor)
    assert once.dtype == torch.int64 and torch.equal(tk.reverse_complement(once), tensor)
    assert np.array_equal(once.numpy(), tk.reverse_complement(ids))


def test_pad_batch_right_pads_with_mask():
    input_ids, mask = tk.pad_batch([tk.encode("ACGTA"), torch.tensor([7, 8])], pad_to_multiple_of=4)
    assert input_ids.dtype == torch.long and mask.dtype == torch.bool
    assert input_ids.shape == (2, 8)
    assert input_ids[1].tolist() == [7, 8] + [tk.PAD_ID] * 6
    assert mask.sum(1).tolist() == [5, 2] and not mask[:, 5:].any()
    with pytest.raises(ValueError, match="at least one"):
        tk.pad_batch([])


def test_reverse_complement_padded_keeps_specials_and_pads_in_place():
    rows = ["AACGTN", "GGA", "T"]
    input_ids, mask = tk.pad_batch([tk.add_special_tokens(tk.encode(r)) for r in rows])
    flipped = tk.reverse_complement_padded(input_ids, mask)
    for i, row in enumerate(rows):
        expected = tk.add_special_tokens(tk.reverse_complement(tk.encode(row)))
        assert flipped[i, : len(row) + 2].tolist() == expected.tolist()
    assert torch.equal(flipped[~mask], input_ids[~mask])
    assert torch.equal(tk.reverse_complement_padded(flipped, mask), input_ids)


def test_decode_specials_and_facade():
    ids = tk.add_special_tokens(tk.encode("ACG"))
    assert tk.decode(ids) == "[CLS]ACG[SEP]"
    assert tk.decode(ids, skip_special_tokens=True) == "ACG"
    batch = tk.DNATokenizer()(["ACGT", "A"])
    assert batch["input_ids"].shape == (2, 6) and batch["attention_mask"].sum().item() == 9
    with pytest.raises(ValueError, match="token ids"):
        tk.decode([12])
