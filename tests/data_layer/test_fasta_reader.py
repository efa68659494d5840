"""Streaming FASTA reader: formats, chunking, indexing and every bad input's error."""

import gzip
import random

import pytest

from datamodules import fasta
from datamodules.fasta import FastaFormatError, fasta_index, read_fasta, read_fasta_chunks

TEXT = ">chr1 first contig\nACGTacgtNN\nRYAC\n>chr2\nGGGG\nCC\n\n>chr3 x\tdesc\nT\n"
EXPECTED = [("chr1", "first contig", b"ACGTacgtNNRYAC"), ("chr2", "", b"GGGGCC"), ("chr3", "x\tdesc", b"T")]


def write(path, text, compress=False):
    data = text.encode()
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def records(path):
    return [(r.name, r.description, r.sequence) for r in read_fasta(path)]


def test_plain_gz_and_crlf_read_the_same(tmp_path):
    plain = write(tmp_path / "g.fa", TEXT)
    gz = write(tmp_path / "g.fna.gz", TEXT, compress=True)
    crlf = write(tmp_path / "g.fasta", TEXT.replace("\n", "\r\n"))
    assert records(plain) == records(gz) == records(crlf) == EXPECTED


@pytest.mark.parametrize("block_size", [1, 2, 3, 5, 7, 11])
def test_block_boundaries_do_not_change_the_result(tmp_path, monkeypatch, block_size):
    path = write(tmp_path / "g.fa", TEXT.replace("\n", "\r\n"))
    monkeypatch.setattr(fasta, "BLOCK_SIZE", block_size)
    assert records(path) == EXPECTED
    assert fasta_index(path) == {"chr1": 14, "chr2": 6, "chr3": 1}


def test_chunks_reassemble_records_within_the_size_bound(tmp_path, monkeypatch):
    monkeypatch.setattr(fasta, "BLOCK_SIZE", 3)
    path = write(tmp_path / "g.fa.gz", TEXT, compress=True)
    chunks = list(read_fasta_chunks(path, chunk_size=4))
    assert all(1 <= len(c.sequence) <= 4 for c in chunks)
    for name, _, sequence in EXPECTED:
        own = [c for c in chunks if c.name == name]
        assert b"".join(c.sequence for c in own) == sequence
        assert [c.start for c in own] == list(range(0, len(sequence), 4))
        assert [c.last for c in own] == [False] * (len(own) - 1) + [True]


def test_reader_streams_records_before_reading_the_rest(tmp_path):
    path = write(tmp_path / "g.fa", ">ok\nACGT\n>bad\nAC!T\n")
    stream = read_fasta(path)
    assert next(stream).sequence == b"ACGT"
    with pytest.raises(FastaFormatError, match="'bad'"):
        next(stream)


def test_progress_callback_reaches_the_file_size(tmp_path):
    path = write(tmp_path / "g.fa.gz", TEXT, compress=True)
    seen = []
    list(read_fasta(path, on_progress=seen.append))
    assert seen[-1] == path.stat().st_size


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.fa"):
        list(read_fasta(tmp_path / "nope.fa"))
    with pytest.raises(FileNotFoundError, match="nope.fa"):
        fasta_index(tmp_path / "nope.fa")


@pytest.mark.parametrize(("text", "pattern"), [
    ("ACGT\nACGT\n", r"line 1 before any '>' header"),
    ("\n\nACGT\n>chr1\nAC\n", r"line 3 before any '>' header"),
    ("", r"no '>' header line"),
    ("\n  \n", r"no '>' header line"),
    (">\nACGT\n", r"line 1: header line '>' has no record name"),
    (">chr1\nAC\n>chr2\n>chr3\nGG\n", r"record 'chr2' \(header at line 3\): empty record"),
    (">chr1\nAC\n>chr2\n", r"record 'chr2' \(header at line 3\): empty record"),
    (">chr1\nAC\n>chr2", r"record 'chr2' \(header at line 3\): empty record"),
    (">chr1\nAC\n>chr2\nGG\n>chr1\nTT\n", r"duplicate record name 'chr1' at line 5 \(first seen at line 1\)"),
    (">chr1\nACGT\nAC*G\n", r"record 'chr1' \(header at line 1\): invalid character '\*' \(0x2a\) at line 3, "
                            r"sequence position 7"),
    (">chr1\nACGT\r\nAC>G\r\n", r"invalid character '>' .* at line 3, sequence position 7"),
])
def test_bad_input_names_file_record_and_line(tmp_path, text, pattern):
    path = write(tmp_path / "bad.fa", text)
    with pytest.raises(FastaFormatError, match=pattern) as err:
        list(read_fasta(path))
    assert str(path) in str(err.value)


def test_truncated_gzip_names_the_file_and_record(tmp_path, monkeypatch):
    sequence = "".join(random.Random(0).choices("ACGT", k=20000))
    data = gzip.compress((">chr1\n" + sequence + "\n").encode())
    path = tmp_path / "cut.fa.gz"
    path.write_bytes(data[: len(data) // 2])
    # the bases before the damage are read first: the error comes inside the record, after its header
    with pytest.raises(FastaFormatError, match=r"cut\.fa\.gz: record 'chr1'.*gzip data after line 1 "):
        list(read_fasta(path))
    monkeypatch.setattr(fasta, "BLOCK_SIZE", 256)  # the record has begun when the data ends
    with pytest.raises(FastaFormatError, match=r"cut\.fa\.gz: record 'chr1'.*truncated or corrupt gzip"):
        list(read_fasta(path))


def test_other_compression_is_refused(tmp_path):
    path = tmp_path / "g.fa.bz2"
    path.write_bytes(b"BZh91AY&SY")
    with pytest.raises(FastaFormatError, match="bzip2-compressed"):
        list(read_fasta(path))


def test_repeated_names_allowed_on_request(tmp_path):
    path = write(tmp_path / "seqs.fa", ">s|1\nAC\n>s|1\nGG\n>t|0\nT\n")
    assert [r.sequence for r in read_fasta(path, unique_names=False)] == [b"AC", b"GG", b"T"]
    with pytest.raises(FastaFormatError, match="duplicate record name 's|1'"):
        list(read_fasta(path))
