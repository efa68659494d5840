"""Whole-model benchmark: PlantBiMoEForMaskedLM training and inference tokens/s and peak memory.

``train``: forward + backward + AdamW step on the masked-LM loss (15 % of positions masked, MoE
aux losses included). ``infer``: forward in eval mode under ``no_grad``; every selective-scan call
is timed as well, giving the scan's share of the forward pass. Each (size, mode, L) runs in a fresh
child process; peak memory is its ``ru_maxrss`` on CPU, torch's peak allocation on CUDA. A
configuration is skipped, with the reason recorded, when the same (size, mode) at the previous
length extrapolates (linearly in L) past the time limit of its mode or past ``--max-mem-gib``.
One thread by default: on a shared 2-core machine two OpenMP threads can wait on each other's
descheduled thread at every parallel region (the scan has thousands per call).

Model FLOPs per token of a forward pass (d model width, di = expand * d, n state size, r dt rank,
k conv width, I FFN width, E experts, V padded vocabulary), matmuls counted as 2 * in * out:
  per layer   in_proj 4*d*di and out_proj 2*di*d (once per layer with the released tied "add"
              BiMamba, else once per direction); per direction conv 2*k*di, x_proj 2*di*(r + 2n),
              dt_proj 2*r*di, scan 9*di*n; FFN 6*d*I (dense) or top_k*6*d*I + 2*d*E (MoE)
  once        LM head 2*d*V.
A training step counts 3x the forward (backward = 2x), without credit for the recomputation of
activation checkpointing. MFU = achieved model FLOP/s / peak FLOP/s; ``--peak-tflops`` overrides
the dense bf16 peak looked up from the CUDA device name. The paper's implied 53k tokens/s per A800
(6 * 64M active parameters per token, 6.5 % of 312 TFLOP/s) gives the comparison line for GPUs.

    python benchmarks/model.py                                   # CPU: tiny and base, L = 1k, 4k, 32k
    python benchmarks/model.py --sizes base --modes infer --lengths 4096 32768
    python benchmarks/model.py --device cuda --dtype bfloat16 --sizes base --lengths 32768 --batch 1
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

from _common import (
    GIB,
    find_tcmalloc,
    limit_address_space,
    machine_info,
    markdown_table,
    peak_rss_bytes,
    rss_bytes,
    run_child,
    time_repeats,
    write_json,
)

MODES = ("train", "infer")
BF16_PEAK_TFLOPS = (("H100 PCIe", 756.0), ("H100", 989.0), ("H200", 989.0), ("A800", 312.0), ("A100", 312.0))
PAPER_TOKENS_PER_S, PAPER_PEAK_TFLOPS = 53_000, 312.0
LONG_CALL_S = 60.0  # predicted calls longer than this run once, without a warm-up call


def forward_flops_per_token(config: Any) -> int:
    """Model FLOPs of one token's forward pass (see the module docstring)."""
    d, s = config.d_model, config.ssm_cfg
    di, n, r = s.expand * d, s.d_state, config.dt_rank
    directions = 2 if config.bidirectional else 1
    projections = 4 * d * di + 2 * di * d
    tied_add = config.bidirectional_weight_tie and config.bidirectional_strategy == "add"
    per_direction = 2 * s.d_conv * di + 2 * di * (r + 2 * n) + 2 * r * di + 9 * di * n
    mixer = (1 if tied_add else directions) * projections + directions * per_direction
    total = 2 * d * config.padded_vocab_size
    for i in range(config.n_layer):
        moe = config.is_moe_layer(i)
        ffn = config.num_experts_per_tok * 6 * d * config.intermediate_size + 2 * d * config.num_experts
        total += mixer + (ffn if moe else 6 * d * config.intermediate_size)
    return total


def peak_tflops(device_name: str, dtype: str, override: float | None) -> float | None:
    """``override``, else the dense bf16 tensor-core peak of a known GPU, else None."""
    if override is not None:
        return override
    if dtype != "bfloat16":
        return None
    return next((tf for key, tf in BF16_PEAK_TFLOPS if key in device_name), None)


