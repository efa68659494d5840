"""Collect the benchmark JSON files into one Markdown report (and a JSON summary of the targets).

Reads every ``*.json`` in the results folder written by scan.py, moe.py, model.py and shards.py,
writes ``README.md`` (machine, targets, one section per benchmark) and ``summary.json`` there,
and prints the Markdown.

    python benchmarks/report.py                      # benchmarks/results/
    python benchmarks/report.py --results some/folder
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import io
import json
import math
from pathlib import Path
from typing import Any

import moe as moe_bench
from _common import markdown_table, write_json

import model as model_bench
import scan as scan_bench

SUMMARY = "summary.json"
MOE_TARGET, SCAN_SHARE_TARGET, INFER_32K_TARGET_GIB = 1.3, 0.25, 8.0
# issue 14 (CPU bf16): bf16 / fp32 tokens/s of base inference and training, tiny training against
# the float32 figure the issue started from, the conv's share of a mixer forward
BF16_INFER_TARGET, BF16_TRAIN_TARGET, CONV_SHARE_TARGET = 2.1, 1.9, 0.03
SCAN_CONV_SHARE_TARGET = 0.12
TINY_TRAIN_START, TINY_TRAIN_GAIN = 3418.0, 2.0


def machine_line(m: dict[str, Any] | None) -> str:
    """One line naming the machine a result came from."""
    if not m:
        return "machine: not recorded"
    alloc = m.get("allocator") or ", ".join(sorted(set(m.get("allocators", {}).values())))
    threads = f", {m['torch_threads']} torch threads" if "torch_threads" in m else ""
    load = m.get("loadavg_at_start")
    return (
        f"{m.get('cpu_model')} ({m.get('cpu_count')} cores, {m.get('memory_gib')} GiB, "
        f"{m.get('cpu_capability')}), Python {m.get('python')}, torch {m.get('torch')}{threads}, "
        f"allocator {alloc}" + (f", load average {load[0]:.1f} at start" if load else "")
    )


def targets(data: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The issue's measurable targets, with the value found in the results (None: not measured)."""
    out = []
    moe = data.get("moe")
    if moe:
        for threads in sorted({r["threads"] for r in moe["results"]}):
            worst = max(
                (r for r in moe["results"] if r["threads"] == threads and r["impl"] == "moe-segments"),
                key=lambda r: r["ratio_median"],
                default=None,
            )
            if worst:
                out.append(
                    {
                        "target": f"MoE top-1 of 4 <= {MOE_TARGET}x dense SwiGLU (threads: {threads})",
                        "value": f"{worst['ratio_median']:.2f}x "
                        f"(worst: {worst['tokens']} tokens, {worst['mode']})",
                        "met": worst["ratio_median"] <= MOE_TARGET,
                    }
                )
    rows = {(r["size"], r["mode"], r["L"]): r for r in data.get("model", {}).get("results", [])}
    share = rows.get(("base", "infer", 4096), {})
    infer = rows.get(("base", "infer", 32768), {})
    out.append(
        {
            "target": f"scan <= {SCAN_SHARE_TARGET:.0%} of a base forward pass at L=4096",
            "value": f"{share['scan_fraction']:.0%}" if "scan_fraction" in share else None,
            "met": share["scan_fraction"] <= SCAN_SHARE_TARGET if "scan_fraction" in share else None,
        }
    )
    out.append(
        {
            "target": f"base inference at L=32768 within {INFER_32K_TARGET_GIB:.0f} GiB",
            "value": f"{infer['peak_gib']:.2f} GiB peak" if infer.get("status") == "ok" else None,
            "met": infer["peak_gib"] <= INFER_32K_TARGET_GIB if infer.get("status") == "ok" else None,
        }
    )
    return out


def _goal(target: str, value: float | None, shown: str, at_least: float = -math.inf,
          at_most: float = math.inf) -> dict[str, Any]:
    """A targets-table row: met when `value` lies in [at_least, at_most]; `shown` formats it
    (``{}``); value and verdict are None when nothing was measured."""
    if value is None:
        return {"target": target, "value": None, "met": None}
    return {"target": target, "value": shown.format(value), "met": at_least <= value <= at_most}


