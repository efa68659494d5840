"""`plantbimoe vep` reading the genome through its index and the VCF as a stream: the same scores
as on a whole contig, multi-allelic records, absent contigs skipped and counted, a plain gzip
FASTA refused with how to convert it, --strict."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from plantbimoe.cli import main
from plantbimoe.genome import open_genome
from plantbimoe.inference import vep_runner
from plantbimoe.inference.runtime import Runtime
from plantbimoe.inference.vcf import VcfReader
from plantbimoe.inference.vep import VepSettings, normalise, score_changes
from plantbimoe.tokenizer import encode

OTHER = {"A": "C", "C": "G", "G": "T", "T": "A"}
SETTINGS = VepSettings(window=33, indel_flank=2)


@pytest.fixture
def slice_fasta(chr1, tmp_path: Path) -> tuple[Path, str, bytes]:
    """2,000 real bases of chromosome 1 as a plain FASTA (60-bp lines) named like it."""
    name, seq = chr1
    piece = seq[3_000_000:3_002_000]
    lines = [piece[i : i + 60].decode() for i in range(0, len(piece), 60)]
    path = tmp_path / "slice.fa"
    path.write_text("\n".join([f">{name}", *lines]) + "\n")
    return path, name, piece


def _vcf(path: Path, rows: list[str], header: bool = True) -> Path:
    lines = ["##fileformat=VCFv4.2", "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO"] if header else []
    path.write_text("\n".join(lines + rows) + "\n")
    return path


def test_windows_read_through_the_index_score_as_on_the_whole_contig(slice_fasta, model, tmp_path,
                                                                     monkeypatch) -> None:
    path, name, piece = slice_fasta
    upper = piece.decode().upper()
    sites = [(1, "C"), (2, "T"), (700, "G"), (1999, "A"), (2000, "C")]  # both contig ends, the middle
    rows, changes = [], []
    for pos, alt in sites:
        alt = alt if alt != upper[pos - 1] else OTHER[alt]
        rows.append(f"{name}\t{pos}\t.\t{upper[pos - 1]}\t{alt}")
        changes.append(normalise(pos, upper[pos - 1], alt))
    rows.append(f"{name}\t900\t.\t{upper[899:902]}\t{upper[899]}")  # a deletion
    changes.append(normalise(900, upper[899:902], upper[899]))
    monkeypatch.setattr(vep_runner, "VARIANTS_PER_CHUNK", 2)  # several batches
    runtime = Runtime(batch_size=8)
    with open_genome(path) as genome, VcfReader(_vcf(tmp_path / "v.vcf", rows)) as reader:
        scored = list(vep_runner.score_records(model, reader, genome, SETTINGS, runtime))
    got = np.array([results[0].scores for _, results in scored])
    expected = score_changes(model, encode(piece), changes, SETTINGS, runtime)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    assert [record.pos for record, _ in scored] == [s[0] for s in sites] + [900]  # VCF order


def test_multi_allelic_missing_contig_and_no_header(slice_fasta, model_dir, tmp_path, capsys) -> None:
    path, name, piece = slice_fasta
    ref = piece[99:100].decode().upper()
    alts = [OTHER[ref], OTHER[OTHER[ref]], "<INS>"]
    rows = [f"{name}\t100\tmulti\t{ref}\t{','.join(alts)}\t.\t.\tDP=4",
            "chrUn\t5\tabsent1\tA\tG", "chrUn\t9\tabsent2\tA\tG"]
    out = tmp_path / "o.vcf"
    vcf = _vcf(tmp_path / "v.vcf", rows, header=False)
    args = ["vep", str(model_dir), str(vcf), str(path), "-o", str(out), "--window", "33", "--quiet"]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "scored 2 of 5 alleles; skipped: missing_contig 2, unsupported_allele 1" in err
    assert f"missing_contig: VCF line 2: contig 'chrUn' is not in {path} (its records: {name})" in err
    lines = out.read_text().splitlines()
    assert lines[0] == "##fileformat=VCFv4.2" and lines[1].startswith("##INFO=<ID=PlantBiMoE_LLR,Number=A,")
    records = {x.split("\t")[2]: x.split("\t") for x in lines if not x.startswith("#")}
    values = records["multi"][7].removeprefix("DP=4;PlantBiMoE_LLR=").split(",")
    assert len(values) == 3 and values[2] == "." and all(np.isfinite(float(v)) for v in values[:2])
    assert records["absent1"][7] == "." and len(records) == 3


def test_a_plain_gzip_fasta_is_refused_with_how_to_convert(slice_fasta, model_dir, tmp_path, capsys) -> None:
    path, name, piece = slice_fasta
    gz = tmp_path / "slice.fa.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    vcf = _vcf(tmp_path / "v.vcf", [f"{name}\t5\t.\t{piece[4:5].decode().upper()}\tN"])
    assert main(["vep", str(model_dir), str(vcf), str(gz), "-o", str(tmp_path / "o.vcf"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "not with bgzip" in err and f"plantbimoe faidx {gz}" in err and "samtools faidx" in err
    assert not (tmp_path / "o.vcf").exists()
    assert main(["faidx", str(gz)]) == 0  # the conversion it names, then the run works
    args = ["vep", str(model_dir), str(vcf), str(tmp_path / "slice.fa.bgz"), "-o", str(tmp_path / "o.vcf")]
    assert main([*args, "--quiet"]) == 1  # runs; its only allele (ALT N) is not scorable


def test_strict_stops_at_a_malformed_line(slice_fasta, model_dir, tmp_path, capsys) -> None:
    path, name, piece = slice_fasta
    ref = piece[9:10].decode().upper()
    vcf = _vcf(tmp_path / "v.vcf", [f"{name}\t10\t.\t{ref}\t{OTHER[ref]}", f"{name}\tten\t.\tA\tG"])
    out = tmp_path / "o.vcf"
    args = ["vep", str(model_dir), str(vcf), str(path), "-o", str(out), "--window", "33", "--quiet"]
    assert main(args) == 0
    assert f"malformed VCF line 4: POS 'ten' is not a positive integer ({vcf})" in capsys.readouterr().err
    assert main([*args, "--strict"]) == 2
    assert f"{vcf}: line 4: POS 'ten'" in capsys.readouterr().err
    assert out.is_file() and not list(tmp_path.glob(".*tmp*"))  # the failed run left no partial file
