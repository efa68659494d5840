"""MLM masking statistics and the collator's batch contract."""

import numpy as np
import pytest
import torch

from datamodules.masking import IGNORE_INDEX, MLMCollator, mask_tokens
from plantbimoe import tokenizer as tk
from plantbimoe.tokenizer import A_ID, MASK_ID, N_ID, T_ID, add_special_tokens, pad_batch


def mixed_batch(seed=0, rows=32, length=400):
    """Right-padded rows of [CLS] A/C/G/T/N [SEP] with ~5 % N and varied lengths."""
    rng = np.random.default_rng(seed)
    sequences = []
    for i in range(rows):
        ids = rng.integers(A_ID, T_ID + 1, size=length - 7 * i).astype(np.uint8)
        ids[rng.random(ids.size) < 0.05] = N_ID
        sequences.append(add_special_tokens(ids))
    return pad_batch(sequences)


def test_masking_statistics_over_many_draws():
    input_ids, mask = mixed_batch()
    maskable = (input_ids >= A_ID) & (input_ids <= T_ID) & mask
    generator = torch.Generator().manual_seed(0)
    selected = masked = random_changed = unchanged = total = 0
    for _ in range(40):
        corrupted, labels = mask_tokens(input_ids, mask, generator=generator)
        chosen = labels != IGNORE_INDEX
        assert not (chosen & ~maskable).any()  # never specials, pads or N
        assert torch.equal(labels[chosen], input_ids[chosen])
        assert torch.equal(corrupted[~chosen], input_ids[~chosen])
        changed = chosen & (corrupted != MASK_ID)
        assert ((corrupted[changed] >= A_ID) & (corrupted[changed] <= T_ID)).all()
        selected += int(chosen.sum())
        total += int(maskable.sum())
        masked += int((corrupted[chosen] == MASK_ID).sum())
        random_changed += int((changed & (corrupted != input_ids)).sum())
        unchanged += int((changed & (corrupted == input_ids)).sum())
    assert abs(selected / total - 0.15) < 0.005
    assert abs(masked / selected - 0.8) < 0.01
    assert abs(random_changed / selected - 0.1 * 3 / 4) < 0.01  # a random base differs 3 times in 4
    assert abs(unchanged / selected - (0.1 + 0.1 / 4)) < 0.01


def test_configurable_rates():
    input_ids, mask = mixed_batch(1)
    corrupted, labels = mask_tokens(input_ids, mask, mlm_probability=0.5, mask_token_fraction=1.0,
                                    random_token_fraction=0.0, generator=torch.Generator().manual_seed(1))
    chosen = labels != IGNORE_INDEX
    maskable = (input_ids >= A_ID) & (input_ids <= T_ID) & mask
    assert abs(chosen.sum() / maskable.sum() - 0.5) < 0.02
    assert (corrupted[chosen] == MASK_ID).all()
    with pytest.raises(ValueError, match="sum <= 1"):
        mask_tokens(input_ids, mask, mask_token_fraction=0.8, random_token_fraction=0.3)
    with pytest.raises(ValueError, match="mlm_probability"):
        MLMCollator(mlm_probability=0.0)


def sample(ids, key=None, softmask=None):
    item = {"input_ids": add_special_tokens(np.asarray(ids, dtype=np.uint8))}
    item["softmask"] = np.pad(np.asarray(softmask if softmask is not None else [False] * len(ids)), 1)
    if key is not None:
        item["key"] = key
    return item


def test_collator_batch_contract_and_softmask_passthrough():
    rng = np.random.default_rng(2)
    samples = [sample(rng.integers(A_ID, T_ID + 1, 300), key=k, softmask=rng.random(300) < 0.5)
               for k in range(3)]
    samples.append(sample(rng.integers(A_ID, T_ID + 1, 100), key=3, softmask=[True] * 100))
    batch = MLMCollator()(samples)
    assert set(batch) == {"input_ids", "attention_mask", "labels", "softmask"}
    assert batch["input_ids"].shape == (4, 302)
    for name, dtype in (("input_ids", torch.long), ("attention_mask", torch.bool), ("labels", torch.long),
                        ("softmask", torch.bool)):
        assert batch[name].dtype == dtype
    assert batch["softmask"][3, 1:101].all() and not batch["softmask"][3, 101:].any()
    assert torch.equal(batch["softmask"][0], torch.from_numpy(samples[0]["softmask"]))
    assert (batch["input_ids"][3, 102:] == tk.PAD_ID).all() and not batch["attention_mask"][3, 102:].any()
    assert (batch["labels"][:, 0] == IGNORE_INDEX).all() and (batch["input_ids"][:, 0] == tk.CLS_ID).all()
    assert (batch["input_ids"][:3, -1] == tk.SEP_ID).all()


def test_keyed_masks_repeat_for_same_keys_and_change_with_new_keys():
    rng = np.random.default_rng(3)
    windows = [rng.integers(A_ID, T_ID + 1, 500) for _ in range(4)]
    collate = MLMCollator(seed=7)
    first = collate([sample(w, key=k) for k, w in enumerate(windows)])
    again = collate([sample(w, key=k) for k, w in enumerate(windows)])
    later = collate([sample(w, key=100 + k) for k, w in enumerate(windows)])
    assert torch.equal(first["labels"], again["labels"])
    assert not torch.equal(first["labels"], later["labels"])
    unkeyed = [collate([sample(w) for w in windows])["labels"] for _ in range(2)]
    assert not torch.equal(*unkeyed)
