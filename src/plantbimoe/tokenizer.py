"""Nucleotide tokenizer of the released PlantBiMoE vocabulary.

Ids: [CLS]=0 [SEP]=1 [BOS]=2 [MASK]=3 [PAD]=4 [RESERVED]=5 [UNK]=6 A=7 C=8 G=9 T=10 N=11.

Encoding is one lookup in a 256-entry byte table, never per-character Python:
- lowercase (soft-masked repeats) gives the same ids as uppercase; the case is returned
  separately as a soft-mask by `encode_with_softmask`;
- IUPAC ambiguity codes R Y S W K M B D H V map to N;
- U (uracil, IUPAC) maps to T, so RNA input encodes as its DNA equivalent (decode gives T);
- any other byte raises a ValueError naming the character and its index.

Pure numpy/torch: the model library imports neither Lightning nor Hydra.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import numpy as np
import torch

CLS_ID, SEP_ID, BOS_ID, MASK_ID, PAD_ID, RESERVED_ID, UNK_ID = range(7)
A_ID, C_ID, G_ID, T_ID, N_ID = 7, 8, 9, 10, 11
VOCAB: tuple[str, ...] = ("[CLS]", "[SEP]", "[BOS]", "[MASK]", "[PAD]", "[RESERVED]", "[UNK]",
                          "A", "C", "G", "T", "N")
VOCAB_SIZE = len(VOCAB)
TOKEN_IDS: dict[str, int] = {token: i for i, token in enumerate(VOCAB)}
NUCLEOTIDE_IDS: tuple[int, ...] = (A_ID, C_ID, G_ID, T_ID)
IUPAC_AMBIGUITY = "RYSWKMBDHV"
_INVALID = 255

ArrayOrTensor = TypeVar("ArrayOrTensor", np.ndarray, torch.Tensor)


def _build_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    byte_to_id = np.full(256, _INVALID, dtype=np.uint8)
    for letters, token_id in (("A", A_ID), ("C", C_ID), ("G", G_ID), ("T", T_ID), ("U", T_ID),
                              ("N" + IUPAC_AMBIGUITY, N_ID)):
        for ch in letters:
            byte_to_id[ord(ch)] = byte_to_id[ord(ch.lower())] = token_id
    is_lower = np.zeros(256, dtype=bool)
    is_lower[[b for b in range(256) if byte_to_id[b] != _INVALID and chr(b).islower()]] = True
    complement = np.arange(VOCAB_SIZE, dtype=np.uint8)
    complement[[A_ID, C_ID, G_ID, T_ID]] = [T_ID, G_ID, C_ID, A_ID]
    id_to_byte = np.frombuffer(b"???????ACGTN", dtype=np.uint8).copy()
    return byte_to_id, is_lower, complement, id_to_byte


BYTE_TO_ID, _IS_LOWER, _COMPLEMENT, _ID_TO_BYTE = _build_tables()
BYTE_TO_ID.flags.writeable = False
_COMPLEMENT_T = torch.from_numpy(_COMPLEMENT.astype(np.int64))


def _as_bytes(seq: str | bytes | bytearray | memoryview) -> bytes | bytearray | memoryview:
    if not isinstance(seq, str):
        return seq
    try:
        return seq.encode("ascii")
    except UnicodeEncodeError as err:
        raise ValueError(_invalid_message(seq[err.start], err.start)) from None


def _invalid_message(char: str, index: int) -> str:
    return (f"invalid nucleotide character {char!r} (0x{ord(char):02x}) at index {index}; expected "
            f"A C G T N, IUPAC codes {' '.join(IUPAC_AMBIGUITY)} or U (either case)")


def first_invalid_index(raw: bytes | bytearray | memoryview, allowed: bytes = b"") -> int:
    """Index of the first byte that is neither a nucleotide code nor in `allowed`; -1 if none."""
    invalid = BYTE_TO_ID == _INVALID
    invalid[list(allowed)] = False
    bad = invalid[np.frombuffer(raw, dtype=np.uint8)]
    return int(bad.argmax()) if bad.any() else -1


def encode(seq: str | bytes | bytearray | memoryview) -> np.ndarray:
    """Bare nucleotide ids (uint8) of a sequence; no special tokens."""
    raw = _as_bytes(seq)
    ids = BYTE_TO_ID[np.frombuffer(raw, dtype=np.uint8)]
    if (ids == _INVALID).any():
        index = int((ids == _INVALID).argmax())
        raise ValueError(_invalid_message(chr(raw[index]), index))
    return ids


def encode_with_softmask(seq: str | bytes | bytearray | memoryview) -> tuple[np.ndarray, np.ndarray]:
    """(ids uint8, softmask bool) where softmask marks lowercase letters of the source."""
    raw = _as_bytes(seq)
    ids = encode(raw)
    return ids, _IS_LOWER[np.frombuffer(raw, dtype=np.uint8)]


def decode(ids: np.ndarray | torch.Tensor | Sequence[int], softmask: np.ndarray | None = None,
           skip_special_tokens: bool = False) -> str:
    """Ids back to text; nucleotides at `softmask` positions come out lowercase."""
    arr = ids.detach().cpu().numpy() if isinstance(ids, torch.Tensor) else np.asarray(ids)
    arr = arr.astype(np.int64).reshape(-1)
    if arr.size and (arr.min() < 0 or arr.max() >= VOCAB_SIZE):
        raise ValueError(f"token ids must lie in [0, {VOCAB_SIZE}); got range [{arr.min()}, {arr.max()}]")
    special = arr < A_ID
    if skip_special_tokens:
        keep = ~special
        arr, special = arr[keep], special[keep]
        softmask = None if softmask is None else np.asarray(softmask).reshape(-1)[keep]
    chars = _ID_TO_BYTE[arr]
    if softmask is not None:
        lower = np.asarray(softmask, dtype=bool).reshape(-1) & ~special
        chars = np.where(lower, chars | 0x20, chars)
    text = chars.tobytes().decode("ascii")
    if not special.any():
        return text
    pieces, last = [], 0
    for index in np.flatnonzero(special).tolist():
        pieces += [text[last:index], VOCAB[arr[index]]]
        last = index + 1
    return "".join(pieces) + text[last:]


def reverse_complement(ids: ArrayOrTensor) -> ArrayOrTensor:
    """Reverse complement along the last dimension (A<->T, C<->G; N and specials unchanged).

    For right-padded batches use `reverse_complement_padded`, which keeps pads at the end.
    """
    if isinstance(ids, torch.Tensor):
        table = _COMPLEMENT_T.to(ids.device)
        return torch.flip(table[ids.long()].to(ids.dtype), dims=[-1])
    return np.ascontiguousarray(_COMPLEMENT[ids][..., ::-1]).astype(ids.dtype, copy=False)


def reverse_complement_padded(input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Reverse-complement the nucleotides of each row of a (B, L) batch in place of one another.

    Special tokens ([CLS], [SEP], ...) and pads keep their positions; only the nucleotide
    slots (ids A..N where attention_mask is true) are reversed and complemented per row.
    """
    if input_ids.dim() != 2 or input_ids.shape != attention_mask.shape:
        raise ValueError(f"expected input_ids and attention_mask of the same (B, L) shape; got "
                         f"{tuple(input_ids.shape)} and {tuple(attention_mask.shape)}")
    batch, length = input_ids.shape
    slots = attention_mask.bool() & (input_ids >= A_ID)
    positions = torch.arange(length, device=input_ids.device).expand(batch, length)
    # nucleotide positions first (ascending), everything else after
    order = torch.argsort(torch.where(slots, positions, positions + length), dim=1)
    count = slots.sum(dim=1, keepdim=True)
    inside = positions < count
    source_pos = torch.gather(order, 1, torch.where(inside, count - 1 - positions, positions))
    flipped = _COMPLEMENT_T.to(input_ids.device)[torch.gather(input_ids, 1, source_pos).long()]
    out = input_ids.clone()
    kept = torch.gather(input_ids, 1, order)
    out.scatter_(1, order, torch.where(inside, flipped.to(input_ids.dtype), kept))
    return out


