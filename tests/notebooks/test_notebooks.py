"""The notebooks run top to bottom (nbclient, a fresh kernel each) at smoke-test size.

Each notebook reads PLANTBIMOE_NOTEBOOK_FAST=1 (a few training steps), PLANTBIMOE_NOTEBOOK_OUT and
PLANTBIMOE_NOTEBOOK_DATA (run outputs, shards and the benchmark, here in temporary folders) and, for
notebook 03, PLANTBIMOE_MODEL (the checkpoint notebook 01 wrote).
"""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbformat import NotebookNode

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
NAMES = ("01_pretrain_quickstart", "02_finetune_benchmark", "03_variant_effects")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def execute(name: str, out: Path, **env: str) -> NotebookNode:
    """Run notebook `name` in a fresh kernel (cwd notebooks/) with the smoke-test environment."""
    notebook = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    client = NotebookClient(notebook, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOKS)}})
    kernel_env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg",
                  "PLANTBIMOE_NOTEBOOK_FAST": "1", "PLANTBIMOE_NOTEBOOK_OUT": str(out), **env}
    client.execute(env=kernel_env)
    return notebook


def assert_figures(out: Path, *names: str) -> None:
    for name in names:
        path = out / "figures" / name
        assert path.is_file() and path.read_bytes()[:8] == PNG_MAGIC, f"{path} is not a PNG"


def text_outputs(notebook: NotebookNode) -> str:
    return "\n".join(o.get("text", "") for cell in notebook.cells if cell.cell_type == "code"
                     for o in cell.outputs)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Shards and benchmark files, shared by the notebooks of this module."""
    return tmp_path_factory.mktemp("notebook_data")


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> tuple[Path, NotebookNode]:
    """Notebook 01's output folder and executed notebook (its checkpoint feeds notebook 03)."""
    out = tmp_path_factory.mktemp("nb01")
    return out, execute(NAMES[0], out, PLANTBIMOE_NOTEBOOK_DATA=str(data_dir))


@pytest.mark.parametrize("name", NAMES)
def test_stored_without_outputs(name: str) -> None:
    notebook = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    nbformat.validate(notebook)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, f"{name}: stored with outputs"


@pytest.mark.slow
def test_01_pretrain_quickstart(pretrained: tuple[Path, NotebookNode], data_dir: Path) -> None:
    out, notebook = pretrained
    assert (data_dir / "shards" / "arabidopsis" / "index.json").is_file()
    assert (out / "run" / "checkpoints" / "last.ckpt").is_file()
    assert_figures(out, "loss_curve.png", "expert_load.png")
    text = text_outputs(notebook)
    assert "vs base-frequency baseline" in text
    assert "115,612,160 total" in text  # the released configuration's parameter count


@pytest.mark.slow
def test_02_finetune_benchmark(tmp_path: Path, data_dir: Path) -> None:
    notebook = execute(NAMES[1], tmp_path, PLANTBIMOE_NOTEBOOK_DATA=str(data_dir))
    assert (tmp_path / "tair10_splice_donor" / "results.json").is_file()
    assert_figures(tmp_path, "roc_curves.png")
    assert "k-mer L2 strength" in text_outputs(notebook)


@pytest.mark.slow
def test_03_variant_effects(tmp_path: Path, pretrained: tuple[Path, NotebookNode]) -> None:
    checkpoint = pretrained[0] / "run" / "checkpoints" / "last.ckpt"
    notebook = execute(NAMES[2], tmp_path, PLANTBIMOE_MODEL=str(checkpoint))
    scored = (tmp_path / "nac001.scored.tsv").read_text().splitlines()
    assert len(scored) == 1 + 7 and all(line.split("\t")[9] == "ok" for line in scored[1:])
    assert_figures(tmp_path, "promoter_saturation_and_router.png")
    assert "60 substitutions" in text_outputs(notebook)
