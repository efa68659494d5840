"""Whole-model benchmark: PlantBiMoEForMaskedLM training and inference tokens/s and peak memory,
in float32 and bfloat16 (autocast) in one invocation, with their ratio.

``train``: forward + backward + AdamW step on the masked-LM loss (15 % of positions masked, MoE
aux losses included). ``infer``: forward in eval mode under ``no_grad``, timed part by part
(``parts``: matmuls = every nn.Linear but the router, experts = the MoE's expert FFNs, conv =
conv1d+SiLU, scan, norms, moe_routing = the MoE block minus its experts, other = the rest).
``mixer``: one Mamba mixer of the preset's width, forward, part by part, beside torch's conv1d+SiLU
on the same input (``conv_torch_s``). Each (size, mode, L, dtype) runs in a fresh child process,
the dtypes back to back; peak memory is its ``ru_maxrss`` on CPU, torch's peak allocation on CUDA. A
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
    python benchmarks/model.py --sizes base --modes infer --lengths 4096 32768 --dtypes float32
    python benchmarks/model.py --device cuda --dtypes bfloat16 --sizes base --lengths 32768 --batch 1
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from _common import (
    GIB,
    PartTimer,
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

MODES = ("train", "infer", "mixer")
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


def time_parts(model: Any, timer: PartTimer) -> None:
    """Hook the parts of ``model`` named in the module docstring into ``timer``."""
    from torch import nn

    import plantbimoe.mamba as mamba_module
    from plantbimoe.backbone import RMSNorm
    from plantbimoe.moe import SparseMoE, StackedExperts

    timer.wrap(mamba_module, "selective_scan", "scan")
    timer.wrap(mamba_module, "causal_conv1d_silu", "conv")
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear) and not name.endswith("router"):
            timer.hook(module, "matmuls")
        elif isinstance(module, (RMSNorm, nn.LayerNorm)):
            timer.hook(module, "norms")
        elif isinstance(module, StackedExperts):
            timer.hook(module, "experts")
        elif isinstance(module, SparseMoE):
            timer.hook(module, "moe_block")


def child(cfg: dict[str, Any]) -> dict[str, Any]:
    """Build the model (or one mixer), time its steps, return throughput, memory and parts."""
    import torch

    from plantbimoe import PlantBiMoEConfig, PlantBiMoEForMaskedLM, count_parameters
    from plantbimoe.conv import causal_conv1d_silu
    from plantbimoe.mamba import Mamba
    from plantbimoe.tokenizer import MASK_ID

    torch.set_num_threads(cfg["threads"])
    torch.manual_seed(0)
    device = torch.device(cfg["device"])
    cuda = device.type == "cuda"
    sync = torch.cuda.synchronize if cuda else lambda: None
    config = PlantBiMoEConfig.preset(cfg["size"])
    config.gradient_checkpointing = cfg["checkpointing"]
    config.scan_backend = cfg["scan_backend"]
    mode, tokens = cfg["mode"], cfg["batch"] * cfg["L"]
    train = mode == "train"
    if mode == "mixer":
        s = config.ssm_cfg
        model = Mamba(config.d_model, s.d_state, s.d_conv, s.expand, scan_backend=config.scan_backend).to(
            device
        )
        hidden = torch.randn(cfg["batch"], cfg["L"], config.d_model, device=device)
    else:
        model = PlantBiMoEForMaskedLM(config).to(device)
        ids = torch.randint(7, 11, (cfg["batch"], cfg["L"]), device=device)  # A, C, G, T
        masked = torch.rand(ids.shape, device=device) < 0.15
        inputs, labels = ids.masked_fill(masked, MASK_ID), ids.masked_fill(~masked, -100)
    model.train(train)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4) if train else None
    timer = PartTimer(sync)
    timing_parts = not train and not cfg["compile"]
    if timing_parts:
        time_parts(model, timer)
    if cfg["compile"]:
        model = torch.compile(model)
    bf16 = cfg["dtype"] == "bfloat16"

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            if train:
                optimizer.zero_grad(set_to_none=True)
                model(inputs, labels=labels).loss.backward()
                optimizer.step()
            else:
                with torch.no_grad():
                    model(hidden) if mode == "mixer" else model(inputs)
        sync()
        timer.end_step()

    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device) if cuda else rss_bytes()
    stats = time_repeats(step, cfg["repeats"], warmup=cfg["warmup"], budget_s=cfg["budget_s"])
    peak = torch.cuda.max_memory_allocated(device) if cuda else peak_rss_bytes()
    res = {**stats, "status": "ok", "tokens_per_s": tokens / stats["median_s"], "peak_gib": peak / GIB}
    res.update(memory="torch.cuda.max_memory_allocated" if cuda else "ru_maxrss", model_gib=before / GIB)
    if timing_parts:
        parts = timer.medians(len(stats["times_s"]))
        if "moe_block" in parts:
            parts["moe_routing"] = parts.pop("moe_block") - parts.get("experts", 0.0)
        parts["other"] = stats["median_s"] - sum(parts.values())
        res["parts"] = parts
        res["scan_fraction"] = parts.get("scan", 0.0) / stats["median_s"]
    if mode == "mixer":
        weight, bias = model.conv1d.weight[:, 0], model.conv1d.bias
        with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            x = model.in_proj(hidden).chunk(2, dim=-1)[0]
            conv = time_repeats(lambda: causal_conv1d_silu(x, weight, bias, "torch"), cfg["repeats"])
        res["conv_torch_s"] = conv["median_s"]
        return res
    total, active = count_parameters(model)
    flops = forward_flops_per_token(config) * (3 if train else 1)
    res.update(params_total=total, params_active=active, model_flops_per_token=flops)
    res["model_tflops_per_s"] = flops * tokens / stats["median_s"] / 1e12
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
    ap.add_argument("--dtypes", "--dtype", nargs="+", default=["float32", "bfloat16"],
                    choices=["float32", "bfloat16"], help="each in turn; bfloat16: autocast")  # fmt: skip
    ap.add_argument("--scan-backend", default="auto", help="auto, numba, torch, cuda or reference")
    ap.add_argument("--compile", action="store_true", help="torch.compile the model")
    ap.add_argument("--checkpointing", action="store_true", help="activation checkpointing per block")
    ap.add_argument("--peak-tflops", type=float, default=None, help="device peak for MFU")
    ap.add_argument("--max-step-seconds", type=float, default=180.0, help="skip longer training steps")
    ap.add_argument("--max-infer-seconds", type=float, default=600.0, help="skip longer forward passes")
    ap.add_argument("--max-mem-gib", type=float, default=20.0, help="skip configs predicted to need more")
    ap.add_argument("--out", default="benchmarks/results/model_bf16.json")
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
    keys = ("batch", "threads", "device", "compile", "checkpointing", "scan_backend")
    common = {k: getattr(args, k) for k in keys}
    if args.device == "cpu":
        print(f"CPU: {machine_info(args.threads)['cpu_capability']}, load average {os.getloadavg()[0]:.1f}")
    results, machine, prev = [], None, {}
    for size in args.sizes:
        for mode in args.modes:
            for L in sorted(args.lengths):
                for dtype in args.dtypes:  # back to back: ratios from neighbouring runs
                    key = {"size": size, "mode": mode, "L": L, "dtype": dtype}
                    how = plan(prev.get((size, mode, dtype)), L, args, mode)
                    if "skip" in how:
                        res = {"status": "skipped", "reason": how["skip"]}
                    else:
                        cfg = {**common, **key, **how, "max_mem_gib": args.max_mem_gib}
                        timeout = (
                            3 * (how["warmup"] + how["repeats"] + 1) * max(args.max_step_seconds, 60) + 600
                        )
                        res = run_child([__file__, "--child", json.dumps(cfg)], env, timeout=timeout)
                    machine = res.pop("machine", machine)
                    prev[size, mode, dtype] = {**key, **res}
                    results.append(prev[size, mode, dtype])
                    print(f"{size:5s} {mode:5s} L={L:6d} {dtype:8s}: {cell(results[-1])}", flush=True)
                    save(args, machine, results, complete=False)  # a run cut short keeps what it measured
    peak = save(args, machine, results, complete=True)
    tables = (render(results, peak), render_ratios(dtype_ratios(results)), render_parts(results))
    print("\n" + "\n\n".join(tables))
    print(f"\nwrote {args.out}")


def save(args: argparse.Namespace, machine: dict | None, results: list[dict], complete: bool) -> float | None:
    """Add MFU to the results and write the JSON (``complete``: False while configs remain);
    returns the device's bf16 peak TFLOP/s (None when unknown)."""
    device_name = next((r["device_name"] for r in results if "device_name" in r), "")
    for r in results:
        peak = peak_tflops(device_name, r["dtype"], args.peak_tflops)
        if r["status"] == "ok" and peak and "model_tflops_per_s" in r:
            r["mfu"] = r["model_tflops_per_s"] / peak
    peak = peak_tflops(device_name, "bfloat16", args.peak_tflops)
    write_json(
        args.out,
        {
            "benchmark": "model",
            "complete": complete,
            "machine": machine,
            "loadavg_at_end": os.getloadavg(),
            "args": {k: v for k, v in vars(args).items() if k != "child"},
            "peak_tflops": peak,
            "ratios": dtype_ratios(results),
            "results": results,
        },
    )
    return peak


