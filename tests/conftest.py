"""Shared pytest setup: CPU-only, single-threaded torch so parallel jobs on small machines stay fast."""

import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(1)
# without CUDA the Triton scan kernels run in Triton's interpreter (tests/scan); Triton reads this
# when it is first imported, which torch.compile tests may do long before the scan tests run
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip tests marked ``gpu`` when CUDA is not available."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if item.get_closest_marker("gpu") is not None:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def embedded_shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The embedded Arabidopsis corpus as webdataset shards, built once per test session."""
    from datamodules.shards.datamodule import ShardDataModule

    root = Path(__file__).resolve().parents[1]
    out = tmp_path_factory.mktemp("embedded") / "arabidopsis"
    manifest = str(root / "conf" / "manifests" / "arabidopsis.yaml")
    ShardDataModule(str(out), manifest=manifest, progress=False).prepare_data()
    return out
