"""``plantbimoe data``: the embedded assemblies (``embedded:NAME``) with their paths, contigs and sizes."""

from __future__ import annotations

import argparse

from .common import guarded


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """No options."""


def _run(args: argparse.Namespace) -> int:
    from ..embedded import describe

    print(describe())
    return 0


def run(args: argparse.Namespace) -> int:
    return guarded("data", _run, args)
