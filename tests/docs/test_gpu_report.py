"""The committed GPU-check reports are what `benchmarks/gpu_report.py` renders from their JSON, and
the README's GPU table quotes figures that are in them."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUNS = sorted(p for p in (ROOT / "benchmarks" / "results" / "gpu").glob("*") if (p / "steps.json").is_file())


@pytest.mark.parametrize("run", RUNS, ids=[p.name for p in RUNS])
def test_committed_report_is_the_rendered_one(run: Path, tmp_path: Path) -> None:
    copy = tmp_path / run.name
    shutil.copytree(run, copy)
    (copy / "README.md").unlink()
    subprocess.run(
        [sys.executable, "benchmarks/gpu_report.py", str(copy)], cwd=ROOT, check=True, capture_output=True
    )
    rendered = (copy / "README.md").read_text().replace(copy.as_posix(), run.relative_to(ROOT).as_posix())
    assert rendered == (run / "README.md").read_text()
    assert "## Targets" in rendered and "| golden logits on CUDA within 1e-3 |" in rendered


def test_readme_gpu_figures_come_from_a_report() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### On one GPU", 1)[1].split("\n## ", 1)[0]
    reports = "".join((run / "README.md").read_text() for run in RUNS)
    figures = re.findall(r"\b\d{1,3}(?:,\d{3})+\b", section.split("\n- ", 1)[0])  # the table's tokens/s
    assert len(figures) >= 8
    missing = [f for f in figures if f not in reports and f not in ("8,192", "32,768")]
    assert not missing, f"README figures not in any GPU report: {missing}"