def scan_conv_s(row: dict[str, Any]) -> float:
    """Seconds of a timed forward (a row with ``parts``) spent in the scan and conv."""
    return row["parts"].get("scan", 0.0) + row["parts"].get("conv", 0.0)


def scan_conv_budget(rows: list[dict[str, Any]], goal: float) -> str:
    """What a missed bf16 ratio asks of the parts bf16 does not speed up: the seconds the scan and
    conv may take in a bf16 forward for ``goal`` x float32 tokens/s, the rest as measured, beside
    their float32 and bf16 seconds. ``rows``: one timed forward (with ``parts``) per dtype, from
    one run; empty when they are missing or the goal is met."""
    by_dtype = {r["dtype"]: r for r in rows if "parts" in r}
    if set(by_dtype) != {"float32", "bfloat16"}:
        return ""
    fp32, bf16 = by_dtype["float32"], by_dtype["bfloat16"]
    wanted_s = fp32["median_s"] / goal
    if bf16["median_s"] <= wanted_s:
        return ""
    allowed = max(wanted_s - (bf16["median_s"] - scan_conv_s(bf16)), 0.0)
    return (f" (for {goal}x, scan + conv may take {allowed:.2f} s of a bf16 forward; "
            f"they take {scan_conv_s(bf16):.2f} s, {scan_conv_s(fp32):.2f} s in float32)")


