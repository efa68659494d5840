"""Small synthetic genomes (known sequence, soft-masked runs, N runs) and shard builds of them."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from datamodules.shards.builder import build_shards
from datamodules.shards.manifest import parse_manifest
from datamodules.shards.unit import BuildParams

WINDOW, OVERLAP = 64, 8
SMALL = BuildParams(window_length=WINDOW, overlap=OVERLAP, max_n_fraction=0.02, shard_size=8192,
                    val_fraction=0.0, test_fraction=0.0, min_holdout_length=0)


def random_contig(rng: np.random.Generator, length: int, n_runs: int = 2) -> str:
    """Random ACGT with lowercase stretches, an IUPAC code and runs of N."""
    seq = np.array(list(rng.choice(list("ACGT"), size=length)))
    for _ in range(3):
        start = int(rng.integers(0, max(1, length - 40)))
        seq[start:start + 30] = np.char.lower(seq[start:start + 30])
    for _ in range(n_runs):
        start = int(rng.integers(0, max(1, length - 10)))
        seq[start:start + int(rng.integers(1, 10))] = "N"
    seq[int(rng.integers(length))] = "R"
    return "".join(seq)


def write_fasta(path: Path, records: dict[str, str], line: int = 60, newline: str = "\n") -> Path:
    text = "".join(f">{name} test record{newline}" + newline.join(seq[i:i + line] for i in
                   range(0, len(seq), line)) + newline for name, seq in records.items())
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(text.encode(), mtime=0))
    else:
        path.write_bytes(text.encode())
    return path


@pytest.fixture(scope="session")
def genomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, str]]:
    """Two species: one gzip file with three contigs (one shorter than a window), one plain file."""
    rng = np.random.default_rng(7)
    root = tmp_path_factory.mktemp("genomes")
    species = {"sp_a": {"a1": random_contig(rng, 3000), "a2": random_contig(rng, 1500, n_runs=6),
                        "a3": random_contig(rng, 40)},
               "sp_b": {"b1": random_contig(rng, 2200), "b2": random_contig(rng, 1800)}}
    write_fasta(root / "sp_a.fa.gz", species["sp_a"])
    write_fasta(root / "sp_b.fa", species["sp_b"])
    return {"root": str(root), **species}


def manifest_for(genomes: dict, **extra: dict) -> dict:
    entries = [{"name": "sp_a", "fasta": "sp_a.fa.gz", "accession": "GCF_000000001.1",
                **extra.get("sp_a", {})},
               {"name": "sp_b", "fasta": ["sp_b.fa"], **extra.get("sp_b", {})}]
    return {"corpus": "toy", "root": genomes["root"], "species": entries}


@pytest.fixture(scope="session")
def built(genomes: dict, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """Shards of the toy genomes with b2 held out for validation and a2 for test."""
    out = tmp_path_factory.mktemp("shards") / "toy"
    manifest = parse_manifest(manifest_for(genomes, sp_a={"test": ["a2"]}, sp_b={"val": ["b2"]}))
    return out, build_shards(manifest, out, SMALL, processes=1, progress=False)


def shard_windows(out: Path, index: dict, split: str) -> list[tuple[dict, np.ndarray, np.ndarray]]:
    """(metadata, tokens, softmask) of every window of a split, read back with webdataset."""
    from datamodules.shards.dataset import decode_window, read_shard

    rows = []
    for shard in index["splits"][split]["shards"]:
        for sample in read_shard(str(out / shard["path"])):
            tokens, softmask = decode_window(sample)
            rows.append((json.loads(sample["json"]), tokens, softmask))
    return rows
