"""Render the JSON of one `benchmarks/gpu_check.sh` run as Markdown (and the issue's targets).

    python benchmarks/gpu_report.py benchmarks/results/gpu/2026-12-04      # prints, writes README.md there

Reads steps.json, tests.json, golden.json, scan.json, model.json and fsdp2.json where present;
a step that failed or was cut short shows as such, never as a number.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from _common import markdown_table

import model as model_bench

PAPER_MFU = 0.065  # the paper's implied rate: ~53k tokens/s per A800
SCAN_SPEEDUP_TARGET = 5.0


def load(folder: Path, name: str) -> dict[str, Any] | None:
    path = folder / name
    return json.loads(path.read_text()) if path.is_file() else None


def steps_section(steps: dict[str, Any]) -> list[str]:
    env = steps.get("environment") or {}
    lines = [
        f"{env.get('device', '?')}, torch {env.get('torch', '?')} (CUDA {env.get('cuda', '?')}), "
        f"Triton {env.get('triton', '?')}, Python {env.get('python', '?')}; mamba-ssm "
        f"{'present' if env.get('mamba_ssm') else 'absent'}; `scan_backend=auto` on bf16 CUDA tensors "
        f"resolves to `{env.get('auto_backend_bf16', '?')}`; commit {str(env.get('commit'))[:10]}.",
        "",
        markdown_table(
            ["step", "status", "seconds"], [[s["step"], s["status"], s["seconds"]] for s in steps["steps"]]
        ),
    ]
    return lines


def tests_section(tests: dict[str, Any]) -> list[str]:
    rows = [
        [name, r.get("passed", ""), r.get("failed", ""), r.get("skipped", "")] for name, r in tests.items()
    ]
    lines = [markdown_table(["tests", "passed", "failed", "skipped"], rows)]
    failures = {f["message"] for r in tests.values() for f in r.get("failures", [])}
    lines += [f"- failure: `{m}`" for m in sorted(failures)]
    return lines


def golden_section(golden: dict[str, Any]) -> list[str]:
    rows = [
        [b, r["resolved"], f"{r['max_abs_err']:.2e}", "yes" if r["ok"] else "no"]
        for b, r in golden["results"].items()
    ]
    return [
        markdown_table(
            ["backend", "resolved to", f"max abs error (tolerance {golden['tolerance']:g})", "ok"], rows
        )
    ]


def scan_section(scan: dict[str, Any]) -> list[str]:
    shape = scan["shape"]
    rows = []
    for name, r in scan["results"].items():
        if "error" in r:
            rows.append([name, r["error"][:80], "", ""])
        else:
            rows.append(
                [name, f"{r['fwd_ms']:.2f}", f"{r['fwdbwd_ms']:.2f}", f"{r['fwdbwd_tokens_per_s']:,.0f}"]
            )
    speedup = scan.get("best_triton_fwdbwd_speedup_vs_torch")
    return [
        f"Selective scan alone: batch {shape['batch']}, d_inner {shape['d_inner']}, "
        f"d_state {shape['d_state']}, L {shape['L']}, "
        f"{shape['activations'].removeprefix('torch.')} activations.",
        "",
        markdown_table(["backend / launch", "forward ms", "fwd+bwd ms", "fwd+bwd tokens/s"], rows),
        "",
        f"Best triton setting, forward+backward: {speedup:.0f}x the torch backend." if speedup else "",
    ]


def model_section(model: dict[str, Any]) -> list[str]:
    lines = []
    for backend, run in model["runs"].items():
        cut = (
            ""
            if run.get("complete", True)
            else " (cut short by its time limit: the configurations it finished)"
        )
        lines += [f"`benchmarks/model.py --scan-backend {backend}`{cut}:", ""]
        lines += [model_bench.render(run["results"], run.get("peak_tflops")), ""]
    return lines


def targets(folder: Path) -> list[list[str]]:
    """(target, measured, met) rows of issue 15's targets."""
    rows = []
    tests, golden = load(folder, "tests.json"), load(folder, "golden.json")
    if tests and "triton" in tests:
        t = tests["triton"]
        rows.append(
            [
                "triton vs reference loop (fp64 / fp32 on CUDA, every gradient)",
                f"{t['passed']} passed, {t['failed']} failed",
                "yes" if t["failed"] == 0 else "no",
            ]
        )
    if golden:
        worst = max(r["max_abs_err"] for r in golden["results"].values())
        rows.append(
            [
                "golden logits on CUDA within 1e-3",
                f"max abs error {worst:.1e}",
                "yes" if golden["ok"] else "no",
            ]
        )
    model = load(folder, "model.json")
    if model:
        ok = {
            b: {
                (r["size"], r["mode"], r["L"]): {**r, "batch": run.get("args", {}).get("batch", 1)}
                for r in run["results"]
                if r["status"] == "ok"
            }
            for b, run in model["runs"].items()
        }
        bases = [
            ok[b][("base", "train", 8192)]
            for b in ok
            if b.startswith("triton") and ("base", "train", 8192) in ok[b]
        ]
        base = max(bases, key=lambda r: r.get("mfu") or 0, default=None)
        if base and "mfu" in base:
            rows.append(
                [
                    f"base bf16 training, L=8,192: MFU >= 3x the paper's {PAPER_MFU:.1%}",
                    f"{base['tokens_per_s']:,.0f} tokens/s at batch {base['batch']}, MFU {base['mfu']:.1%}",
                    "yes" if base["mfu"] >= 3 * PAPER_MFU else "no",
                ]
            )
        shared = sorted(set(ok.get("triton", {})) & set(ok.get("torch", {})))
        for key in shared:
            ratio = ok["triton"][key]["tokens_per_s"] / ok["torch"][key]["tokens_per_s"]
            rows.append(
                [
                    f"triton >= {SCAN_SPEEDUP_TARGET:g}x torch backend, {key[0]} {key[1]} L={key[2]:,}",
                    f"{ratio:.0f}x",
                    "yes" if ratio >= SCAN_SPEEDUP_TARGET else "no",
                ]
            )
    fsdp2 = load(folder, "fsdp2.json")
    if fsdp2:
        measured = (
            f"loss {fsdp2['train_loss_first5']:.3f} -> {fsdp2['train_loss_last5']:.3f}, reload error "
            f"{fsdp2['reload_max_abs_err']:.1e}"
            if "reload_max_abs_err" in fsdp2
            else fsdp2.get("error", "?")
        )
        rows.append(
            [
                "fsdp2 on 1 GPU: loss decreases, checkpoint exported and reloaded",
                measured,
                "yes" if fsdp2.get("ok") else "no",
            ]
        )
    return rows


def report(folder: Path) -> str:
    lines = [
        f"# GPU check: {folder.name}",
        "",
        "Rendered by `python benchmarks/gpu_report.py "
        f"{folder.as_posix()}` from the JSON beside this file (`benchmarks/gpu_check.sh`).",
        "",
    ]
    steps = load(folder, "steps.json")
    if steps:
        lines += ["## Run", "", *steps_section(steps), ""]
    lines += ["## Targets", "", markdown_table(["target", "measured", "met"], targets(folder)), ""]
    sections = [
        ("tests.json", "Tests", tests_section),
        ("golden.json", "Golden logits", golden_section),
        ("scan.json", "Scan kernels", scan_section),
        ("model.json", "Model", model_section),
    ]
    for name, title, render in sections:
        data = load(folder, name)
        if data:
            lines += [f"## {title}", "", *render(data), ""]
    return "\n".join(lines).rstrip() + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", type=Path, help="a folder of gpu_check.sh JSON")
    args = ap.parse_args()
    text = report(args.folder)
    (args.folder / "README.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
