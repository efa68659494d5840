"""The ``plantbimoe`` console script."""

from __future__ import annotations

import pytest

from plantbimoe.cli import main


def test_info_base(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", "base"]) == 0
    out = capsys.readouterr().out
    assert "layers:          16" in out
    assert "d_model:         512" in out
    assert "MoE layers:      1, 3, 5, 7, 9, 11, 13, 15" in out
    assert "115,612,160 total" in out
    assert "63,707,648" in out


def test_info_config_path_and_bad_name(capsys: pytest.CaptureFixture[str]) -> None:
    from .helpers import GOLDEN_DIR

    assert main(["info", str(GOLDEN_DIR / "config.json")]) == 0
    assert "d_model:         64" in capsys.readouterr().out
    assert main(["info", "no-such-preset"]) == 2
    assert "available: base, small, tiny" in capsys.readouterr().err


def test_library_imports_neither_lightning_nor_hydra() -> None:
    import subprocess
    import sys

    code = "import sys, plantbimoe; sys.exit(any(m in sys.modules for m in ('lightning', 'hydra')))"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