def add_special_tokens(ids: ArrayOrTensor) -> ArrayOrTensor:
    """[CLS] ids [SEP] along the last dimension."""
    if isinstance(ids, torch.Tensor):
        cls = torch.full((*ids.shape[:-1], 1), CLS_ID, dtype=ids.dtype, device=ids.device)
        return torch.cat([cls, ids, torch.full_like(cls, SEP_ID)], dim=-1)
    cls = np.full((*ids.shape[:-1], 1), CLS_ID, dtype=ids.dtype)
    return np.concatenate([cls, ids, np.full_like(cls, SEP_ID)], axis=-1)


def pad_batch(sequences: Sequence[np.ndarray | torch.Tensor],
              pad_to_multiple_of: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad 1-D id sequences with [PAD]: (input_ids LongTensor, attention_mask BoolTensor)."""
    if len(sequences) == 0:
        raise ValueError("pad_batch needs at least one sequence")
    rows = [s.long() if isinstance(s, torch.Tensor) else torch.from_numpy(np.asarray(s).astype(np.int64))
            for s in sequences]
    if any(r.dim() != 1 for r in rows):
        raise ValueError(f"pad_batch takes 1-D sequences; got shapes {[tuple(r.shape) for r in rows]}")
    length = max(r.numel() for r in rows)
    if pad_to_multiple_of:
        length = -(-length // pad_to_multiple_of) * pad_to_multiple_of
    input_ids = torch.full((len(rows), length), PAD_ID, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), length), dtype=torch.bool)
    for i, row in enumerate(rows):
        input_ids[i, : row.numel()] = row
        attention_mask[i, : row.numel()] = True
    return input_ids, attention_mask


class DNATokenizer:
    """Thin object facade over the module functions, for code that wants a tokenizer object."""

    vocab = VOCAB
    vocab_size = VOCAB_SIZE
    pad_token_id, mask_token_id, cls_token_id, sep_token_id = PAD_ID, MASK_ID, CLS_ID, SEP_ID

    def __call__(self, sequences: Sequence[str], add_special: bool = True,
                 pad_to_multiple_of: int | None = None) -> dict[str, torch.Tensor]:
        """Encode and right-pad a list of sequences into `input_ids` and `attention_mask`."""
        encoded = [encode(s) for s in sequences]
        if add_special:
            encoded = [add_special_tokens(e) for e in encoded]
        input_ids, attention_mask = pad_batch(encoded, pad_to_multiple_of)
        return {"input_ids": input_ids, "attention_mask": attention_mask}

    encode = staticmethod(encode)
    encode_with_softmask = staticmethod(encode_with_softmask)
    decode = staticmethod(decode)
    reverse_complement = staticmethod(reverse_complement)
