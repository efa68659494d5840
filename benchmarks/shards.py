"""Shard pipeline benchmark: build throughput, loader throughput, and the training step it feeds.

1. Build: the four embedded Arabidopsis assemblies (conf/manifests/arabidopsis.yaml) into shards
   with 1 and 2 worker processes, each in a fresh child process; Mb of FASTA bases per second.
2. Loader: windows/s and tokens/s through the full training pipeline (shard reading, shuffle
   buffer, random crop, reverse complement, MLM masking, collation), 0 and 2 dataloader workers.
3. Training step: tokens/s that one forward + backward + AdamW step of the tiny and the base
   model consume at the same batch shape, for the loader / step ratio.

    python benchmarks/shards.py                          # writes data/bench/shards.json
    python benchmarks/shards.py --length 256 --batch 16 --steps 3
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import machine_info, markdown_table, run_child, write_json

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = ROOT / "conf" / "manifests" / "arabidopsis.yaml"


def _child_build(out: str, processes: int) -> dict[str, Any]:
    from datamodules.shards.builder import build_shards
    from datamodules.shards.manifest import load_manifest, parse_size
    from datamodules.shards.unit import BuildParams

    manifest = load_manifest(MANIFEST)
    values = dict(manifest.build)
    values["shard_size"] = parse_size(values["shard_size"])
    start = time.perf_counter()
    index = build_shards(manifest, out, BuildParams(**values), processes=processes, progress=False)
    seconds = time.perf_counter() - start
    bases = sum(n for s in index["species"].values() for n, _ in s["contigs"].values())
    return {"processes": processes, "seconds": round(seconds, 2), "fasta_mb": round(bases / 1e6, 1),
            "mb_per_s": round(bases / 1e6 / seconds, 2), "window_length": values["window_length"],
            "train_windows": index["splits"]["train"]["windows"]}


def _child_loader(shards: str, length: int, batch: int, workers: int, batches: int) -> dict[str, Any]:
    import torch

    from datamodules.shards.datamodule import ShardDataModule

    torch.set_num_threads(1)
    module = ShardDataModule(shards, window_length=length, batch_size=batch, num_workers=workers,
                             progress=False)
    module.setup()
    loader = module.train_dataloader()
    iterator = iter(loader)
    next(iterator)  # workers started, shuffle buffer primed
    start, windows, tokens = time.perf_counter(), 0, 0
    for _ in range(batches):
        out = next(iterator)
        windows += out["input_ids"].shape[0]
        tokens += int(out["attention_mask"].sum())
    seconds = time.perf_counter() - start
    return {"workers": workers, "length": length, "batch": batch,
            "windows_per_s": round(windows / seconds, 1), "tokens_per_s": round(tokens / seconds)}


def _child_step(preset: str, length: int, batch: int, steps: int, threads: int) -> dict[str, Any]:
    import torch

    from datamodules.masking import mask_tokens
    from plantbimoe import PlantBiMoEConfig, PlantBiMoEForMaskedLM

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = PlantBiMoEForMaskedLM(PlantBiMoEConfig.preset(preset))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    ids = torch.randint(7, 11, (batch, length + 2))
    mask = torch.ones_like(ids, dtype=torch.bool)
    inputs, labels = mask_tokens(ids, mask)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        model(inputs, attention_mask=mask, labels=labels).loss.backward()
        optimizer.step()

    step()  # warm-up
    start = time.perf_counter()
    for _ in range(steps):
        step()
    seconds = (time.perf_counter() - start) / steps
    return {"model": preset, "length": length, "batch": batch, "threads": threads,
            "seconds_per_step": round(seconds, 3), "tokens_per_s": round(batch * (length + 2) / seconds)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--length", type=int, default=256, help="training window (bases)")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--batches", type=int, default=200, help="loader batches timed")
    parser.add_argument("--steps", type=int, default=2, help="training steps timed per model")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the training step")
    parser.add_argument("--out", default=str(ROOT / "data" / "bench" / "shards.json"))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args()
    if args.child:
        print(json.dumps(globals()[f"_child_{args.child}"](*json.loads(rest[0]))))
        return
    script = str(Path(__file__).resolve())
    src_path = os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])
    env = {"OMP_NUM_THREADS": "1", "PYTHONPATH": src_path}
    report: dict[str, Any] = {"machine": machine_info(), "build": [], "loader": [], "step": []}
    work = Path(tempfile.mkdtemp(prefix="shards-bench-"))
    try:
        for processes in (1, 2):
            out = str(work / f"p{processes}")
            report["build"].append(run_child([script, "--child", "build", json.dumps([out, processes])], env))
        shards = str(work / "p1")
        for workers in (0, 2):
            call = json.dumps([shards, args.length, args.batch, workers, args.batches])
            report["loader"].append(run_child([script, "--child", "loader", call], env))
        for preset in ("tiny", "base"):
            call = json.dumps([preset, args.length, args.batch, args.steps, args.threads])
            report["step"].append(run_child([script, "--child", "step", call], env, timeout=3600))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    best_loader = max((r.get("tokens_per_s", 0) for r in report["loader"]), default=0)
    for row in report["step"]:
        if "tokens_per_s" in row:
            row["loader_over_step"] = round(best_loader / row["tokens_per_s"], 1)
    write_json(args.out, report)
    print(markdown_table(["processes", "seconds", "FASTA Mb", "Mb/s"],
                         [[r.get("processes"), r.get("seconds"), r.get("fasta_mb"), r.get("mb_per_s", r)]
                          for r in report["build"]]))
    print(markdown_table(["workers", "length", "batch", "windows/s", "tokens/s"],
                         [[r.get("workers"), r.get("length"), r.get("batch"), r.get("windows_per_s", r),
                           r.get("tokens_per_s")] for r in report["loader"]]))
    print(markdown_table(["model", "s/step", "tokens/s", "loader / step"],
                         [[r.get("model"), r.get("seconds_per_step", r), r.get("tokens_per_s"),
                           r.get("loader_over_step")] for r in report["step"]]))
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
