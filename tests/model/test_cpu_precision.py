"""CPU bf16 detection and the precision a request resolves to."""

from __future__ import annotations

import warnings

import pytest
import torch

from plantbimoe import cpu


def test_bf16_support_from_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    detect = cpu.cpu_bf16_support.__wrapped__
    monkeypatch.setattr(cpu, "cpu_flags", lambda: frozenset({"avx2", "avx512f", "avx512_bf16", "amx_bf16"}))
    assert detect() == "AMX-BF16, AVX512-BF16"
    assert cpu.cpu_isa() == "AVX512"
    monkeypatch.setattr(cpu, "cpu_flags", lambda: frozenset({"avx2", "fma"}))
    assert detect() is None and cpu.cpu_isa() == "AVX2"
    monkeypatch.setattr(cpu, "cpu_flags", lambda: frozenset())  # no /proc/cpuinfo: torch decides
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AMX")
    assert detect() == "AMX"


def test_unknown_precision_names_the_allowed_values() -> None:
    with pytest.raises(ValueError, match="fp32, bf16, fp16"):
        cpu.resolve_precision("bfloat17")


def test_bf16_without_support_warns_once_and_runs_fp32(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cpu, "cpu_bf16_support", lambda: None)
    cpu._warn_no_bf16.cache_clear()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert cpu.resolve_precision("bf16") == "fp32"
        assert cpu.resolve_precision("bf16", torch.device("cpu")) == "fp32"
    assert len(caught) == 1 and "float32" in str(caught[0].message)
    assert cpu.resolve_precision("bf16", "cuda") == "bf16"  # GPUs are not second-guessed
    assert cpu.resolve_precision("fp32") == "fp32"


def test_bf16_with_support_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cpu, "cpu_bf16_support", lambda: "AVX512-BF16")
    assert cpu.resolve_precision("bf16") == "bf16"


def test_summary_names_this_machine() -> None:
    summary = cpu.cpu_summary()
    assert "bf16:" in summary and torch.backends.cpu.get_cpu_capability() in summary


def test_usable_cores_follows_the_affinity(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cpu.os, "sched_getaffinity", lambda pid: {3}, raising=False)
    assert cpu.usable_cores() == 1
    monkeypatch.delattr(cpu.os, "sched_getaffinity")
    monkeypatch.setattr(cpu.os, "cpu_count", lambda: 6)
    assert cpu.usable_cores() == 6


@pytest.mark.parametrize(("native", "expected"), [("AVX512-BF16", "bf16"), (None, "fp32")])
def test_auto_follows_the_cpu(native: str | None, expected: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cpu, "cpu_bf16_support", lambda: native)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # auto never warns: it only picks what the CPU runs natively
        assert cpu.resolve_precision("auto") == expected


def test_cli_runtime_defaults_to_auto_and_says_what_it_chose(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import argparse

    from plantbimoe.inference import runtime

    monkeypatch.setattr(cpu, "cpu_bf16_support", lambda: "AVX512-BF16")
    parser = argparse.ArgumentParser()
    runtime.add_runtime_arguments(parser)
    rt = runtime.runtime_from_args(parser.parse_args(["--device", "cpu"]))
    assert rt.precision == "bf16"
    assert "precision auto -> bf16 (native bf16: AVX512-BF16" in capsys.readouterr().err
    args = parser.parse_args(["--device", "cpu", "--quiet", "--precision", "fp32"])
    quiet = runtime.runtime_from_args(args)
    assert quiet.precision == "fp32" and capsys.readouterr().err == ""
