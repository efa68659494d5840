"""Shared fixtures for the fine-tuning tests: tiny backbone, synthetic datasets in MPGB formats."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import yaml

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"


def tiny_backbone() -> dict:
    """The tiny preset shrunk further (d_model 32, 2 layers) for fast CPU tests."""
    config = yaml.safe_load((CONF_DIR / "backbone" / "tiny.yaml").read_text())
    config.update(d_model=32, n_layer=2, intermediate_size=64)
    return config


def random_sequences(rng: np.random.Generator, n: int, low: int, high: int) -> list[str]:
    """`n` random ACGT strings with lengths in [low, high] and GC contents spread over 0.1-0.9."""
    sequences = []
    for _ in range(n):
        gc = rng.uniform(0.1, 0.9)
        probs = [(1 - gc) / 2, gc / 2, gc / 2, (1 - gc) / 2]
        sequences.append("".join(rng.choice(list("ACGT"), p=probs, size=int(rng.integers(low, high + 1)))))
    return sequences


def write_table(path: Path, rows: list[tuple[str, str]], delimiter: str = ",") -> Path:
    """A `sequence,label` table (CSV or TSV) with an extra ignored column."""
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle, delimiter=delimiter)
        writer.writerow(["name", "sequence", "label"])
        writer.writerows([(f"seq{i}", seq, label) for i, (seq, label) in enumerate(rows)])
    return path


def write_fasta(path: Path, rows: list[tuple[str, str]]) -> Path:
    """PGB FASTA: `>id|label` headers."""
    path.write_text("".join(f">seq{i}|{label}\n{seq}\n" for i, (seq, label) in enumerate(rows)))
    return path


def labelled_rows(task_type: str, num_labels: int, sequences: list[str], rng: np.random.Generator) -> list:
    """Label fields for `sequences` that a model can learn (GC content decides)."""
    rows = []
    for seq in sequences:
        gc = (seq.count("G") + seq.count("C")) / len(seq)
        if task_type == "regression":
            label = f"{gc:.4f}"
        elif task_type == "multilabel":
            label = ";".join(str(int(gc > t)) for t in np.linspace(0.3, 0.7, num_labels))
        else:
            label = str(min(num_labels - 1, int(gc * num_labels)))
        rows.append((seq, label))
    return rows