def child(cfg: dict[str, Any]) -> dict[str, Any]:
    """Build the model, time its steps, return throughput, memory and the scan's share."""
    import torch

    import plantbimoe.mamba as mamba_module
    from plantbimoe import PlantBiMoEConfig, PlantBiMoEForMaskedLM, count_parameters
    from plantbimoe.tokenizer import MASK_ID

    torch.set_num_threads(cfg["threads"])
    torch.manual_seed(0)
    device = torch.device(cfg["device"])
    cuda = device.type == "cuda"
    config = PlantBiMoEConfig.preset(cfg["size"])
    config.gradient_checkpointing = cfg["checkpointing"]
    config.scan_backend = cfg["scan_backend"]
    model = PlantBiMoEForMaskedLM(config).to(device)
    train = cfg["mode"] == "train"
    model.train(train)
    ids = torch.randint(7, 11, (cfg["batch"], cfg["L"]), device=device)  # A, C, G, T
    masked = torch.rand(ids.shape, device=device) < 0.15
    inputs, labels = ids.masked_fill(masked, MASK_ID), ids.masked_fill(~masked, -100)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4) if train else None
    if cfg["compile"]:
        model = torch.compile(model)
    sync = torch.cuda.synchronize if cuda else lambda: None

    scan_calls: list[float] = []
    timing_scan = not train and not cfg["compile"]
    if timing_scan:
        scan = mamba_module.selective_scan

        def timed_scan(*args: Any, **kwargs: Any) -> Any:
            sync()
            start = time.perf_counter()
            out = scan(*args, **kwargs)
            sync()
            scan_calls.append(time.perf_counter() - start)
            return out

        mamba_module.selective_scan = timed_scan
    scan_per_step: list[float] = []

    def step() -> None:
        scan_calls.clear()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg["dtype"] == "bfloat16"):
            if train:
                optimizer.zero_grad(set_to_none=True)
                model(inputs, labels=labels).loss.backward()
                optimizer.step()
            else:
                with torch.no_grad():
                    model(inputs)
        sync()
        scan_per_step.append(sum(scan_calls))

    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device) if cuda else rss_bytes()
    stats = time_repeats(step, cfg["repeats"], warmup=cfg["warmup"], budget_s=cfg["budget_s"])
    peak = torch.cuda.max_memory_allocated(device) if cuda else peak_rss_bytes()
    total, active = count_parameters(model)
    tokens = cfg["batch"] * cfg["L"]
    flops = forward_flops_per_token(config) * (3 if train else 1)
    res = {
        **stats,
        "status": "ok",
        "tokens_per_s": tokens / stats["median_s"],
        "peak_gib": peak / GIB,
        "memory": "torch.cuda.max_memory_allocated" if cuda else "ru_maxrss",
        "model_gib": before / GIB,
        "params_total": total,
        "params_active": active,
        "model_flops_per_token": flops,
        "model_tflops_per_s": flops * tokens / stats["median_s"] / 1e12,
    }
    if timing_scan:
        fractions = [
            s / t for s, t in zip(scan_per_step[-len(stats["times_s"]) :], stats["times_s"], strict=True)
        ]
        res["scan_fraction"] = statistics.median(fractions)
    if cuda:
        res["device_name"] = torch.cuda.get_device_name(device)
    return res