def cell(r: dict[str, Any]) -> str:
    if r["status"] != "ok":
        return r.get("reason", r["status"])
    runs = len(r["times_s"])
    text = f"{r['tokens_per_s']:,.0f} tok/s · {r['median_s']:.1f} s/step · peak {r['peak_gib']:.2f} GiB"
    if "scan_fraction" in r:
        text += f" · scan {r['scan_fraction']:.0%}"
    return text + ("" if runs > 1 else " (1 run)")


def dtype_ratios(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """bfloat16 / float32 tokens/s of each (size, mode, L) measured in both, from the same run;
    for ``mixer`` rows also the conv's share of the mixer forward, and torch's conv in its place."""
    ok = {(r["size"], r["mode"], r["L"], r["dtype"]): r for r in results if r["status"] == "ok"}
    out = []
    for (size, mode, L, dtype), r in ok.items():
        row: dict[str, Any] = {"size": size, "mode": mode, "L": L, "dtype": dtype}
        base = ok.get((size, mode, L, "float32"))
        if dtype == "bfloat16" and base:
            row["bf16_over_fp32"] = r["tokens_per_s"] / base["tokens_per_s"]
        if mode == "mixer":
            conv = r["parts"].get("conv", 0.0)
            row["conv_share"] = conv / r["median_s"]
            row["torch_conv_share"] = r["conv_torch_s"] / (r["median_s"] - conv + r["conv_torch_s"])
            row["conv_speedup"] = r["conv_torch_s"] / conv if conv else None
        if len(row) > 4:
            out.append(row)
    return out


def render_ratios(ratios: list[dict[str, Any]]) -> str:
    head = [
        "size",
        "mode",
        "L",
        "dtype",
        "bf16 / fp32 tokens/s",
        "conv share (torch's conv)",
        "conv speed-up",
    ]
    rows = []
    for r in ratios:
        share = f"{r['conv_share']:.1%} ({r['torch_conv_share']:.1%})" if "conv_share" in r else ""
        speedup = f"{r['conv_speedup']:.1f}x" if r.get("conv_speedup") else ""
        ratio = f"{r['bf16_over_fp32']:.2f}x" if "bf16_over_fp32" in r else ""
        rows.append([r["size"], r["mode"], r["L"], r["dtype"], ratio, share, speedup])
    return markdown_table(head, rows)


def render_parts(results: list[dict[str, Any]]) -> str:
    """Seconds (share) per part of every timed forward."""
    timed = [r for r in results if "parts" in r]
    if not timed:
        return ""
    names = sorted({k for r in timed for k in r["parts"]}, key=lambda k: (k == "other", k))
    rows = [
        [r["size"], r["mode"], r["L"], r["dtype"], f"{r['median_s']:.3f}"]
        + [
            f"{r['parts'][k]:.3f} ({r['parts'][k] / r['median_s']:.0%})" if k in r["parts"] else ""
            for k in names
        ]
        for r in timed
    ]
    return markdown_table(["size", "mode", "L", "dtype", "forward s", *names], rows)


def render(results: list[dict[str, Any]], peak: float | None) -> str:
    """Markdown table of every configuration."""
    head = [
        "size",
        "mode",
        "L",
        "dtype",
        "tokens/s",
        "s/step (best)",
        "peak GiB",
        "scan share",
        "model TFLOP/s",
    ]
    head += ["MFU"] if peak else []
    rows = []
    for r in results:
        dtype = r.get("dtype", "float32")
        if r["status"] != "ok":
            rows.append(
                [r["size"], r["mode"], r["L"], dtype, r.get("reason", r["status"]), *[""] * (len(head) - 5)]
            )
            continue
        row = [
            r["size"],
            r["mode"],
            r["L"],
            dtype,
            f"{r['tokens_per_s']:,.0f}",
            f"{r['median_s']:.2f} ({r['min_s']:.2f})" + ("" if len(r["times_s"]) > 1 else ", 1 run"),
            f"{r['peak_gib']:.2f}",
            f"{r['scan_fraction']:.0%}" if "scan_fraction" in r else "",
            f"{r['model_tflops_per_s']:.3f}" if "model_tflops_per_s" in r else "",
        ]
        rows.append(row + ([f"{r['mfu']:.1%}" if "mfu" in r else ""] if peak else []))
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