def bf16_targets(models: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Issue 14's targets from the model.py files that ran both dtypes, each read from the newest
    file (by its ``created`` time; files without one count as oldest) that measured it, since the
    kernels change between files; ratios come from one invocation. Files older than the dtype
    column are left out."""
    models = [d for d in models if all("dtype" in r for r in d["results"])]
    newest_first = sorted(models, key=lambda d: d.get("created", ""), reverse=True)

    def newest(pick: Any) -> Any:
        """The first value `pick(file)` yields, newest file first (None when none does)."""
        return next((v for d in newest_first for v in pick(d)), None)

    def rows_of(d: dict[str, Any], key: tuple[Any, ...], ratios: bool = False) -> list[dict[str, Any]]:
        """The ok rows of file `d` (its dtype ratios with `ratios`) whose (size, mode, L[, dtype])
        is `key`."""
        rows = model_bench.dtype_ratios(d["results"]) if ratios else [
            r for r in d["results"] if r["status"] == "ok"]
        return [r for r in rows if tuple(r[k] for k in ("size", "mode", "L", "dtype")[: len(key)]) == key]

    out = []
    goals = (("infer", (4096, 32768), BF16_INFER_TARGET), ("train", (1024, 4096), BF16_TRAIN_TARGET))
    for mode, Ls, goal in goals:
        for L in Ls:
            got = newest(lambda d, key=("base", mode, L), goal=goal: [
                (r["bf16_over_fp32"], scan_conv_budget(rows_of(d, key), goal))
                for r in rows_of(d, key, ratios=True) if "bf16_over_fp32" in r])
            ratio, budget = got if got else (None, "")
            out.append(_goal(f"base {mode} L={L}: bf16 >= {goal}x float32 tokens/s", ratio,
                             "{:.2f}x" + budget, at_least=goal))
    best = newest(lambda d: [max(rows, key=lambda r: r["tokens_per_s"])]
                  if d.get("args", {}).get("batch", 1) == 1 and (rows := rows_of(d, ("tiny", "train", 1024)))
                  else [])
    tokens = best["tokens_per_s"] if best else None
    detail = f" ({best['dtype']}, {tokens / TINY_TRAIN_START:.2f}x)" if best else ""
    target = f"tiny train L=1024, batch 1: >= {TINY_TRAIN_GAIN:.0f}x {TINY_TRAIN_START:,.0f} tokens/s"
    goal = TINY_TRAIN_GAIN * TINY_TRAIN_START
    out.append(_goal(target, tokens, "{:,.0f} tokens/s" + detail, at_least=goal))
    for dtype in ("float32", "bfloat16"):
        share = newest(lambda d, key=("base", "mixer", 4096, dtype): [
            r["conv_share"] for r in rows_of(d, key, ratios=True)])
        target = f"conv1d+SiLU <= {CONV_SHARE_TARGET:.0%} of a base mixer forward at L=4096 ({dtype})"
        out.append(_goal(target, share, "{:.1%}", at_most=CONV_SHARE_TARGET))
    share = newest(lambda d: [scan_conv_s(r) / r["median_s"]
                              for r in rows_of(d, ("base", "infer", 4096, "bfloat16")) if "parts" in r])
    out.append(_goal(f"scan + conv <= {SCAN_CONV_SHARE_TARGET:.0%} of a base forward at L=4096 (bfloat16)",
                     share, "{:.1%}", at_most=SCAN_CONV_SHARE_TARGET))
    return out


def scan_section(d: dict[str, Any]) -> str:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        scan_bench.print_tables(d["results"], d.get("mamba_layer", []), argparse.Namespace(**d["args"]))
    return buf.getvalue().strip()


def shards_section(d: dict[str, Any]) -> str:
    def pick(rows: list[dict[str, Any]], keys: list[str]) -> list[list[Any]]:
        return [[r.get(k, r.get("reason", "")) for k in keys] for r in rows]

    build = ["processes", "seconds", "fasta_mb", "mb_per_s"]
    loader = ["workers", "length", "batch", "windows_per_s", "tokens_per_s"]
    step = ["model", "length", "batch", "threads", "seconds_per_step", "tokens_per_s", "loader_over_step"]
    return "\n\n".join(
        markdown_table(keys, pick(d.get(part, []), keys))
        for part, keys in (("build", build), ("loader", loader), ("step", step))
    )


SECTIONS = {
    "scan": scan_section,
    "moe": lambda d: moe_bench.render(d["results"], d.get("profile", [])),
    "model": lambda d: model_bench.render(d["results"], d.get("peak_tflops")),
    "shards": shards_section,
}


def render(kind: str, d: dict[str, Any]) -> str:
    """The file's tables; a file older than its script's current format is named, not fatal."""
    try:
        return SECTIONS[kind](d)
    except (KeyError, TypeError) as e:
        return f"(not rendered: {type(e).__name__} {e}; this file predates {kind}.py's format, re-run it)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", default="benchmarks/results", help="folder of benchmark JSON files")
    args = ap.parse_args()
    folder = Path(args.results)
    files: dict[str, tuple[str, dict[str, Any]]] = {}  # file stem -> (benchmark, contents)
    when: dict[str, str] = {}
    for path in sorted(folder.glob("*.json")):
        if path.name == SUMMARY:
            continue
        d = json.loads(path.read_text())
        kind = d.get("benchmark", path.stem)
        if kind not in SECTIONS:
            print(f"skipping {path}: not a known benchmark ({', '.join(SECTIONS)})")
            continue
        files[path.stem] = kind, d
        when[path.stem] = d.get("created") or datetime.datetime.fromtimestamp(path.stat().st_mtime).strftime(
            "%Y-%m-%d %H:%M (file time)")
    # targets come from <benchmark>.json, else from the first file of that benchmark
    by_kind: dict[str, dict[str, Any]] = {}
    for stem, (kind, d) in files.items():
        if stem == kind or kind not in by_kind:
            by_kind[kind] = d
    goals = targets(by_kind) + bf16_targets([d for kind, d in files.values() if kind == "model"])
    lines = ["# Benchmark results", "", "## Targets", ""]
    lines.append(
        markdown_table(
            ["target", "measured", "met"],
            [
                [g["target"], g["value"] or "not measured", {True: "yes", False: "no", None: "-"}[g["met"]]]
                for g in goals
            ],
        )
    )
    for stem, (kind, d) in files.items():
        lines += [
            "",
            f"## {stem}.json ({when[stem]})",
            "",
            machine_line(d.get("machine")),
            "",
            render(kind, d),
        ]
    text = "\n".join(lines) + "\n"
    (folder / "README.md").write_text(text)
    write_json(folder / SUMMARY, {"targets": goals, "files": when})
    print(text)


if __name__ == "__main__":
    main()
