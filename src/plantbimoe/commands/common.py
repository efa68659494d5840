"""Helpers shared by the subcommands (not a subcommand itself)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

import numpy as np

from ..tokenizer import encode

# errors that mean bad input or a bad environment: reported in one line, exit code 2
USER_ERRORS = (FileNotFoundError, FileExistsError, ValueError, ImportError)


def guarded(name: str, body: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Run `body(args)`; a user error prints ``plantbimoe NAME: message`` and returns 2."""
    try:
        return body(args)
    except USER_ERRORS as e:
        print(f"plantbimoe {name}: error: {e}", file=sys.stderr)
        return 2


def read_id_sequences(path: str, fmt: str | None) -> tuple[list[str], list[np.ndarray]]:
    """(ids, nucleotide-id arrays) of a FASTA/CSV/TSV input (see inference.sequences)."""
    from ..inference.sequences import read_sequences

    ids, sequences = [], []
    for name, sequence in read_sequences(path, fmt):
        ids.append(name)
        sequences.append(encode(sequence))
    if not ids:
        raise ValueError(f"{path}: no sequences")
    return ids, sequences


def add_input_format(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input-format", choices=("fasta", "csv", "tsv"), default=None,
                        help="input format (default: from the file name, or '>' means FASTA)")


def note(message: str) -> None:
    """A status line on stderr (outputs written, counts)."""
    print(message, file=sys.stderr)
