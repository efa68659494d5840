"""Bad input: handled as documented, or stopped with an error naming file and record; nothing half-written."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from datamodules.fasta import FastaFormatError
from datamodules.shards.builder import INDEX_NAME, build_shards
from datamodules.shards.cli import main as cli_main
from datamodules.shards.manifest import ManifestError, parse_manifest
from tests.shards.conftest import SMALL, write_fasta

GOOD = "ACGTACGTTGCAacgtacgtTTGGCCAA" * 10  # 280 bp


def _build(tmp_path: Path, fasta: Path) -> dict:
    manifest = parse_manifest({"corpus": "bad", "species": [{"name": "sp", "fasta": str(fasta)}]})
    return build_shards(manifest, tmp_path / "out", SMALL, processes=1, progress=False)


def _nothing_written(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert not (out / INDEX_NAME).exists()
    assert not list(out.rglob("*.tar")) and not list(out.rglob("*.tmp"))


@pytest.mark.parametrize("content, message", [
    ("ACGT\nACGT\n", r"before any '>' header"),
    (">r1\nACGT\n>r2\n>r3\nACGT\n", r"record 'r2'.*empty record"),
    (">r1\nACGT\n>r1\nACGT\n", r"duplicate record name 'r1'"),
    (">r1\nACGTACGT\nACGXACGT\n", r"record 'r1'.*invalid character 'X'.*line 3"),
])
def test_malformed_fasta_stops_with_file_and_record(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.fa"
    path.write_text(content)
    with pytest.raises(FastaFormatError, match=message) as err:
        _build(tmp_path, path)
    assert str(path) in str(err.value)
    _nothing_written(tmp_path)


def test_truncated_gzip_stops_with_file(tmp_path: Path) -> None:
    path = tmp_path / "cut.fa.gz"
    data = gzip.compress((">r1\n" + GOOD * 40 + "\n").encode())
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(FastaFormatError, match=r"truncated or corrupt gzip") as err:
        _build(tmp_path, path)
    assert str(path) in str(err.value)
    _nothing_written(tmp_path)


def test_crlf_and_iupac_read_like_lf_and_n(tmp_path: Path) -> None:
    lf = _build(tmp_path / "lf", write_fasta(tmp_path / "lf.fa", {"r1": GOOD}))
    crlf = _build(tmp_path / "crlf", write_fasta(tmp_path / "crlf.fa", {"r1": GOOD}, newline="\r\n"))
    assert lf["splits"] == crlf["splits"]
    iupac = _build(tmp_path / "iupac", write_fasta(tmp_path / "iupac.fa", {"r1": "R" + GOOD[1:]}))
    assert iupac["species"]["sp"]["splits"]["train"]["base_counts"][4] == 1  # R counted as N


def test_short_contigs_are_skipped_and_counted(tmp_path: Path) -> None:
    records = {"long": GOOD, "tiny": "ACGT", "small": GOOD[:63]}
    index = _build(tmp_path, write_fasta(tmp_path / "s.fa", records))
    assert index["species"]["sp"]["short_contigs"] == {"count": 2, "bases": 67}
    assert index["splits"]["train"]["windows"] > 0


def test_manifest_naming_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match=r"species 'sp'.*FASTA file not found.*nowhere\.fa"):
        parse_manifest({"species": [{"name": "sp", "fasta": str(tmp_path / "nowhere.fa")}]}, "m.yaml")


def test_manifest_with_unset_root_variable_or_bad_accession(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="PLANTBIMOE_TEST_UNSET_ROOT is not set"):
        parse_manifest({"root": "${PLANTBIMOE_TEST_UNSET_ROOT}", "species": [{"name": "x", "fasta": "x.fa"}]})
    path = write_fasta(tmp_path / "x.fa", {"r": GOOD})
    with pytest.raises(ManifestError, match="not a versioned NCBI assembly accession"):
        parse_manifest({"species": [{"name": "x", "fasta": str(path), "accession": "GCF_1"}]})


def test_duplicate_contig_across_files_and_unknown_holdout(tmp_path: Path) -> None:
    one, two = write_fasta(tmp_path / "1.fa", {"r": GOOD}), write_fasta(tmp_path / "2.fa", {"r": GOOD})
    manifest = parse_manifest({"species": [{"name": "sp", "fasta": [str(one), str(two)]}]})
    with pytest.raises(ValueError, match=r"contig 'r' appears in both .*1\.fa and .*2\.fa"):
        build_shards(manifest, tmp_path / "out", SMALL, processes=1, progress=False)
    manifest = parse_manifest({"species": [{"name": "sp", "fasta": str(one), "val": ["chrX"]}]})
    with pytest.raises(ValueError, match="held-out val contig 'chrX' is not in its FASTA files"):
        build_shards(manifest, tmp_path / "out2", SMALL, processes=1, progress=False)


def test_cli_reports_bad_input_as_an_error_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    manifest = tmp_path / "m.yaml"
    manifest.write_text("species:\n  - {name: sp, fasta: missing.fa}\n")
    assert cli_main(["build", str(manifest), str(tmp_path / "out"), "--quiet"]) == 2
    assert "FASTA file not found" in capsys.readouterr().err
