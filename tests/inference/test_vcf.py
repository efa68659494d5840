"""The streaming VCF reader and writer: header parsing, Number=A for multi-allelic records, a
missing header, malformed lines (skipped with their problem, or an error naming file and line)."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from plantbimoe.inference.vcf import InfoField, VcfFormatError, VcfReader, VcfWriter

HEADER = [
    "##fileformat=VCFv4.3",
    '##INFO=<ID=DP,Number=1,Type=Integer,Description="Depth, total">',
    '##INFO=<ID=SCORE,Number=1,Type=String,Description="an older score, \\"quoted\\"">',
    "##contig=<ID=chr1,length=1000>",
    "##contig=<ID=chr2>",
    "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1",
]
SCORE = InfoField("SCORE", "A", "Float", 'model score, "LLR"')


def _write(path: Path, lines: list[str]) -> Path:
    text = "\n".join(lines) + "\n"
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def test_header_is_parsed(tmp_path: Path) -> None:
    with VcfReader(_write(tmp_path / "v.vcf", HEADER)) as reader:
        header = reader.header
        assert header.has_column_line and header.columns[-1] == "S1"
        assert header.info["DP"] == InfoField("DP", "1", "Integer", "Depth, total")
        assert header.info["SCORE"].description == 'an older score, "quoted"'
        assert header.contigs == {"chr1": 1000, "chr2": None}
        assert list(reader) == []


def test_multi_allelic_records_get_one_value_per_alt(tmp_path: Path) -> None:
    source = _write(tmp_path / "v.vcf.gz", [*HEADER,
                                            "chr1\t10\trs1\tA\tC,G,<DEL>\t50\tPASS\tDP=7;SCORE=x;SOMATIC\tGT\t0/1",
                                            "chr2\t20\t.\tg\tt\t.\t.\t.\tGT\t1/1"])
    out = tmp_path / "out.vcf"
    with VcfReader(source) as reader, VcfWriter(out, reader.header, [SCORE], ["##source=test"]) as writer:
        records = list(reader)
        assert [r.alts for r in records] == [("C", "G", "<DEL>"), ("T",)]
        assert records[1].ref == "G" and records[0].pos == 10 and records[0].id == "rs1"
        writer.write(records[0], {"SCORE": [0.5, None, None]})
        writer.write(records[1], {"SCORE": [None]})
        with pytest.raises(ValueError, match="2 values for 3 ALT"):
            writer.write(records[0], {"SCORE": [1.0, 2.0]})
    lines = out.read_text().splitlines()
    meta = [x for x in lines if x.startswith("##")]
    assert meta[0] == "##fileformat=VCFv4.3" and meta[-1] == "##source=test"
    declared = [x for x in meta if x.startswith("##INFO=<ID=SCORE,")]
    assert declared == ['##INFO=<ID=SCORE,Number=A,Type=Float,Description="model score, \\"LLR\\"">']
    assert meta.index(declared[0]) == 2  # after the other INFO lines, where it was
    body = [x.split("\t") for x in lines if not x.startswith("#")]
    assert body[0][7] == "DP=7;SOMATIC;SCORE=0.5000,.,." and body[0][8:] == ["GT", "0/1"]
    assert body[1][7] == "." and body[1][3:5] == ["g", "t"]  # written as read
    assert lines[len(meta)] == HEADER[-1]


def test_a_file_without_header_is_read_and_written_with_the_minimal_one(tmp_path: Path) -> None:
    source = _write(tmp_path / "v.vcf", ["chr1\t5\t.\tA\tG", "", "chr1\t9\t.\tC\tT\t.\t.\tDP=3"])
    out = tmp_path / "out.vcf.gz"
    with VcfReader(source) as reader, VcfWriter(out, reader.header, [SCORE]) as writer:
        assert not reader.header.has_column_line and reader.header.meta == []
        records = list(reader)
        assert [r.line for r in records] == [1, 3] and records[0].fields[5:] == (".", ".", ".")
        for record in records:
            writer.write(record, {"SCORE": [-1.25]})
    with gzip.open(out, "rt") as handle:
        lines = handle.read().splitlines()
    assert lines[0] == "##fileformat=VCFv4.2" and lines[1].startswith("##INFO=<ID=SCORE,Number=A")
    assert lines[2] == "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO"
    assert lines[3].endswith("\tSCORE=-1.2500") and lines[4].endswith("\tDP=3;SCORE=-1.2500")


MALFORMED = [
    ("chr1\t12\tonly_three", "3 tab-separated field(s)"),
    ("chr1\tabc\t.\tA\tG\t.\t.\t.\tGT\t0/1", "POS 'abc' is not a positive integer"),
    ("chr1\t0\t.\tA\tG\t.\t.\t.\tGT\t0/1", "POS '0'"),
    ("chr1\t5\t.\tAXC\tG\t.\t.\t.\tGT\t0/1", "REF 'AXC' is not a run of A C G T N"),
    ("chr1\t5\t.\tA\tG,\t.\t.\t.\tGT\t0/1", "empty CHROM or ALT"),
    ("chr1\t5\t.\tA\tG\t.\t.\t.\tGT", "9 columns, but the #CHROM line has 10"),
    ("##INFO=<ID=X,Number=1,Type=Integer,Description=\"late\">", "a header line among the records"),
]


def test_malformed_lines_are_yielded_with_their_problem(tmp_path: Path) -> None:
    good = "chr1\t7\tok\tA\tG\t.\t.\t.\tGT\t0/1"
    source = _write(tmp_path / "v.vcf", [*HEADER, good, *(line for line, _ in MALFORMED), good])
    with VcfReader(source) as reader:
        records = list(reader)
    assert [r.problem is None for r in records] == [True, *([False] * len(MALFORMED)), True]
    for record, (_, expected) in zip(records[1:-1], MALFORMED, strict=True):
        assert expected in record.problem
    assert [r.line for r in records] == list(range(len(HEADER) + 1, len(HEADER) + len(MALFORMED) + 3))


def test_strict_reading_stops_at_the_first_malformed_line_naming_file_and_line(tmp_path: Path) -> None:
    lines = [*HEADER, "chr1\t7\tok\tA\tG\t.\t.\t.\tGT\t0/1", "chr1\tabc\t.\tA\tG\t.\t.\t.\tGT\t0/1"]
    source = _write(tmp_path / "v.vcf", lines)
    with VcfReader(source, strict=True) as reader:
        records = iter(reader)
        assert next(records).id == "ok"  # streamed: the bad line is not read yet
        with pytest.raises(VcfFormatError, match=rf"{source}: line 8: POS 'abc'"):
            next(records)


def test_a_broken_column_line_or_truncated_gzip_is_an_error(tmp_path: Path) -> None:
    bad = _write(tmp_path / "bad.vcf", ["##fileformat=VCFv4.2", "#CHROM POS ID REF ALT QUAL FILTER INFO"])
    with pytest.raises(VcfFormatError, match=rf"{bad}: line 2: header line .* expected the tab-separated"):
        VcfReader(bad)
    records = ["chr1\t7\t.\tA\tG\t.\t.\t.\tGT\t0/1"] * 2000
    whole = gzip.compress(("\n".join([*HEADER, *records]) + "\n").encode())
    cut = tmp_path / "cut.vcf.gz"
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(VcfFormatError, match=rf"{cut}: line \d+: .*truncated"):
        with VcfReader(cut) as reader:
            for _ in reader:
                pass
    with pytest.raises(FileNotFoundError, match="VCF file not found"):
        VcfReader(tmp_path / "missing.vcf")
