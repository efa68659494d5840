"""`embedded:NAME` in place of a FASTA path in the CLI, `plantbimoe data`, and `score-windows
--region` writing genome coordinates (also for a record cut by samtools faidx)."""

from __future__ import annotations

from pathlib import Path

import pytest

from datamodules.embedded import main as list_embedded
from datamodules.fasta_datamodule import _normalise_fasta
from plantbimoe.cli import main
from plantbimoe.inference.regions import Region, parse_region, record_origin

TAIR10 = "embedded:A_thaliana_TAIR10"
REGION = "NC_003070.9:3001-3200"
TILES = ["--window", "64", "--overlap", "16", "--quiet"]


def test_region_syntax_and_samtools_record_names() -> None:
    assert parse_region("NC_003070.9:3,001-3,200") == Region("NC_003070.9", 3000, 3200)
    assert str(parse_region(REGION)) == REGION
    assert record_origin("NC_003070.9:3001-3200") == ("NC_003070.9", 3000)
    assert record_origin("chr1") == ("chr1", 0)
    for bad in ("chr1", "chr1:0-5", "chr1:9-3"):
        with pytest.raises(ValueError, match="--region"):
            parse_region(bad)


def test_data_lists_the_embedded_assemblies(capsys: pytest.CaptureFixture) -> None:
    assert main(["data"]) == 0
    listed = capsys.readouterr().out
    assert "embedded:A_lyrata_ALyr_1.0" in listed and "NC_003070.9  30,427,671 bp" in listed
    assert list_embedded() == 0 and capsys.readouterr().out == listed
    assert _normalise_fasta(TAIR10)["A_thaliana_TAIR10"][0].endswith(".fna.gz")  # configs take it too


def _data_lines(path: Path) -> list[list[str]]:
    return [line.split("\t") for line in path.read_text().splitlines()
            if not line.startswith(("track", "browser"))]


def test_score_windows_region_of_an_embedded_genome_writes_genome_coordinates(
        model_dir: Path, chr1: tuple[str, bytes], tmp_path: Path) -> None:
    out = tmp_path / "region.bedgraph"
    assert main(["score-windows", str(model_dir), TAIR10, "--region", REGION, "-o", str(out), *TILES]) == 0
    header = out.read_text().splitlines()[:2]
    assert header[0] == f"browser position {REGION}"
    assert header[1].startswith('track type=bedGraph name="PlantBiMoE ref_logprob" description=')
    rows = _data_lines(out)
    called = sum(base not in b"Nn" for base in chr1[1][3000:3200])
    assert len(rows) == called
    assert {r[0] for r in rows} == {"NC_003070.9"}
    assert all(3000 <= int(r[1]) < 3200 and int(r[2]) == int(r[1]) + 1 for r in rows)

    cut = tmp_path / "cut.fa"  # what `samtools faidx genome.fa NC_003070.9:3001-3200` writes
    cut.write_bytes(b">" + REGION.encode() + b"\n" + chr1[1][3000:3200] + b"\n")
    again = tmp_path / "cut.bedgraph"
    assert main(["score-windows", str(model_dir), str(cut), "-o", str(again), *TILES]) == 0
    assert _data_lines(again) == rows


def test_unknown_names_and_contigs_are_reported(model_dir: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture) -> None:
    out = str(tmp_path / "x.bedgraph")
    assert main(["score-windows", str(model_dir), "embedded:A_thaliana", "-o", out, *TILES]) == 2
    assert "unknown embedded assembly; known: embedded:A_thaliana_TAIR10" in capsys.readouterr().err
    assert main(["score-windows", str(model_dir), TAIR10, "--region", "chr9:1-10", "-o", out, *TILES]) == 2
    assert "no record 'chr9'" in capsys.readouterr().err
    code = main(["score-windows", str(model_dir), TAIR10, "--region", "NC_003070.9:30427600-30427700",
                 "-o", out, *TILES])
    assert code == 2 and "NC_003070.9 has 30,427,671 bases" in capsys.readouterr().err


def test_vep_reads_an_embedded_reference(model_dir: Path, chr1: tuple[str, bytes], tmp_path: Path) -> None:
    ref = chr1[1][999_999:1_000_000].decode().upper()
    alt = "A" if ref != "A" else "C"
    vcf = tmp_path / "one.vcf"
    vcf.write_text(f"##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
                   f"NC_003070.9\t1000000\tsnv\t{ref}\t{alt}\t.\t.\t.\n")
    out = tmp_path / "scored.vcf"
    assert main(["vep", str(model_dir), str(vcf), TAIR10, "-o", str(out), "--window", "33", "--quiet"]) == 0
    assert "PlantBiMoE_LLR=" in out.read_text().splitlines()[-1]