def plan(prev: dict[str, Any] | None, L: int, args: argparse.Namespace, mode: str) -> dict[str, Any]:
    """Skip reason, or warm-up and repeats, from the same (size, mode) at a shorter length."""
    limit = args.max_step_seconds if mode == "train" else args.max_infer_seconds
    run = {"warmup": 1, "repeats": args.steps, "budget_s": 2 * limit}
    if prev is None:
        return run
    if prev["status"] != "ok":
        return {"skip": f"skipped: failed or skipped at L={prev['L']}"}
    scale = L / prev["L"]
    seconds = prev["median_s"] * scale
    mem = prev["peak_gib"] + (prev["peak_gib"] - prev["model_gib"]) * (scale - 1)
    if mem > args.max_mem_gib:
        return {"skip": f"skipped: extrapolated peak {mem:.0f} GiB from L={prev['L']}"}
    if seconds > limit:
        return {"skip": f"skipped: extrapolated {seconds / 60:.0f} min per step from L={prev['L']}"}
    return {"warmup": 0, "repeats": 1, "budget_s": None} if seconds > LONG_CALL_S else run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", nargs="+", default=["tiny", "base"], help="model presets")
    ap.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    ap.add_argument("--lengths", type=int, nargs="+", default=[1024, 4096, 32768])
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--steps", type=int, default=2, help="timed steps after one warm-up step")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu", help="cpu or cuda[:i]")
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"], help="bfloat16: autocast")
    ap.add_argument("--scan-backend", default="auto", help="auto, numba, torch, cuda or reference")
    ap.add_argument("--compile", action="store_true", help="torch.compile the model")
    ap.add_argument("--checkpointing", action="store_true", help="activation checkpointing per block")
    ap.add_argument("--peak-tflops", type=float, default=None, help="device peak for MFU")
    ap.add_argument("--max-step-seconds", type=float, default=180.0, help="skip longer training steps")
    ap.add_argument("--max-infer-seconds", type=float, default=600.0, help="skip longer forward passes")
    ap.add_argument("--max-mem-gib", type=float, default=20.0, help="skip configs predicted to need more")
    ap.add_argument("--out", default="benchmarks/results/model.json")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.child:
        cfg = json.loads(args.child)
        if cfg["device"] == "cpu":
            limit_address_space(cfg["max_mem_gib"] * 1.5 + 4)
        res = child(cfg)
        res.update(loadavg_1min=os.getloadavg()[0], machine=machine_info(cfg["threads"]))
        print(json.dumps(res))
        return

    src = str(Path(__file__).resolve().parents[1] / "src")
    env = {
        "PYTHONPATH": os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH")) if p),
        "OMP_NUM_THREADS": str(args.threads),
    }
    tcmalloc = find_tcmalloc()
    if tcmalloc and "LD_PRELOAD" not in os.environ:
        env["LD_PRELOAD"] = tcmalloc
    keys = ("batch", "threads", "device", "dtype", "compile", "checkpointing", "scan_backend")
    common = {k: getattr(args, k) for k in keys}
    results, machine = [], None
    for size in args.sizes:
        for mode in args.modes:
            prev = None
            for L in sorted(args.lengths):
                key = {"size": size, "mode": mode, "L": L}
                how = plan(prev, L, args, mode)
                if "skip" in how:
                    res = {"status": "skipped", "reason": how["skip"]}
                else:
                    cfg = {**common, **key, **how, "max_mem_gib": args.max_mem_gib}
                    timeout = 3 * (how["warmup"] + how["repeats"] + 1) * max(args.max_step_seconds, 60) + 600
                    res = run_child([__file__, "--child", json.dumps(cfg)], env, timeout=timeout)
                machine = res.pop("machine", machine)
                prev = {**key, **res}
                results.append(prev)
                print(f"{size:5s} {mode:5s} L={L:6d}: {cell(prev)}", flush=True)
    peak = peak_tflops(
        next((r["device_name"] for r in results if "device_name" in r), ""), args.dtype, args.peak_tflops
    )
    for r in results:
        if r["status"] == "ok" and peak:
            r["mfu"] = r["model_tflops_per_s"] / peak
    print("\n" + render(results, peak))
    write_json(
        args.out,
        {
            "benchmark": "model",
            "machine": machine,
            "args": {k: v for k, v in vars(args).items() if k != "child"},
            "peak_tflops": peak,
            "results": results,
        },
    )
    print(f"\nwrote {args.out}")


def cell(r: dict[str, Any]) -> str:
    if r["status"] != "ok":
        return r.get("reason", r["status"])
    runs = len(r["times_s"])
    text = f"{r['tokens_per_s']:,.0f} tok/s · {r['median_s']:.1f} s/step · peak {r['peak_gib']:.2f} GiB"
    if "scan_fraction" in r:
        text += f" · scan {r['scan_fraction']:.0%}"
    return text + ("" if runs > 1 else " (1 run)")


def render(results: list[dict[str, Any]], peak: float | None) -> str:
    """Markdown table of every configuration."""
    head = ["size", "mode", "L", "tokens/s", "s/step (best)", "peak GiB", "scan share", "model TFLOP/s"]
    head += ["MFU"] if peak else []
    rows = []
    for r in results:
        if r["status"] != "ok":
            rows.append([r["size"], r["mode"], r["L"], r.get("reason", r["status"]), *[""] * (len(head) - 4)])
            continue
        row = [
            r["size"],
            r["mode"],
            r["L"],
            f"{r['tokens_per_s']:,.0f}",
            f"{r['median_s']:.2f} ({r['min_s']:.2f})" + ("" if len(r["times_s"]) > 1 else ", 1 run"),
            f"{r['peak_gib']:.2f}",
            f"{r['scan_fraction']:.0%}" if "scan_fraction" in r else "",
            f"{r['model_tflops_per_s']:.3f}",
        ]
        rows.append(row + ([f"{r['mfu']:.1%}"] if peak else []))
    lines = [markdown_table(head, rows)]
    if peak:
        target = 3 * PAPER_TOKENS_PER_S * peak / PAPER_PEAK_TFLOPS
        lines.append(
            f"\nPeak {peak:.0f} TFLOP/s. Target, 3x the paper's 53k tok/s per A800 scaled by peak: "
            f"{target:,.0f} tok/s"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
