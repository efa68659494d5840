"""VCF input and output for variant scoring, streamed one record at a time.

Reading (`VcfReader`; plain, gzip or bgzip, by magic bytes): the header comes first: ``##`` meta
lines are kept as written, ``##INFO`` and ``##contig`` ones are also parsed (`VcfHeader.info`,
`VcfHeader.contigs`), and the ``#CHROM`` line must start with the eight fixed columns. A file
without a header reads as if it had the minimal one. Records are then yielded one by one and
never kept; each knows its line number and its ALT alleles. A malformed data line is yielded with
`problem` set (what is wrong with it), or raises `VcfFormatError` naming the file and the line
when the reader is `strict`; so does a broken header.
Writing (`VcfWriter`; gzip when the name ends in .gz): the input's header with one ``##INFO`` line
per field written (an input declaration of the same ID is replaced), then each record as read
with only its INFO column rebuilt. A ``Number=A`` field holds one value per ALT (``.`` for an ALT
without one) and is left out of a record where no ALT has a value.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from ..atomic import atomic_text
from ..textio import GunzipStream, GzipDataError, is_gzip

FIXED_COLUMNS = ("#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO")
_BASES = frozenset("ACGTN")
_PAIR = re.compile(r'([A-Za-z_][\w.]*)=("(?:[^"\\]|\\.)*"|[^,>]*)')


class VcfFormatError(ValueError):
    """Malformed VCF input; the message names the file and the line."""


@dataclass(frozen=True)
class InfoField:
    """One ``##INFO`` declaration."""

    id: str
    number: str
    type: str
    description: str

    def header_line(self) -> str:
        text = self.description.replace("\\", "\\\\").replace('"', '\\"')
        return f'##INFO=<ID={self.id},Number={self.number},Type={self.type},Description="{text}">'


@dataclass
class VcfHeader:
    """`meta`: the ``##`` lines as written; `columns`: those of the ``#CHROM`` line (the fixed eight
    when the file has none); `info` and `contigs` parsed from the meta lines."""

    meta: list[str] = field(default_factory=list)
    columns: list[str] = field(default_factory=lambda: list(FIXED_COLUMNS))
    info: dict[str, InfoField] = field(default_factory=dict)
    contigs: dict[str, int | None] = field(default_factory=dict)
    has_column_line: bool = False


@dataclass(frozen=True)
class VcfRecord:
    """A data line: `fields` split on tabs (QUAL, FILTER and INFO filled with ``.`` when absent).
    `alts` and `pos` are valid only when `problem` is None."""

    line: int
    fields: tuple[str, ...]
    problem: str | None = None

    @property
    def chrom(self) -> str:
        return self.fields[0]

    @property
    def pos(self) -> int:
        return int(self.fields[1])

    @property
    def id(self) -> str:
        return self.fields[2]

    @property
    def ref(self) -> str:
        return self.fields[3].upper()

    @property
    def alts(self) -> tuple[str, ...]:
        return tuple(a.upper() for a in self.fields[4].split(","))


def _pairs(body: str) -> dict[str, str]:
    """key=value pairs of a ``<...>`` structured meta line (quotes removed)."""
    values = {}
    for key, value in _PAIR.findall(body):
        if value.startswith('"') and value.endswith('"') and len(value) >= 2:
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        values[key] = value
    return values


def _parse_meta(line: str, header: VcfHeader) -> None:
    header.meta.append(line)
    for kind in ("INFO", "contig"):
        prefix = f"##{kind}=<"
        if line.startswith(prefix) and line.endswith(">"):
            values = _pairs(line[len(prefix) : -1])
            if "ID" not in values:
                return
            if kind == "INFO":
                get = values.get
                header.info[get("ID")] = InfoField(get("ID"), get("Number", "."), get("Type", "String"),
                                                   get("Description", ""))
            else:
                length = values.get("length", "")
                header.contigs[values["ID"]] = int(length) if length.isdigit() else None


def _problem(fields: list[str], header: VcfHeader) -> str | None:
    if len(fields) < 5:
        return f"{len(fields)} tab-separated field(s); expected at least CHROM POS ID REF ALT"
    if header.has_column_line and len(fields) > 8 and len(fields) != len(header.columns):
        return f"{len(fields)} columns, but the #CHROM line has {len(header.columns)}"
    chrom, pos, _, ref, alts = fields[:5]
    if not pos.isdigit() or int(pos) < 1:
        return f"POS {pos!r} is not a positive integer"
    if not ref or not set(ref.upper()) <= _BASES:
        return f"REF {ref!r} is not a run of A C G T N"
    if not chrom or not alts or "" in alts.split(","):
        return "empty CHROM or ALT field (or an empty allele in ALT)"
    return None


