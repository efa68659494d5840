"""Fixtures: a tiny random model (live and exported) and the real TAIR10 chromosome 1."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from datamodules.embedded import embedded_assemblies
from datamodules.fasta import read_fasta
from plantbimoe import PlantBiMoEForMaskedLM, export_pretrained
from plantbimoe.inference.runtime import Runtime
from plantbimoe.tokenizer import encode
from tests.interop.helpers import tiny_mlm


@pytest.fixture(scope="session")
def model() -> PlantBiMoEForMaskedLM:
    return tiny_mlm(seed=3)


@pytest.fixture(scope="session")
def model_dir(model: PlantBiMoEForMaskedLM, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_pretrained(model, tmp_path_factory.mktemp("model") / "tiny")


@pytest.fixture
def runtime() -> Runtime:
    return Runtime(batch_size=16)


@pytest.fixture(scope="session")
def tair10_fasta() -> Path:
    return embedded_assemblies()["A_thaliana_TAIR10"]


@pytest.fixture(scope="session")
def chr1(tair10_fasta: Path) -> tuple[str, bytes]:
    """(record name, sequence as in the file) of the embedded TAIR10 chromosome 1."""
    record = next(iter(read_fasta(tair10_fasta)))
    return record.name, record.sequence


@pytest.fixture(scope="session")
def chr1_region(chr1: tuple[str, bytes]) -> np.ndarray:
    """Token ids of 400 real bases from the middle of chromosome 1 (no N)."""
    ids = encode(chr1[1][5_000_000:5_000_400])
    assert (ids != 11).all()
    return ids
