"""MPGB reader benchmark: a chromatin-accessibility-style FASTA read by the old in-memory reader
and by the token store (first read; a read from the cache; a read after the file was touched, which
re-checks its checksum), and training batches streamed from the mapped store.

The file is generated like PGB's chromatin_access train files: 1,000 bp records, headers
`>chrNN:START-END_i;j;k|l1|l2|...|l19` (19 tissue labels). Each measurement runs in a fresh
child process, so its peak resident memory (`ru_maxrss`) is its own.

    python benchmarks/mpgb_reader.py                      # 1 GB file under data/bench/mpgb_reader
    python benchmarks/mpgb_reader.py --size-gb 0.05 --skip-old --out mpgb_small.json

`--old-rev` is the commit whose src/datamodules/mpgb/readers.py is the old reader (read with
`git show`, imported from a temporary file; it uses the installed datamodules.fasta).
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import GIB, machine_info, markdown_table, peak_rss_bytes, rss_bytes, run_child, write_json

ROOT = Path(__file__).resolve().parents[1]
OLD_REV = "2327ebb82fe322c5655dd40fd5f346efa9e6cbb8"  # the last version of the in-memory reader
LABELS, LENGTH = 19, 1000


def generate(path: Path, size_gb: float, seed: int = 0) -> int:
    """Write the chromatin-style FASTA (about `size_gb` GB); returns the record count."""
    import numpy as np

    rng = np.random.default_rng(seed)
    records = max(1, int(size_gb * 1e9 / (LENGTH + 80)))
    letters = np.frombuffer(b"ACGT", dtype=np.uint8)
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "wb") as out:
        for start in range(0, records, 10_000):
            n = min(10_000, records - start)
            bases = letters[rng.integers(0, 4, size=(n, LENGTH))]
            labels = rng.random((n, LABELS)) < 0.3
            lines = []
            for i in range(n):
                active = ";".join(map(str, np.flatnonzero(labels[i]).tolist()))
                where = 1000 * (start + i)
                vector = "|".join("1" if x else "0" for x in labels[i])
                name = f"chr{1 + (start + i) % 10:02d}:{where}-{where + LENGTH}_{active}"
                lines.append(f">{name}|{vector}\n".encode())
                lines.append(bases[i].tobytes() + b"\n")
            out.write(b"".join(lines))
    temporary.rename(path)
    return records


def _old_reader(rev: str) -> Any:
    source = subprocess.run(["git", "show", f"{rev}:src/datamodules/mpgb/readers.py"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout
    folder = Path(tempfile.mkdtemp(prefix="old_mpgb_reader_"))
    (folder / "old_readers.py").write_text(source)
    spec = importlib.util.spec_from_file_location("old_readers", folder / "old_readers.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules["old_readers"] = module  # its dataclass looks its module up
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    shutil.rmtree(folder)
    return module.read_dataset


def _child(kind: str, path: str, cache: str, rev: str) -> dict[str, Any]:
    import numpy as np

    from datamodules.mpgb.readers import read_dataset

    read = _old_reader(rev) if kind == "old" else read_dataset
    options = {} if kind == "old" else {"cache_dir": cache}
    baseline = rss_bytes()
    start = time.perf_counter()
    data = read(path, "fasta", "multilabel", LABELS, LENGTH, **options)
    seconds = time.perf_counter() - start
    result = {"kind": kind, "seconds": round(seconds, 3), "records": len(data),
              "records_per_s": round(len(data) / seconds), "peak_rss_gib": round(peak_rss_bytes() / GIB, 3),
              "rss_after_imports_gib": round(baseline / GIB, 3),
              "token_array_gib": round(int(data.offsets[-1]) / GIB, 3)}
    if kind == "hit":
        result |= _stream(data)
    assert int(np.asarray(data.labels).sum()) > 0
    return result


def _stream(data: Any, batches: int = 2000) -> dict[str, Any]:
    """Training batches (bucketed, shuffled, RC-augmented, collated) from the mapped store."""
    from datamodules.mpgb.bucketing import BucketBatchSampler
    from datamodules.mpgb.dataset import SequenceCollator, SequenceDataset

    dataset, collate = SequenceDataset(data), SequenceCollator()
    start = time.perf_counter()
    sampler = BucketBatchSampler(dataset.lengths(), 32, shuffle=True, seed=0, max_tokens=32768, rc_prob=0.5)
    epoch_batches = len(sampler)  # the epoch's order: shuffle, pools sorted by length, batches
    order_s = time.perf_counter() - start
    start, rows = time.perf_counter(), 0
    for batch in itertools.islice(sampler, batches):
        rows += len(collate([dataset[key] for key in batch])["labels"])
    seconds = time.perf_counter() - start
    return {"epoch_order_s": round(order_s, 2), "epoch_batches": epoch_batches,
            "stream_batches": min(batches, epoch_batches), "stream_records_per_s": round(rows / seconds),
            "stream_peak_rss_gib": round(peak_rss_bytes() / GIB, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-gb", type=float, default=1.0)
    parser.add_argument("--dir", default=str(ROOT / "data" / "bench" / "mpgb_reader"))
    parser.add_argument("--old-rev", default=OLD_REV)
    parser.add_argument("--skip-old", action="store_true", help="do not run the old reader")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "mpgb_reader.json"))
    parser.add_argument("--child", nargs=4, metavar=("KIND", "PATH", "CACHE", "REV"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(*args.child)))
        return
    folder = Path(args.dir)
    folder.mkdir(parents=True, exist_ok=True)
    fasta = folder / f"chromatin_style_{args.size_gb:g}gb_train.fa"
    if not fasta.is_file():
        start = time.perf_counter()
        generate(fasta, args.size_gb)
        print(f"generated {fasta} in {time.perf_counter() - start:.0f} s")
    cache = folder / "stores"
    shutil.rmtree(cache, ignore_errors=True)
    env = {"PYTHONPATH": str(ROOT / "src")}
    runs = {}
    for kind in (["old"] if not args.skip_old else []) + ["build", "hit", "rehash"]:
        if kind == "rehash":
            os.utime(fasta)  # same bytes, new modification time
        runs[kind] = run_child([__file__, "--child", kind, str(fasta), str(cache), args.old_rev], env, 7200)
        print(kind, runs[kind])
    store_bytes = sum(f.stat().st_size for f in cache.rglob("*") if f.is_file())
    build, hit = runs["build"], runs["hit"]
    summary = {
        "file_gb": round(fasta.stat().st_size / 1e9, 3),
        "store_gib": round(store_bytes / GIB, 3),
        "build_peak_over_store": round(build["peak_rss_gib"] * GIB / store_bytes, 2),
        "build_peak_above_imports_over_store": round(
            (build["peak_rss_gib"] - build["rss_after_imports_gib"]) * GIB / store_bytes, 3),
        "hit_time_over_build": round(hit["seconds"] / build["seconds"], 4),
        "rehash_time_over_build": round(runs["rehash"]["seconds"] / build["seconds"], 3),
    }
    if "old" in runs and runs["old"].get("status") != "failed":
        summary["old_over_new_seconds"] = round(runs["old"]["seconds"] / build["seconds"], 2)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    result = {"machine": machine_info(), "commit": commit.stdout.strip(), "file": fasta.name,
              "summary": summary, "runs": runs}
    rows = [[k, r.get("seconds"), r.get("records_per_s"), r.get("peak_rss_gib"), r.get("status", "ok")]
            for k, r in runs.items()]
    print(markdown_table(["reader", "seconds", "records/s", "peak RSS GiB", "status"], rows))
    print(summary)
    write_json(args.out, result)
    sys.exit(0 if all(r.get("status") != "failed" for r in runs.values()) else 1)


if __name__ == "__main__":
    main()
