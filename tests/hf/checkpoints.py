"""Tiny random ESM (AgroNT-style, k-mer vocabulary) and BERT (DNABERT-2-style, BPE) checkpoints
with their own tokenizers, built and saved locally: nothing is downloaded."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np

SIZE = {"hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 32}


def save_tiny_esm(folder: Path, k: int = 3) -> Path:
    """An ESM encoder with an NT-style tokenizer: k-mers, single-base fallback, <cls> first."""
    from transformers import EsmConfig, EsmModel, EsmTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    specials = ["<unk>", "<pad>", "<mask>", "<cls>", "<eos>", "<bos>"]
    kmers = ["".join(p) for p in itertools.product("ACGT", repeat=k)]
    vocab = folder / "vocab.txt"
    vocab.write_text("\n".join(specials + kmers + list("ACGTN")) + "\n")
    tokenizer = EsmTokenizer(str(vocab), model_max_length=256)
    config = EsmConfig(
        vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id, mask_token_id=tokenizer.mask_token_id,
        max_position_embeddings=258, position_embedding_type="absolute", **SIZE,
    )
    EsmModel(config, add_pooling_layer=False).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def save_tiny_bert(folder: Path, seed: int = 0) -> Path:
    """A BERT encoder with a DNABERT-2-style tokenizer: BPE trained here on random DNA."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    corpus = ["".join(rng.choice(list("ACGT"), size=200)) for _ in range(200)]
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    bpe = Tokenizer(models.BPE(unk_token="[UNK]"))
    bpe.pre_tokenizer = pre_tokenizers.Whitespace()
    bpe.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=96, special_tokens=specials,
                                                        initial_alphabet=list("ACGTN")))
    bpe.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[(t, bpe.token_to_id(t)) for t in ("[CLS]", "[SEP]")]
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]",
        mask_token="[MASK]", model_max_length=256,
    )
    config = BertConfig(vocab_size=len(tokenizer), max_position_embeddings=256, pad_token_id=0, **SIZE)
    BertModel(config, add_pooling_layer=False).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
