"""Small genomes built in memory for window and datamodule tests."""

import numpy as np

from datamodules.windows import Contig
from plantbimoe.tokenizer import encode_with_softmask


def contig(assembly: str, name: str, sequence: str, source: str = "mem.fa") -> Contig:
    tokens, softmask = encode_with_softmask(sequence)
    return Contig(assembly, name, source, tokens, softmask)


def random_sequence(length: int, seed: int = 0, lowercase_fraction: float = 0.3) -> str:
    rng = np.random.default_rng(seed)
    letters = rng.choice(list("ACGT"), size=length)
    lower = rng.random(length) < lowercase_fraction
    return "".join(np.where(lower, np.char.lower(letters), letters))
