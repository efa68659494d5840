"""``plantbimoe vep`` on sites of the real TAIR10 chromosome 1 (embedded), with a tiny model."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

import numpy as np
import pytest

from plantbimoe.cli import main
from plantbimoe.inference.runtime import Runtime
from plantbimoe.inference.vep import VepSettings, normalise, score_changes
from plantbimoe.tokenizer import encode

OTHER = {"A": "C", "C": "G", "G": "T", "T": "A"}


def _base(sequence: bytes, pos: int, n: int = 1) -> str:
    return sequence[pos - 1 : pos - 1 + n].decode().upper()


@pytest.fixture(scope="module")
def vep_run(chr1, tair10_fasta, model_dir, tmp_path_factory):
    name, seq = chr1
    last = len(seq)
    mid = 1_000_001
    rows = [  # (pos, id, REF, ALT)
        (1, "first", _base(seq, 1), OTHER[_base(seq, 1)]),
        (last, "last", _base(seq, last), OTHER[_base(seq, last)]),
        (mid, "multi", _base(seq, mid), f"{OTHER[_base(seq, mid)]},{OTHER[OTHER[_base(seq, mid)]]}"),
        (mid + 10, "ins", _base(seq, mid + 10), _base(seq, mid + 10) + "GA"),
        (mid + 20, "del", _base(seq, mid + 20, 3), _base(seq, mid + 20)),
        (mid + 30, "mnv", _base(seq, mid + 30, 2), OTHER[_base(seq, mid + 30)] + OTHER[_base(seq, mid + 31)]),
        (mid + 40, "mismatch", OTHER[_base(seq, mid + 40)], _base(seq, mid + 40)),
        (mid + 50, "symbolic", _base(seq, mid + 50), "<DEL>"),
        (last, "past_end", _base(seq, last) + "A", _base(seq, last)),
    ]
    lines = ["##fileformat=VCFv4.2", f"##contig=<ID={name}>",
             "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1"]
    lines += [f"{name}\t{p}\t{i}\t{r}\t{a}\t50\tPASS\tDP=7\tGT\t0/1" for p, i, r, a in rows]
    lines += ["Chr1\t100\tother_name\tA\tG\t.\tPASS\t.\tGT\t1/1",
              f"{name}\tabc\tbad_pos\tA\tG\t.\t.\t.",
              f"{name}\t12\ttoo_few"]
    folder = tmp_path_factory.mktemp("vep")
    vcf = folder / "sites.vcf"
    vcf.write_text("\n".join(lines) + "\n")
    out = folder / "scored.vcf.gz"
    args = ["vep", str(model_dir), str(vcf), str(tair10_fasta), "-o", str(out), "--window", "33",
            "--indel-flank", "2", "--device", "cpu", "--precision", "fp32", "--quiet"]  # compared in fp32
    return main(args), out, folder / "scored.tsv", rows


def test_exit_code_and_outputs(vep_run) -> None:
    code, out, tsv, _ = vep_run
    assert code == 0 and out.is_file() and tsv.is_file()
    assert not list(out.parent.glob(".*tmp*"))


def test_vcf_output_carries_the_score_in_info(vep_run) -> None:
    _, out, _, rows = vep_run
    with gzip.open(out, "rt") as handle:
        lines = handle.read().splitlines()
    header = [x for x in lines if x.startswith("#")]
    assert header[-1].startswith("#CHROM")
    assert any(x.startswith("##INFO=<ID=PlantBiMoE_LLR,Number=A,Type=Float") for x in header)
    records = {x.split("\t")[2]: x.split("\t") for x in lines if not x.startswith("#")}
    assert "bad_pos" not in records and "too_few" not in records  # malformed lines are left out
    assert len(records) == len(rows) + 1
    for vid in ("first", "last", "ins", "del", "mnv"):
        assert "PlantBiMoE_LLR=" in records[vid][7] and records[vid][7].startswith("DP=7;")
        assert records[vid][8:] == ["GT", "0/1"]
    multi = records["multi"][7].split("PlantBiMoE_LLR=")[1].split(",")
    assert len(multi) == 2 and all(np.isfinite(float(v)) for v in multi)
    for vid in ("mismatch", "symbolic", "past_end", "other_name"):
        assert "PlantBiMoE_LLR" not in records[vid][7]


def test_tsv_rows_statuses_and_scores(vep_run, chr1, model) -> None:
    _, _, tsv, _ = vep_run
    with open(tsv) as handle:
        table = list(csv.DictReader(handle, delimiter="\t"))
    status = {(r["id"], r["alt"]): r["status"] for r in table}
    assert [r["status"] for r in table if r["id"] == "multi"] == ["ok", "ok"]
    assert {k[0]: v for k, v in status.items() if k[0] != "multi"} == {
        "first": "ok", "last": "ok", "ins": "ok", "del": "ok", "mnv": "ok", "mismatch": "ref_mismatch",
        "symbolic": "unsupported_allele", "past_end": "out_of_range", "other_name": "missing_contig"}
    kinds = {r["id"]: r["kind"] for r in table}
    assert (kinds["first"], kinds["ins"], kinds["del"], kinds["mnv"]) == ("snv", "ins", "del", "mnv")
    mismatch = next(r for r in table if r["id"] == "mismatch")
    assert mismatch["score"] == "NA" and "but the FASTA has" in mismatch["note"]
    # the CLI's scores are those of the scoring function on the same contig
    contig = encode(chr1[1])
    ok = [r for r in table if r["status"] == "ok"]
    changes = [normalise(int(r["pos"]), r["ref"], r["alt"]) for r in ok]
    direct = score_changes(model, contig, changes, VepSettings(33, 2), Runtime(batch_size=8))
    got = np.array([[float(r["score"]), float(r["score_fwd"]), float(r["score_rev"])] for r in ok])
    np.testing.assert_allclose(got, direct, atol=1e-5)


def test_report_and_nothing_scored(tmp_path: Path, model_dir, chr1, capsys) -> None:
    name, seq = chr1
    fasta = tmp_path / "slice.fa"
    fasta.write_text(f">{name}\n{seq[:200].decode()}\n")
    vcf = tmp_path / "v.vcf"
    vcf.write_text(f"{name}\t5\t.\t{OTHER[_base(seq, 5)]}\tA\n{name}\tx\t.\tA\tG\n")
    code = main(["vep", str(model_dir), str(vcf), str(fasta), "-o", str(tmp_path / "o.vcf"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 1  # variants, none scored
    assert "malformed VCF line 2: POS 'x'" in err and "ref_mismatch: VCF line 1" in err
    text = (tmp_path / "o.vcf").read_text()
    assert text.startswith("##fileformat=VCFv4.2\n##INFO=<ID=PlantBiMoE_LLR") and "#CHROM\tPOS" in text
    assert main(["vep", str(model_dir), str(tmp_path / "none.vcf"), str(fasta), "-o", "x.vcf"]) == 2
    assert "VCF file not found" in capsys.readouterr().err
