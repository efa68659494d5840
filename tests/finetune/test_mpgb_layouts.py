"""Every MPGB dataset config reads generated files in the published folder layout and header shapes.

PGB FASTA headers as published: `>name|label` with real name shapes per task, chromatin
accessibility `>chr05:8316399-8317399_0;2;3|1|0|1|...` (a full 0/1 vector), strength
`>SORBI_3002G198300_Sb|0.8370`; repeated headers with different sequences (PGB lncRNA and
poly_a splits have them). PDLLM: train/dev/test.csv, open chromatin under full_datasets/ or
mini_datasets/.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hydra.utils import instantiate

from datamodules.mpgb.readers import read_dataset
from tests.finetune.helpers import random_sequences, write_table
from tests.framework.hydra_utils import CONF_DIR, compose_config

DATASETS = sorted(p.stem for p in (CONF_DIR / "data" / "mpgb").glob("*.yaml"))
WITH_VALIDATION = {"chromatin_accessibility", "enhancer", "promoter_strength", "terminator_strength"}
CHROMATIN_LABELS = {"arabidopsis_thaliana": 19, "brachypodium_distachyon": 9, "oryza_sativa_mh63_rs2": 15,
                    "oryza_sativa_zs97_rs2": 15, "sorghum_bicolor": 14, "zea_mays": 19}


def pgb_name(task_group: str, i: int) -> str:
    """A record name in the shape PGB uses for that task."""
    return {
        "chromatin_accessibility": f"chr05:{8316399 + 1000 * i}-{8317399 + 1000 * i}_0;2;3;4;5;7;15;18",
        "polyadenylation": f"2:{9474214 + 7 * i}_CDS",
        "splice_site": f"chrom5_{191009 + 11 * i}",
        "lncrna": f"1_Zm00001eb{48100 + i:06d}",
        "promoter_strength": f"SORBI_3002G{198300 + i}_Sb",
        "terminator_strength": f"AT1G{10100 + i}_At",
    }.get(task_group, f"Chromosome05_Manes.05G{73550 + i:06d}")


def label_text(task_type: str, num_labels: int, rng: np.random.Generator) -> tuple[str, str]:
    """(PGB FASTA label field, CSV label field) of a random label."""
    if task_type == "multilabel":
        bits = [str(b) for b in rng.integers(0, 2, num_labels)]
        return "|".join(bits), ";".join(bits)
    if task_type == "regression":
        value = f"{rng.normal():.4f}"
        return value, value
    value = str(int(rng.integers(0, num_labels)))
    return value, value


def write_pgb_fasta(path: Path, task_group: str, task_type: str, num_labels: int, n: int,
                    rng: np.random.Generator, repeat: bool = True) -> Path:
    """`n` records in PGB's shape; with `repeat`, record 3 reuses record 1's header (new sequence)."""
    lines: list[str] = []
    for i, sequence in enumerate(random_sequences(rng, n, 40, 90)):
        header = f">{pgb_name(task_group, i)}|{label_text(task_type, num_labels, rng)[0]}"
        lines += [lines[2] if repeat and i == 3 else header, sequence]  # record 3 repeats record 1
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def _dataset_files(cfg, n: dict[str, int], rng: np.random.Generator) -> None:
    data = cfg.data
    root = Path(data.root)
    for split, count in n.items():
        name = data[f"{split}_file"]
        if name is None:
            continue
        if data.format == "fasta":
            write_pgb_fasta(root / name, data.task_group, data.task_type, data.num_labels, count, rng)
        else:
            root.mkdir(parents=True, exist_ok=True)
            rows = [(s, label_text(data.task_type, data.num_labels, rng)[1])
                    for s in random_sequences(rng, count, 40, 90)]
            write_table(root / name, rows, "," if data.format == "csv" else "\t")


def _config(dataset: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *extra: str):
    monkeypatch.setenv("MPGB_DIR", str(tmp_path / "mpgb"))
    return compose_config(["experiment=finetune_mpgb", f"data/mpgb={dataset}", *extra], tmp_path / "run")


@pytest.mark.parametrize("dataset", DATASETS)
def test_config_reads_its_published_layout(
    dataset: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = _config(dataset, tmp_path, monkeypatch)
    data = cfg.data
    source = "pgb" if data.format == "fasta" else "pdllm"
    assert Path(data.root).relative_to(tmp_path / "mpgb").parts[0] == source
    if source == "pgb":  # PGB ships _validation.fa for four task types only
        assert (data.val_file is not None) == (data.task_group in WITH_VALIDATION)
        stem = data.train_file.removesuffix("_train.fa")
        assert data.test_file == f"{stem}_test.fa"
        assert data.val_file in (None, f"{stem}_validation.fa")
    else:
        assert (data.train_file, data.val_file, data.test_file) == ("train.csv", "dev.csv", "test.csv")
    if data.task_group == "chromatin_accessibility":
        assert data.num_labels == CHROMATIN_LABELS[dataset.removeprefix("chromatin_access_")]
    sizes = {"train": 30, "val": 8, "test": 8}
    _dataset_files(cfg, sizes, np.random.default_rng(0))
    module = instantiate(data)
    module.setup("fit")
    read = {split: len(module.splits[split]) for split in ("train", "val", "test")}
    assert read["test"] == 8
    assert read["train"] + read["val"] == (30 if data.val_file is None else 38)
    labels = module.splits["train"].labels
    assert labels.shape[1:] == ((data.num_labels,) if data.task_type == "multilabel" else ())


@pytest.mark.parametrize("subset", ["full", "mini"])
def test_open_chromatin_subsets(subset: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = _config("open_chromatin", tmp_path, monkeypatch, f"data.subset={subset}")
    assert Path(cfg.data.root) == tmp_path / "mpgb" / "pdllm" / "open_chromatin" / f"{subset}_datasets"
    _dataset_files(cfg, {"train": 12, "val": 4, "test": 4}, np.random.default_rng(1))
    module = instantiate(cfg.data)
    module.setup("fit")
    assert module.subset == subset and len(module.splits["test"]) == 4


def test_a_misplaced_download_names_what_the_folder_holds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = _config("open_chromatin", tmp_path, monkeypatch)
    flat = Path(cfg.data.root).parent  # the CSVs at the dataset folder's root, not in full_datasets/
    (flat / "mini_datasets").mkdir(parents=True)
    write_table(flat / "train.csv", [("ACGT", "0")])
    with pytest.raises(FileNotFoundError, match=r"train file not found: .*full_datasets/train.csv \(.*"
                                                r"full_datasets does not exist; .*open_chromatin holds "
                                                r"mini_datasets/, train.csv\); set data.root"):
        instantiate(cfg.data).setup("fit")
    cfg.data.root = str(tmp_path)
    (tmp_path / "full_datasets").mkdir()
    with pytest.raises(FileNotFoundError, match=r"holds full_datasets/, mpgb/"):
        instantiate(cfg.data).setup("fit")


def test_repeated_headers_are_separate_records(tmp_path: Path) -> None:
    path = tmp_path / "m_esculenta_train.fa"
    path.write_text(">Chromosome05_Manes.05G073550|1\n" + "A" * 659 + "\n"
                    ">Chromosome05_Manes.05G073550|1\n" + "C" * 225 + "\n")
    data = read_dataset(path, "fasta", "binary", 2)
    assert data.lengths().tolist() == [659, 225] and data.labels.tolist() == [1, 1]


def test_chromatin_vector_of_the_wrong_width_names_the_record(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    path = write_pgb_fasta(tmp_path / "zea_mays_test.fa", "chromatin_accessibility", "multilabel", 19, 6, rng)
    text = path.read_text().splitlines()
    text[8] = text[8].rsplit("|", 1)[0]  # record 5 loses its last label
    path.write_text("\n".join(text) + "\n")
    with pytest.raises(ValueError, match=r"zea_mays_test.fa: record 5 \('chr05:.*', header at line 9\): "
                                         r"label vector .* has 18 values, expected num_labels=19"):
        read_dataset(path, "fasta", "multilabel", 19)


def test_strength_headers_are_float_targets(tmp_path: Path) -> None:
    path = tmp_path / "leaf_train.fa"
    path.write_text(">SORBI_3002G198300_Sb|0.8370\nACGTACGT\n>AT1G01010_At|-1.2500\nACGT\n")
    data = read_dataset(path, "fasta", "regression", 1)
    assert data.labels.dtype == np.float32 and data.labels.tolist() == pytest.approx([0.837, -1.25])

