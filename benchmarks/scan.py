"""Selective-scan benchmark: tokens/s and peak memory of each scan backend on this CPU.

Every configuration (allocator x backend x mode x length) runs in a fresh child process, so its
peak RSS is its own. Configurations whose time or memory, extrapolated linearly from the previous
length, would pass ``--max-seconds`` / ``--max-mem-gib`` are skipped and reported as such. A second
part times one Mamba-1 mixer forward (and a SwiGLU FFN) piece by piece, to show the scan's share.

    python benchmarks/scan.py                      # defaults: L = 1k 4k 16k, d_inner 1024
    python benchmarks/scan.py --lengths 1024 --backends torch --repeats 2
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
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

BACKENDS = {  # benchmark name: (scan backend, its options)
    "reference": ("reference", {}),
    "torch": ("torch", {}),
    "torch-ckpt": ("torch", {"checkpoint_segment": 512}),
    "numba": ("numba", {}),
}
MODES = ("fwd", "fwdbwd")
LAYER_PARTS = ("in_proj", "conv1d+silu", "x_proj+dt_proj", "scan", "out_proj")


def scan_inputs(b: int, d: int, n: int, L: int, grad: bool, layout: str = "token") -> list:
    """Mamba-like inputs: S4D-real A, dt bias from Mamba's log-uniform [1e-3, 0.1] init.

    Activations are (b, channels, L) either way; ``channel``: contiguous in that order (mamba-ssm's
    layout), ``token``: transposed views of contiguous (b, L, channels) tensors, as PlantBiMoE's
    mixer passes them (the numba kernels read those rows in place)."""
    import torch

    g = torch.Generator().manual_seed(0)

    def act(c: int, scale: float = 1.0) -> torch.Tensor:
        if layout == "token":
            return (scale * torch.randn(b, L, c, generator=g)).requires_grad_(grad).transpose(1, 2)
        return (scale * torch.randn(b, c, L, generator=g)).requires_grad_(grad)

    dt0 = torch.exp(torch.rand(d, generator=g) * (math.log(0.1) - math.log(1e-3)) + math.log(1e-3))
    params = [
        -torch.arange(1, n + 1, dtype=torch.float32).repeat(d, 1),  # A
        torch.ones(d),  # D
        dt0 + torch.log(-torch.expm1(-dt0)),  # delta_bias = softplus^-1(dt0)
    ]
    A, D, bias = (t.requires_grad_(grad) for t in params)
    u, delta = act(d), act(d, 0.5)  # delta before bias and softplus
    B, C, z = act(n), act(n), act(d)
    return [u, delta, A, B, C, D, z, bias]


def child_scan(cfg: dict[str, Any]) -> dict[str, Any]:
    """Time one (backend, mode, L) configuration in this process."""
    import torch

    from plantbimoe.scan import selective_scan

    grad = cfg["mode"] == "fwdbwd"
    ins = scan_inputs(cfg["batch"], cfg["d_inner"], cfg["d_state"], cfg["L"], grad, cfg["layout"])
    name, options = BACKENDS[cfg["backend"]]
    kw = dict(options, backend=name)
    if cfg.get("chunk_size"):
        kw["chunk_size"] = cfg["chunk_size"]
    gy = torch.randn(cfg["batch"], cfg["d_inner"], cfg["L"])

    if name == "numba":  # compile (or load from the cache) outside the timed runs
        from plantbimoe.scan_numba import warm_up

        warm_up((torch.float32,))

    def step() -> None:
        if grad:
            torch.autograd.grad(selective_scan(*ins, **kw), ins, gy)
        else:
            with torch.no_grad():
                selective_scan(*ins, **kw)

    base = rss_bytes()
    stats = time_repeats(step, cfg["repeats"], warmup=1, budget_s=cfg["max_seconds"])
    peak = peak_rss_bytes()
    return {**stats, "status": "ok", "peak_rss_gib": peak / GIB, "scan_rss_gib": (peak - base) / GIB}


def child_layer(cfg: dict[str, Any]) -> dict[str, Any]:
    """Forward of one Mamba-1 mixer (d_model = d_inner / 2) and one SwiGLU FFN, timed per part,
    with the scan backend ``cfg["backend"]``."""
    import time

    import torch
    import torch.nn.functional as F

    from plantbimoe.scan import selective_scan

    b, L, d, n = cfg["batch"], cfg["L"], cfg["d_inner"], cfg["d_state"]
    dm, r = d // 2, math.ceil(d / 2 / 16)
    u, delta, A, _, _, D, _, dt_bias = scan_inputs(1, d, n, 1, grad=False)
    g = torch.Generator().manual_seed(1)
    w = {
        k: torch.randn(*s, generator=g) / math.sqrt(s[-1])
        for k, s in {
            "in": (2 * d, dm),
            "conv": (d, 1, 4),
            "x": (r + 2 * n, d),
            "dt": (d, r),
            "out": (dm, d),
            "gate": (cfg["ffn"], dm),
            "up": (cfg["ffn"], dm),
            "down": (dm, cfg["ffn"]),
        }.items()
    }
    hidden = torch.randn(b, L, dm, generator=g)
    times: dict[str, list[float]] = {p: [] for p in (*LAYER_PARTS, "swiglu_ffn")}
    cpu = {p: [] for p in times}

    def mark(part: str, start: tuple[float, float]) -> tuple[float, float]:
        now = (time.perf_counter(), time.process_time())
        times[part].append(now[0] - start[0])
        cpu[part].append(now[1] - start[1])
        return now

    with torch.no_grad():
        for i in range(cfg["repeats"] + 1):
            t = (time.perf_counter(), time.process_time())
            x, z = F.linear(hidden, w["in"]).chunk(2, dim=-1)
            t = mark("in_proj", t)
            x = F.silu(F.conv1d(x.transpose(1, 2), w["conv"], padding=3, groups=d)[..., :L])
            t = mark("conv1d+silu", t)
            dt, B, C = F.linear(x.transpose(1, 2), w["x"]).split([r, n, n], dim=-1)
            delta = F.linear(dt, w["dt"]).transpose(1, 2)
            t = mark("x_proj+dt_proj", t)
            y = selective_scan(
                x,
                delta,
                A,
                B.transpose(1, 2),
                C.transpose(1, 2),
                D,
                z.transpose(1, 2),
                dt_bias,
                backend=cfg["backend"],
            )
            t = mark("scan", t)
            F.linear(y.transpose(1, 2), w["out"])
            t = mark("out_proj", t)
            F.linear(F.silu(F.linear(hidden, w["gate"])) * F.linear(hidden, w["up"]), w["down"])
            mark("swiglu_ffn", t)
            if i == 0:  # warm-up
                for v in (*times.values(), *cpu.values()):
                    v.clear()
    med = {p: sorted(v)[len(v) // 2] for p, v in times.items()}
    cpu_med = {p: sorted(v)[len(v) // 2] for p, v in cpu.items()}
    return {"status": "ok", "median_s": med, "cpu_median_s": cpu_med, "times_s": times}


def predicted_skip(prev: dict[str, Any] | None, L: int, args: argparse.Namespace) -> str | None:
    """Why a configuration should be skipped, judged from the same configuration at a shorter L."""
    if prev is None:
        return None
    if prev["status"] != "ok":
        return f"skipped: failed or skipped at L={prev['L']}"
    scale = L / prev["L"]
    total = prev["median_s"] * scale * (args.repeats + 1)
    mem = prev["peak_rss_gib"] + prev["scan_rss_gib"] * (scale - 1)
    if mem > args.max_mem_gib:
        return f"skipped: extrapolated peak RSS {mem:.1f} GiB from L={prev['L']}"
    if prev["median_s"] * scale > args.max_seconds:
        return f"skipped: extrapolated {total:.0f} s from L={prev['L']}"
    return None


def cell(res: dict[str, Any], tokens: int) -> str:
    if res["status"] != "ok":
        return res["reason"]
    runs = len(res["times_s"])
    return (
        f"{tokens / res['median_s']:,.0f} tok/s (best {tokens / res['min_s']:,.0f}) · "
        f"{res['peak_rss_gib']:.2f} GiB" + ("" if runs > 1 else " (1 run)")
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lengths", type=int, nargs="+", default=[1024, 4096, 16384])
    ap.add_argument("--d-inner", type=int, default=1024)
    ap.add_argument("--d-state", type=int, default=16)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3, help="timed runs after one warm-up")
    ap.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=list(BACKENDS))
    ap.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    ap.add_argument("--chunk-size", type=int, default=None, help="torch backend chunk (default: its own)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--layout", choices=("token", "channel"), default="token",
                    help="activations as the model's mixer passes them (token) or mamba-ssm's (channel)")
    ap.add_argument(
        "--allocators",
        nargs="+",
        default=None,
        choices=["glibc", "tcmalloc"],
        help="default: glibc, plus tcmalloc (LD_PRELOAD) when installed",
    )
    ap.add_argument("--max-seconds", type=float, default=90.0, help="skip configs whose one run passes this")
    ap.add_argument("--max-mem-gib", type=float, default=12.0, help="skip configs whose peak RSS passes this")
    ap.add_argument("--layer-length", type=int, default=4096, help="Mamba layer breakdown length (0: none)")
    ap.add_argument(
        "--layer-backends", nargs="+", default=["numba", "torch"], help="scan backends of the layer breakdown"
    )
    ap.add_argument("--ffn", type=int, default=1408, help="SwiGLU hidden size for the layer breakdown")
    ap.add_argument("--out", default="benchmarks/results/scan.json")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.child:
        cfg = json.loads(args.child)
        import torch

        torch.set_num_threads(cfg["threads"])
        limit_address_space(cfg["max_mem_gib"] * 1.5 + 2)
        res = child_layer(cfg) if cfg["kind"] == "layer" else child_scan(cfg)
        res.update(loadavg_1min=os.getloadavg()[0], machine=machine_info(cfg["threads"]))
        print(json.dumps(res))
        return

    tcmalloc = find_tcmalloc()
    allocators = args.allocators or (["glibc", "tcmalloc"] if tcmalloc else ["glibc"])
    src = str(Path(__file__).resolve().parents[1] / "src")
    env_base = {
        "PYTHONPATH": os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH")) if p),
        "OMP_NUM_THREADS": str(args.threads),
    }
    common = {
        "batch": args.batch,
        "d_inner": args.d_inner,
        "d_state": args.d_state,
        "repeats": args.repeats,
        "threads": args.threads,
        "max_seconds": args.max_seconds,
        "max_mem_gib": args.max_mem_gib,
        "chunk_size": args.chunk_size,
        "layout": args.layout,
    }
    results, layers, machine = [], [], None
    for alloc in allocators:
        if alloc == "tcmalloc" and not tcmalloc:
            sys.exit("tcmalloc not found (Debian: apt-get install libtcmalloc-minimal4)")
        env = {**env_base, **({"LD_PRELOAD": tcmalloc} if alloc == "tcmalloc" else {})}
        for backend in args.backends:
            for mode in args.modes:
                prev = None
                for L in sorted(args.lengths):
                    key = {"allocator": alloc, "backend": backend, "mode": mode, "L": L, "batch": args.batch}
                    reason = predicted_skip(prev, L, args)
                    if reason:
                        res = {"status": "skipped", "reason": reason}
                    else:
                        cfg = {**common, **key, "kind": "scan"}
                        res = run_child([__file__, "--child", json.dumps(cfg)], env)
                        res.setdefault("reason", "")
                    machine = res.pop("machine", machine)
                    prev = {**key, **res}
                    results.append(prev)
                    print(
                        f"{alloc:8s} {backend:10s} {mode:6s} L={L:6d}: {cell(res, L * args.batch)}",
                        flush=True,
                    )
        for backend in args.layer_backends if args.layer_length else []:
            cfg = {**common, "kind": "layer", "L": args.layer_length, "ffn": args.ffn, "backend": backend}
            res = run_child([__file__, "--child", json.dumps(cfg)], env)
            machine = res.pop("machine", machine)
            layers.append({"allocator": alloc, "backend": backend, "L": args.layer_length, **res})

    print_tables(results, layers, args)
    if machine:
        machine["allocators"] = {
            a: (os.path.basename(tcmalloc) if a == "tcmalloc" else "glibc") for a in allocators
        }
        machine.pop("allocator", None)
    write_json(
        args.out,
        {
            "benchmark": "scan",
            "machine": machine,
            "args": {k: v for k, v in vars(args).items() if k != "child"},
            "results": results,
            "mamba_layer": layers,
        },
    )
    print(f"\nwrote {args.out}")


def print_tables(
    results: list[dict[str, Any]], layers: list[dict[str, Any]], args: argparse.Namespace
) -> None:
    lengths = sorted(args.lengths)
    rows: dict[tuple, list[str]] = {}
    for r in results:
        rows.setdefault((r["allocator"], r["backend"], r["mode"]), []).append(cell(r, r["L"] * r["batch"]))
    print(
        f"\n### Scan: d_inner {args.d_inner}, d_state {args.d_state}, batch {args.batch}, "
        f"{args.threads} threads, {getattr(args, 'layout', 'channel')}-major activations; "
        "tokens/s median (best) · peak RSS of the process\n"
    )
    print(
        markdown_table(
            ["allocator", "backend", "mode", *[f"L={L}" for L in lengths]],
            [[*k, *v] for k, v in rows.items()],
        )
    )
    for layer in layers:
        backend = layer.get("backend", "torch")  # results written before the numba backend
        if layer["status"] != "ok":
            print(f"\nMamba layer ({layer['allocator']}, {backend}): {layer['reason']}")
            continue
        med = layer["median_s"]
        mixer = sum(med[p] for p in LAYER_PARTS)
        layer_s = 2 * mixer + med["swiglu_ffn"]  # BiMamba = two mixers, then the FFN
        print(
            f"\n### One Mamba-1 mixer forward, d_model {args.d_inner // 2}, L={layer['L']}, "
            f"{layer['allocator']}, scan backend {backend}: median ms, share of the mixer, "
            "share of a layer (2 mixers + FFN)\n"
        )
        body = [
            [
                p,
                f"{med[p] * 1e3:.1f}",
                f"{layer['cpu_median_s'][p] * 1e3:.1f}" if "cpu_median_s" in layer else "",
                f"{med[p] / mixer:.0%}" if p in LAYER_PARTS else "",
                f"{med[p] * (2 if p in LAYER_PARTS else 1) / layer_s:.0%}",
            ]
            for p in (*LAYER_PARTS, "swiglu_ffn")
        ]
        print(markdown_table(["part", "ms", "CPU ms", "of mixer", "of layer"], body))


if __name__ == "__main__":
    main()
