"""Dynamic MLM masking and the pretraining collator.

Of the maskable positions (A, C, G, T inside the attention mask; never specials, pads or N),
each is selected with probability `mlm_probability`; a selected position becomes [MASK] with
probability `mask_token_fraction`, a uniformly random A/C/G/T with `random_token_fraction`, and
stays unchanged otherwise. Labels hold the original id at selected positions and -100 elsewhere.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from plantbimoe.tokenizer import A_ID, MASK_ID, T_ID, pad_batch

IGNORE_INDEX = -100


def _check_rates(mlm_probability: float, mask_token_fraction: float, random_token_fraction: float) -> None:
    if not 0 < mlm_probability <= 1:
        raise ValueError(f"mlm_probability must be in (0, 1], got {mlm_probability}")
    if min(mask_token_fraction, random_token_fraction) < 0 or mask_token_fraction + random_token_fraction > 1:
        raise ValueError("mask_token_fraction and random_token_fraction must be >= 0 with a sum <= 1; got "
                         f"{mask_token_fraction} and {random_token_fraction}")


def mask_tokens(input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                mlm_probability: float = 0.15, mask_token_fraction: float = 0.8,
                random_token_fraction: float = 0.1,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(corrupted input_ids, labels) for MLM; draws fresh random numbers on every call.

    `generator` must live on the device of `input_ids` when given.
    """
    _check_rates(mlm_probability, mask_token_fraction, random_token_fraction)
    maskable = (input_ids >= A_ID) & (input_ids <= T_ID)
    if attention_mask is not None:
        maskable &= attention_mask.bool()
    shape, device = input_ids.shape, input_ids.device
    selected = maskable & (torch.rand(shape, generator=generator, device=device) < mlm_probability)
    action = torch.rand(shape, generator=generator, device=device)
    random_ids = torch.randint(A_ID, T_ID + 1, shape, generator=generator, device=device,
                               dtype=input_ids.dtype)
    to_mask = selected & (action < mask_token_fraction)
    to_random = selected & ~to_mask & (action < mask_token_fraction + random_token_fraction)
    corrupted = torch.where(to_mask, torch.full_like(input_ids, MASK_ID), input_ids)
    corrupted = torch.where(to_random, random_ids, corrupted)
    labels = torch.where(selected, input_ids, torch.full_like(input_ids, IGNORE_INDEX)).long()
    return corrupted, labels


class MLMCollator:
    """Collate window samples into the pretraining batch of docs/CONTRACTS.md.

    Samples are mappings with `input_ids` (1-D ids) and optionally `softmask` (1-D bool) and
    `key` (int). When every sample has a key, the masks are seeded from (seed, keys): a window
    seen again under a new key (a new epoch) gets new masks, and a fixed key set (validation)
    gets the same masks every time. Without keys, torch's global generator is used.
    """

    def __init__(self, mlm_probability: float = 0.15, mask_token_fraction: float = 0.8,
                 random_token_fraction: float = 0.1, pad_to_multiple_of: int | None = None,
                 seed: int = 0) -> None:
        _check_rates(mlm_probability, mask_token_fraction, random_token_fraction)
        self.mlm_probability = mlm_probability
        self.mask_token_fraction = mask_token_fraction
        self.random_token_fraction = random_token_fraction
        self.pad_to_multiple_of = pad_to_multiple_of
        self.seed = seed

    def _generator(self, samples: Sequence[Mapping]) -> torch.Generator:
        if all("key" in s for s in samples):
            state = np.random.SeedSequence([self.seed, 0x4D4C4D, *(int(s["key"]) for s in samples)])
            seed = int(state.generate_state(1, np.uint64)[0])
        else:
            seed = int(torch.randint(0, 2**62, (1,)).item())
        return torch.Generator().manual_seed(seed)

    def __call__(self, samples: Sequence[Mapping]) -> dict[str, torch.Tensor]:
        if not samples:
            raise ValueError("MLMCollator got an empty list of samples")
        input_ids, attention_mask = pad_batch([s["input_ids"] for s in samples], self.pad_to_multiple_of)
        softmask = torch.zeros_like(attention_mask)
        for row, sample in enumerate(samples):
            if "softmask" in sample:
                flags = torch.from_numpy(np.asarray(sample["softmask"], dtype=bool).copy())
                softmask[row, : flags.numel()] = flags
        corrupted, labels = mask_tokens(input_ids, attention_mask, self.mlm_probability,
                                        self.mask_token_fraction, self.random_token_fraction,
                                        self._generator(samples))
        return {"input_ids": corrupted, "attention_mask": attention_mask, "labels": labels,
                "softmask": softmask}
