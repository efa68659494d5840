"""benchmarks/report.py: a missed bf16 ratio states what it asks of the scan and conv."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def report():  # type: ignore[no-untyped-def]
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import report as module

        yield module
    finally:
        sys.path.remove(str(BENCHMARKS))


def _row(dtype: str, median_s: float, scan: float, conv: float) -> dict:
    return {"size": "base", "mode": "infer", "L": 4096, "dtype": dtype, "status": "ok",
            "median_s": median_s, "tokens_per_s": 4096 / median_s,
            "parts": {"scan": scan, "conv": conv, "matmuls": median_s - scan - conv}}


def test_budget_is_what_the_goal_leaves_to_scan_and_conv(report) -> None:  # type: ignore[no-untyped-def]
    rows = [_row("float32", 6.0, 0.9, 0.1), _row("bfloat16", 3.5, 0.9, 0.1)]
    text = report.scan_conv_budget(rows, 2.0)
    # 2x asks for a 3.0 s forward; the other parts take 2.5 s of bf16, leaving 0.5 s
    assert "scan + conv may take 0.50 s" in text and "they take 1.00 s, 1.00 s in float32" in text


def test_no_budget_when_met_or_unmeasured(report) -> None:  # type: ignore[no-untyped-def]
    met = [_row("float32", 6.0, 0.9, 0.1), _row("bfloat16", 2.9, 0.9, 0.1)]
    assert report.scan_conv_budget(met, 2.0) == ""
    assert report.scan_conv_budget([_row("bfloat16", 3.5, 0.9, 0.1)], 2.0) == ""


def test_bf16_target_row_carries_the_budget(report) -> None:  # type: ignore[no-untyped-def]
    rows = [_row("float32", 6.0, 0.9, 0.1), _row("bfloat16", 3.5, 0.9, 0.1)]
    goals = report.bf16_targets([{"created": "2026-01-01", "args": {"batch": 1}, "results": rows}])
    infer = next(g for g in goals if g["target"].startswith("base infer L=4096"))
    assert infer["met"] is False
    assert infer["value"].startswith("1.71x (for 2.1x, scan + conv may take 0.36 s")
