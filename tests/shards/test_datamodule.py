"""ShardDataModule: same batches as the FASTA datamodule, builds on first use, trains the MLM task."""

from __future__ import annotations

from pathlib import Path

import hydra
import pytest
import torch
import yaml

from datamodules.fasta_datamodule import FastaWindowDataModule
from datamodules.shards.datamodule import ShardDataModule
from tasks.runner import run
from tests.framework.hydra_utils import compose_config
from tests.shards.conftest import WINDOW


def _manifest(genomes: dict, tmp_path: Path) -> Path:
    path = tmp_path / "toy.yaml"
    path.write_text(yaml.safe_dump({
        "corpus": "toy", "root": genomes["root"],
        "build": {"window_length": WINDOW, "overlap": 8, "shard_size": "8KiB", "min_holdout_length": 0},
        "species": [{"name": "sp_a", "fasta": "sp_a.fa.gz", "test": ["a2"]},
                    {"name": "sp_b", "fasta": "sp_b.fa", "val": ["b2"]}]}))
    return path


def test_batches_have_the_fasta_datamodule_format(genomes: dict, tmp_path: Path) -> None:
    shards = ShardDataModule(str(tmp_path / "shards"), manifest=str(_manifest(genomes, tmp_path)),
                             window_length=48, batch_size=4, val_windows=4, progress=False)
    shards.prepare_data()
    fasta = FastaWindowDataModule({"sp_a": str(Path(genomes["root"]) / "sp_a.fa.gz"),
                                   "sp_b": str(Path(genomes["root"]) / "sp_b.fa")},
                                  window_length=48, batch_size=4, val_windows=4, progress=False,
                                  val_region={"sp_b": "b2"}, test_region={"sp_a": "a2"},
                                  val_fraction=0.0, test_fraction=0.0)
    for split in ("train", "val", "test"):
        ours = next(iter(getattr(shards, f"{split}_dataloader")()))
        theirs = next(iter(getattr(fasta, f"{split}_dataloader")()))
        assert ours.keys() == theirs.keys()
        for key in ours:
            assert ours[key].dtype == theirs[key].dtype and ours[key].shape == theirs[key].shape, key
    frequencies = shards.unigram_frequencies()
    assert frequencies.shape == (4,) and abs(float(frequencies.sum()) - 1.0) < 1e-9


def test_datamodule_rejects_inconsistent_options(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="needs resampled=true"):
        ShardDataModule(str(tmp_path), species_weighting="uniform")
    with pytest.raises(ValueError, match="needs train_windows_per_epoch"):
        ShardDataModule(str(tmp_path), resampled=True)


@pytest.mark.parametrize("corpus", ["arabidopsis", "42species"])
def test_data_configs_instantiate_without_data(corpus: str, tmp_path: Path) -> None:
    cfg = compose_config([f"data/pretrain={corpus}"], tmp_path)
    datamodule = hydra.utils.instantiate(cfg.data)
    assert isinstance(datamodule, ShardDataModule)
    assert datamodule.shards.endswith(f"shards/{corpus}")


@pytest.mark.slow
def test_mlm_trains_from_shards_with_a_length_curriculum(genomes: dict, tmp_path: Path) -> None:
    manifest = _manifest(genomes, tmp_path)
    cfg = compose_config([
        "data/pretrain=arabidopsis", f"data.shards={tmp_path / 'shards'}", f"data.manifest={manifest}",
        "data.window_length=32", "data.batch_size=2", "data.val_windows=4", "data.test_windows=4",
        "trainer.max_steps=4", "trainer.val_check_interval=2", "trainer.log_every_n_steps=1",
        "scheduler.warmup_steps=1", "callbacks.progress_bar=null",
        "+callbacks.curriculum={_target_:datamodules.shards.curriculum.SequenceLengthCurriculum,"
        "stages:[[0,16],[2,32]]}"], tmp_path / "run")
    metric = run(cfg)
    assert metric is not None and torch.isfinite(torch.tensor(metric))
    assert (tmp_path / "shards" / "index.json").is_file()
