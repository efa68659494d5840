"""Indexed genome access (plantbimoe.genome): plain and bgzip FASTA, index files built atomically,
clear errors for a plain gzip and for FASTA that cannot be indexed, and `plantbimoe faidx`."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import pytest

from plantbimoe import genome as genome_module
from plantbimoe.bgzf import BLOCK_DATA, bgzip_file, gzip_kind
from plantbimoe.cli import main
from plantbimoe.fasta import fasta_index, read_fasta
from plantbimoe.genome import GenomeAccessError, open_genome
from plantbimoe.inference.regions import Region, read_region

RECORDS = {"chr1": "ACGTacgtNN" * 30 + "ACG", "chr2": "GGGCCCAAAT" * 7000, "chrM": "ACGTA"}


def _fasta(path: Path, width: int = 60) -> Path:
    lines = []
    for name, seq in RECORDS.items():
        lines.append(f">{name} some description")
        lines += [seq[i : i + width] for i in range(0, len(seq), width)]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(params=["plain", "bgzip"])
def fasta(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    plain = _fasta(tmp_path / "genome.fa")
    return plain if request.param == "plain" else bgzip_file(plain, tmp_path / "genome.fa.bgz")


def test_fetch_matches_the_records_and_the_index_is_built_once(fasta: Path) -> None:
    with open_genome(fasta) as genome:
        assert genome.lengths == {name: len(seq) for name, seq in RECORDS.items()}
        for name, seq in RECORDS.items():
            assert genome.fetch(name) == seq.encode()
            for start, end in ((0, 1), (55, 130), (len(seq) - 7, len(seq))):
                start, end = max(0, min(start, len(seq))), min(end, len(seq))
                assert genome.fetch(name, start, end) == seq[start:end].encode()  # case kept
        assert "chr2" in genome and "chr9" not in genome
    compressed = gzip_kind(fasta) == "bgzf"
    index = [Path(f"{fasta}.fai"), *([Path(f"{fasta}.gzi")] if compressed else [])]
    assert all(p.is_file() for p in index)
    assert sorted(p.name for p in fasta.parent.iterdir() if p.name.startswith(".")) == []  # no temporaries
    stamps = [p.stat().st_mtime_ns for p in index]
    open_genome(fasta).close()
    assert [p.stat().st_mtime_ns for p in index] == stamps  # up to date: not rebuilt
    assert fasta_index(fasta) == {name: len(seq) for name, seq in RECORDS.items()}


def test_bgzip_copy_is_blocked_and_readable_by_any_gzip_reader(tmp_path: Path) -> None:
    plain = _fasta(tmp_path / "g.fa")
    big = tmp_path / "big.fa"
    big.write_text(">x\n" + "ACGT" * (BLOCK_DATA // 2) + "\n")  # spans several blocks
    for source in (plain, big):
        copy = bgzip_file(source, tmp_path / (source.name + ".bgz"))
        assert gzip_kind(copy) == "bgzf"
        assert gzip.decompress(copy.read_bytes()) == source.read_bytes()
    with open_genome(tmp_path / "big.fa.bgz") as genome:
        assert genome.fetch("x", BLOCK_DATA - 3, BLOCK_DATA + 5) == ("ACGT" * 3).encode()[1:9]


def test_a_stale_index_is_rebuilt(tmp_path: Path) -> None:
    path = _fasta(tmp_path / "g.fa")
    open_genome(path).close()
    path.write_text(">only\nACGTACGT\n")
    os.utime(path, ns=(Path(f"{path}.fai").stat().st_mtime_ns + 10**9,) * 2)
    with open_genome(path) as genome:
        assert genome.lengths == {"only": 8} and genome.fetch("only", 2, 4) == b"GT"


def test_plain_gzip_is_refused_with_how_to_convert(tmp_path: Path) -> None:
    path = tmp_path / "g.fa.gz"
    path.write_bytes(gzip.compress(_fasta(tmp_path / "g.fa").read_bytes()))
    with pytest.raises(GenomeAccessError) as error:
        open_genome(path)
    message = str(error.value)
    assert str(path) in message and "bgzip" in message
    assert "plantbimoe faidx" in message and "samtools faidx" in message and "g.fa.bgz" in message


def test_unequal_lines_are_named_in_the_error(tmp_path: Path) -> None:
    path = tmp_path / "ragged.fa"
    path.write_text(">a\nACGTACGT\nACGT\nACGTACGT\n")
    with pytest.raises(GenomeAccessError, match=r"record 'a': line 3 is shorter .* rewrap"):
        open_genome(path)
    assert not Path(f"{path}.fai").exists() and not list(tmp_path.glob(".*"))


def test_other_unreadable_fasta_is_named_in_the_error(tmp_path: Path) -> None:
    path = tmp_path / "g.fa"
    path.write_text("ACGT\n>a\nACGT\n")
    with pytest.raises(GenomeAccessError, match="cannot index .* sequence data at line 1 before any '>'"):
        open_genome(path)
    with pytest.raises(FileNotFoundError, match="not found"):
        open_genome(tmp_path / "missing.fa")


def test_fetch_outside_a_record_or_of_an_unknown_record(tmp_path: Path) -> None:
    with open_genome(_fasta(tmp_path / "g.fa")) as genome:
        with pytest.raises(ValueError, match=r"not within record 'chrM' \(5 bp\)"):
            genome.fetch("chrM", 2, 6)
        with pytest.raises(KeyError, match="its records: chr1, chr2, chrM"):
            genome.fetch("chr9", 0, 1)


def test_an_unwritable_folder_keeps_the_index_in_the_cache(tmp_path: Path, monkeypatch) -> None:
    path = bgzip_file(_fasta(tmp_path / "g.fa"), tmp_path / "g.fa.bgz")
    monkeypatch.setenv("PLANTBIMOE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(genome_module.os, "access", lambda p, mode: Path(p) != tmp_path)
    with open_genome(path) as genome:
        assert genome.fetch("chr2", 0, 4) == b"GGGC"
    assert not Path(f"{path}.fai").exists()
    assert len(list((tmp_path / "cache" / "faidx").glob("*/g.fa.bgz.fai"))) == 1
    assert len(list((tmp_path / "cache" / "faidx").glob("*/g.fa.bgz.gzi"))) == 1


def test_fasta_index_reads_an_up_to_date_fai(tmp_path: Path) -> None:
    path = _fasta(tmp_path / "g.fa")
    open_genome(path).close()
    Path(f"{path}.fai").write_text("from_the_fai\t12\t4\t60\t61\n")  # newer than the FASTA: read as is
    assert fasta_index(path) == {"from_the_fai": 12}


def test_read_region_through_the_index(tmp_path: Path) -> None:
    path = bgzip_file(_fasta(tmp_path / "g.fa"), tmp_path / "g.fa.bgz")
    assert read_region(path, Region("chr1", 58, 63)) == RECORDS["chr1"][58:63].encode()
    with pytest.raises(ValueError, match="no record 'chrX'.*chr1, chr2, chrM"):
        read_region(path, Region("chrX", 0, 5))
    with pytest.raises(ValueError, match="chrM has 5 bases"):
        read_region(path, Region("chrM", 0, 6))


def test_faidx_command_converts_a_plain_gzip_and_indexes_it(tmp_path: Path, capsys) -> None:
    plain = _fasta(tmp_path / "g.fa")
    gz = tmp_path / "g.fa.gz"
    gz.write_bytes(gzip.compress(plain.read_bytes()))
    assert main(["faidx", str(gz)]) == 0
    copy = tmp_path / "g.fa.bgz"
    assert gzip_kind(copy) == "bgzf" and Path(f"{copy}.fai").is_file() and Path(f"{copy}.gzi").is_file()
    records = [(r.name, r.sequence) for r in read_fasta(plain)]
    assert [(r.name, r.sequence) for r in read_fasta(copy)] == records
    assert main(["faidx", str(plain)]) == 0 and Path(f"{plain}.fai").is_file()  # plain: indexed in place
    assert main(["faidx", str(copy), "-o", str(tmp_path / "again.bgz")]) == 2
    assert "bgzip-compressed already" in capsys.readouterr().err