class VcfReader:
    """Stream a VCF: `header` is read on opening; iterating yields `VcfRecord`s in file order."""

    def __init__(self, path: str | Path, strict: bool = False) -> None:
        self.path, self.strict = Path(path), strict
        if not self.path.is_file():
            raise FileNotFoundError(f"VCF file not found: {self.path}")
        raw = GunzipStream(self.path) if is_gzip(self.path) else open(self.path, "rb")
        self._text = io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline="")
        self._number = 0
        self._first: tuple[int, str] | None = None  # the first data line, met while reading the header
        try:
            self.header = self._read_header()
        except VcfFormatError:
            self.close()
            raise

    def _lines(self) -> Iterator[str]:
        while True:
            try:
                line = self._text.readline()
            except GzipDataError as error:
                raise VcfFormatError(f"{self.path}: line {self._number + 1}: {error.reason}; "
                                     "re-download or re-compress the file") from error
            if not line:
                return
            self._number += 1
            yield line.rstrip("\r\n")

    def _read_header(self) -> VcfHeader:
        header = VcfHeader()
        for line in self._lines():
            if line.startswith("##"):
                _parse_meta(line, header)
            elif line.startswith("#"):
                columns = line.split("\t")
                if tuple(columns[:8]) != FIXED_COLUMNS:
                    raise VcfFormatError(f"{self.path}: line {self._number}: header line {line[:80]!r}; "
                                         f"expected the tab-separated columns {' '.join(FIXED_COLUMNS)} "
                                         "(then FORMAT and samples)")
                header.columns, header.has_column_line = columns, True
                return header
            elif line.strip():
                self._first = self._number, line
                return header
        return header

    def __iter__(self) -> Iterator[VcfRecord]:
        if self._first is not None:
            yield self._record(*self._first)
        for line in self._lines():
            if not line.strip():
                continue
            if line.startswith("#"):
                if line.startswith("##") or self.strict:
                    yield self._record(self._number, line, "a header line among the records")
                continue
            yield self._record(self._number, line)

    def _record(self, number: int, line: str, problem: str | None = None) -> VcfRecord:
        fields = line.split("\t")
        problem = problem or _problem(fields, self.header)
        if problem is not None:
            if self.strict:
                raise VcfFormatError(f"{self.path}: line {number}: {problem}")
            return VcfRecord(number, tuple(fields), problem)
        return VcfRecord(number, tuple(fields + ["."] * (8 - len(fields))))

    def close(self) -> None:
        self._text.close()

    def __enter__(self) -> VcfReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _info_entries(info: str) -> list[tuple[str, str | None]]:
    """(key, value) per INFO entry in order; value None for a flag."""
    entries = []
    for entry in info.split(";"):
        if entry and entry != ".":
            key, sep, value = entry.partition("=")
            entries.append((key, value if sep else None))
    return entries


def _format_value(value: float | str | None) -> str:
    if value is None:
        return "."
    return f"{value:.4f}" if isinstance(value, float) else str(value)


class VcfWriter:
    """Write records of a `VcfHeader` with `fields` set in INFO (see the module docstring); use it
    in a ``with`` block: the file appears, whole, when the block completes."""

    def __init__(self, path: str | Path, header: VcfHeader, fields: Sequence[InfoField],
                 meta: Sequence[str] = ()) -> None:
        self.fields = {f.id: f for f in fields}
        self._context = atomic_text(path)
        self._out = self._context.__enter__()
        kept = [m for m in header.meta if not any(m.startswith(f"##INFO=<ID={i},") for i in self.fields)]
        if not kept or not kept[0].startswith("##fileformat="):
            kept.insert(0, "##fileformat=VCFv4.2")
        declared = [f.header_line() for f in fields]
        last_info = max((i for i, m in enumerate(kept) if m.startswith("##INFO=")), default=len(kept) - 1)
        lines = [*kept[: last_info + 1], *declared, *kept[last_info + 1 :], *meta]
        self._out.write("\n".join([*lines, "\t".join(header.columns)]) + "\n")

    def write(self, record: VcfRecord, values: Mapping[str, Sequence[float | str | None]]) -> None:
        """Write `record` with `values` (field ID -> one value per ALT) in its INFO column."""
        fields = list(record.fields)
        entries = [(k, v) for k, v in _info_entries(fields[7]) if k not in self.fields]
        n_alts = len(record.alts)
        for key, per_alt in values.items():
            if self.fields[key].number == "A" and len(per_alt) != n_alts:
                raise ValueError(f"{key}: {len(per_alt)} values for {n_alts} ALT allele(s) (Number=A)")
            if any(v is not None for v in per_alt):
                entries.append((key, ",".join(map(_format_value, per_alt))))
        fields[7] = ";".join(k if v is None else f"{k}={v}" for k, v in entries) or "."
        self._out.write("\t".join(fields) + "\n")

    def __enter__(self) -> VcfWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self._context.__exit__(kind, error, trace)
