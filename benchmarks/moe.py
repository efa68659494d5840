"""MoE layer benchmark: a top-k SparseMoE against the dense SwiGLU with the same active size.

Dense SwiGLU and MoE (each CPU dispatch: ``segments``, and ``grouped`` where ``F.grouped_mm``
exists) run on the same input in the same process and are timed in alternation, so the MoE/dense
ratio of each repeat shares the machine's load; the table gives the median of these paired
ratios and the ratio of the best times. Each thread count runs in a fresh child process. A
profile at the largest token count splits each side's time into GEMMs and the rest (routing,
sort/gather/scatter, element-wise) and names the costliest non-GEMM operators.

    python benchmarks/moe.py                            # 4k and 16k tokens, 1 and 2 threads
    python benchmarks/moe.py --tokens 4096 --threads 1 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import find_tcmalloc, machine_info, markdown_table, run_child, write_json

MODES = ("fwd", "fwdbwd")
GEMM_OPS = frozenset({"aten::mm", "aten::addmm", "aten::bmm", "aten::_grouped_mm"})


def make_step(module: Any, x: Any, mode: str, dispatch: str | None = None) -> Callable[[], None]:
    """One forward (no autograd) or forward + backward (random upstream gradient, MoE aux losses).

    ``dispatch`` (MoE only) is set on the experts before each call; None means a dense SwiGLU.
    """
    import torch

    gy = torch.randn_like(x)
    is_moe = dispatch is not None

    def step() -> None:
        if is_moe:
            module.experts.dispatch = dispatch
        if mode == "fwd":
            with torch.no_grad():
                module(x)
            return
        for p in module.parameters():
            p.grad = None
        if is_moe:
            out, r = module(x)
            torch.autograd.backward((out, r.load_balance_loss + r.z_loss), (gy, torch.ones(())))
        else:
            torch.autograd.backward(module(x), gy)

    return step


def paired_times(steps: dict[str, Callable[[], None]], repeats: int) -> dict[str, list[float]]:
    """One warm-up call each, then ``repeats`` rounds that call every step once, in turn."""
    for step in steps.values():
        step()
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)
    return times


def profile_split(step: Callable[[], None], calls: int = 2, top: int = 4) -> dict[str, Any]:
    """Self CPU seconds per call: GEMMs, everything else, and the costliest non-GEMM operators."""
    from torch.profiler import ProfilerActivity, profile

    step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(calls):
            step()
    ops = [(e.key, e.self_cpu_time_total / 1e6 / calls) for e in prof.key_averages()]
    gemm = sum(s for k, s in ops if k in GEMM_OPS)
    others = sorted(((k, s) for k, s in ops if k not in GEMM_OPS), key=lambda kv: -kv[1])
    return {
        "gemm_s": gemm,
        "other_s": sum(s for _, s in others),
        "top_other": [[k.removeprefix("aten::"), round(s, 4)] for k, s in others[:top]],
    }


def child(cfg: dict[str, Any]) -> dict[str, Any]:
    """All token counts and modes at one thread count."""
    import torch
    import torch.nn.functional as F

    from plantbimoe import SparseMoE, SwiGLU

    torch.set_num_threads(cfg["threads"])
    torch.manual_seed(0)
    d, hidden = cfg["d_model"], cfg["intermediate_size"]
    dense = SwiGLU(d, hidden)
    moe = SparseMoE(d, hidden, cfg["experts"], cfg["top_k"])
    dispatches = ["segments", "grouped"] if hasattr(F, "grouped_mm") else ["segments"]
    rows, profiles = [], []
    for n in cfg["tokens"]:
        for mode in MODES:
            x = torch.randn(1, n, d, requires_grad=mode == "fwdbwd")
            steps = {"dense": make_step(dense, x, mode)}
            for dispatch in dispatches:
                steps[f"moe-{dispatch}"] = make_step(moe, x, mode, dispatch)
            times = paired_times(steps, cfg["repeats"])
            base = times["dense"]
            for name, ts in times.items():
                rows.append(
                    {
                        "threads": cfg["threads"],
                        "tokens": n,
                        "mode": mode,
                        "impl": name,
                        "median_s": statistics.median(ts),
                        "min_s": min(ts),
                        "times_s": ts,
                        "tokens_per_s": n / statistics.median(ts),
                        "ratio_median": statistics.median(t / b for t, b in zip(ts, base, strict=True)),
                        "ratio_min": min(ts) / min(base),
                    }
                )
            if n == max(cfg["tokens"]):
                profiles.append(
                    {
                        "threads": cfg["threads"],
                        "tokens": n,
                        "mode": mode,
                        "dense": profile_split(steps["dense"]),
                        "moe": profile_split(make_step(moe, x, mode, "auto")),
                    }
                )
    with torch.no_grad():
        _, routing = moe(torch.randn(1, max(cfg["tokens"]), d))
    load = [round(v, 3) for v in routing.expert_load.tolist()]
    return {"status": "ok", "rows": rows, "profiles": profiles, "expert_load": load}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokens", type=int, nargs="+", default=[4096, 16384], help="tokens per call")
    ap.add_argument("--d-model", type=int, default=512)
    ap.add_argument("--intermediate-size", type=int, default=1408)
    ap.add_argument("--experts", type=int, default=4)
    ap.add_argument("--top-k", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=5, help="timed rounds after one warm-up")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--out", default="benchmarks/results/moe.json")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.child:
        cfg = json.loads(args.child)
        res = child(cfg)
        res.update(loadavg_1min=os.getloadavg()[0], machine=machine_info(cfg["threads"]))
        print(json.dumps(res))
        return

    src = str(Path(__file__).resolve().parents[1] / "src")
    tcmalloc = find_tcmalloc()
    env = {"PYTHONPATH": os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH")) if p)}
    if tcmalloc and "LD_PRELOAD" not in os.environ:
        env["LD_PRELOAD"] = tcmalloc
    settings = {k: v for k, v in vars(args).items() if k not in ("child", "out", "threads")}
    rows, profiles, runs, machine = [], [], [], None
    for threads in args.threads:
        cfg = {**settings, "threads": threads}
        res = run_child([__file__, "--child", json.dumps(cfg)], {**env, "OMP_NUM_THREADS": str(threads)})
        if res["status"] != "ok":
            print(f"{threads} threads: {res['reason']}")
            runs.append({"threads": threads, **res})
            continue
        machine = res["machine"]
        rows += res["rows"]
        profiles += res["profiles"]
        runs.append(
            {"threads": threads, "loadavg_1min": res["loadavg_1min"], "expert_load": res["expert_load"]}
        )
    if machine:
        machine.pop("torch_threads", None)
    print(render(rows, profiles))
    write_json(
        args.out,
        {
            "benchmark": "moe",
            "machine": machine,
            "args": {k: v for k, v in vars(args).items() if k != "child"},
            "runs": runs,
            "results": rows,
            "profile": profiles,
        },
    )
    print(f"\nwrote {args.out}")


def render(rows: list[dict[str, Any]], profiles: list[dict[str, Any]]) -> str:
    """Markdown: throughput and MoE/dense ratios, then the GEMM / non-GEMM split."""
    impls = list(dict.fromkeys(r["impl"] for r in rows))
    moes = [i for i in impls if i != "dense"]
    table: dict[tuple, dict[str, dict[str, Any]]] = {}
    for r in rows:
        table.setdefault((r["threads"], r["tokens"], r["mode"]), {})[r["impl"]] = r
    head = ["threads", "tokens", "mode", "dense tok/s"]
    head += [h for m in moes for h in (f"{m} tok/s", f"{m} / dense: median (best)")]
    body = []
    for key, by in table.items():
        cells = [f"{by['dense']['tokens_per_s']:,.0f}"]
        for m in moes:
            r = by[m]
            cells += [f"{r['tokens_per_s']:,.0f}", f"{r['ratio_median']:.2f} ({r['ratio_min']:.2f})"]
        body.append([*key, *cells])
    out = ["### MoE layer vs dense SwiGLU\n", markdown_table(head, body)]
    if profiles:
        prof_rows = []
        for p in profiles:
            for side in ("dense", "moe"):
                s = p[side]
                top = ", ".join(f"{k} {v * 1e3:.0f}" for k, v in s["top_other"])
                prof_rows.append(
                    [
                        p["threads"],
                        p["tokens"],
                        p["mode"],
                        side,
                        f"{s['gemm_s']:.3f}",
                        f"{s['other_s']:.3f}",
                        top,
                    ]
                )
        head = ["threads", "tokens", "mode", "", "GEMM s", "other s", "top non-GEMM ops (ms)"]
        out += ["\n### Profile (self CPU time per call)\n", markdown_table(head, prof_rows)]
    return "\n".join(out)


if __name__ == "__main__":
    main()
