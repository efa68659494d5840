"""Genome access for variant scoring: whole-file streaming against indexed (.fai/.gzi) reads.

1. Prepare (once, kept under --workdir): a random-ish genome of --genome-mb Mb (8 chromosomes,
   36 % GC, soft-masked stretches, an N run per chromosome, 60-bp lines), BGZF-compressed;
   --snvs SNVs scattered uniformly over it in a VCF (REF from the genome); the tiny model
   (conf preset "tiny", random weights) exported as a released-layout folder.
2. ``access``: each reader in a fresh process builds its index from nothing, then reads the
   512-bp window around every SNV: index seconds, fetch seconds, peak memory (ru_maxrss).
   Readers: ``stream`` (plantbimoe.fasta: decompress and walk the file, as VEP did), ``pysam``
   (pysam.FastaFile, htslib), ``pyfaidx`` (pyfaidx.Fasta, BGZF through Biopython; not a dependency
   of the project: ``pip install pyfaidx biopython`` to compare, else it is skipped).
3. ``vep --label L``: ``plantbimoe vep`` on the prepared data in a fresh process (wall seconds,
   peak memory), once without an index next to the FASTA and once with it; stored under L
   (run it with ``--label before`` on the old code and ``--label after`` on the new).

    python benchmarks/genome_access.py access vep --label after  # -> benchmarks/results/genome_access.json
    python benchmarks/genome_access.py access --genome-mb 20 --snvs 100 --out /tmp/ga.json   # a quick look
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import machine_info, markdown_table, write_json

ROOT = Path(__file__).resolve().parents[1]
WIDTH = 60
WINDOW = 512
CHROM_SHARES = (19, 17, 15, 13, 12, 10, 8, 6)  # percent of the genome per chromosome


def _chromosome(rng: np.random.Generator, length: int) -> np.ndarray:
    codes = np.frombuffer(b"ACGT", dtype=np.uint8)
    seq = codes[rng.choice(4, size=length, p=[0.32, 0.18, 0.18, 0.32])]
    blocks = rng.random(length // 10_000 + 1) < 0.2  # 20 % of 10-kb blocks soft-masked
    seq[np.repeat(blocks, 10_000)[:length]] += 32
    at = int(rng.integers(0, max(1, length - 50_000)))
    seq[at : at + 50_000] = ord("N")
    return seq


def _lines(seq: np.ndarray) -> bytes:
    full = len(seq) // WIDTH * WIDTH
    body = np.hstack([seq[:full].reshape(-1, WIDTH), np.full((full // WIDTH, 1), 10, np.uint8)]).tobytes()
    rest = seq[full:].tobytes()
    return body + (rest + b"\n" if rest else b"")


def prepare(workdir: Path, genome_mb: int, snvs: int, seed: int) -> dict[str, Path]:
    """Write (or reuse) the genome, the VCF and the model under `workdir`."""
    from plantbimoe import PlantBiMoEConfig, PlantBiMoEForMaskedLM, export_pretrained
    from plantbimoe.bgzf import BgzfWriter

    tag = f"g{genome_mb}_s{snvs}_r{seed}"
    paths = {"fasta": workdir / f"genome_{tag}.fa.bgz", "vcf": workdir / f"snvs_{tag}.vcf",
             "model": workdir / "tiny_model"}
    workdir.mkdir(parents=True, exist_ok=True)
    if not paths["fasta"].is_file() or not paths["vcf"].is_file():
        rng = np.random.default_rng(seed)
        total = genome_mb * 1_000_000
        lengths = [total * s // 100 for s in CHROM_SHARES]
        per_chrom = rng.multinomial(snvs, np.array(lengths) / total)
        records: list[str] = []
        tmp = paths["fasta"].with_suffix(".partial")
        with open(tmp, "wb") as raw, BgzfWriter(raw) as out:
            for c, (length, n) in enumerate(zip(lengths, per_chrom, strict=True)):
                name = f"chr{c + 1}"
                seq = _chromosome(rng, length)
                out.write(f">{name} random-ish test chromosome\n".encode() + _lines(seq))
                upper = seq & 0xDF
                candidates = np.flatnonzero(upper != ord("N"))
                for pos in np.sort(rng.choice(candidates, size=n, replace=False)):
                    ref = chr(upper[pos])
                    alt = "ACGT".replace(ref, "")[int(rng.integers(0, 3))]
                    records.append(f"{name}\t{pos + 1}\tsnv{len(records) + 1}\t{ref}\t{alt}\t.\tPASS\t.")
        tmp.replace(paths["fasta"])
        contigs = [f"##contig=<ID=chr{c + 1},length={n}>" for c, n in enumerate(lengths)]
        header = ["##fileformat=VCFv4.2", *contigs, "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO"]
        paths["vcf"].write_text("\n".join(header + records) + "\n")
    if not (paths["model"] / "config.json").is_file():
        import torch

        torch.manual_seed(seed)
        export_pretrained(PlantBiMoEForMaskedLM(PlantBiMoEConfig.preset("tiny")).eval(), paths["model"],
                          overwrite=True)
    return paths


def _sites(vcf: Path) -> list[tuple[str, int]]:
    rows = [line.split("\t") for line in vcf.read_text().splitlines() if not line.startswith("#")]
    return [(r[0], int(r[1]) - 1) for r in rows]


def _index_files(fasta: Path) -> list[Path]:
    return [Path(f"{fasta}.fai"), Path(f"{fasta}.gzi")]


def child_access(reader: str, fasta: str, vcf: str) -> dict[str, Any]:
    """In a fresh process: build the index (none is there), then read every SNV's window."""
    path, sites = Path(fasta), _sites(Path(vcf))
    module = {"stream": "plantbimoe.fasta", "plantbimoe": "plantbimoe.genome"}.get(reader, reader)
    importlib.import_module(module)  # imported before the clock starts (plantbimoe brings torch)
    start = time.perf_counter()
    if reader == "stream":
        from plantbimoe.fasta import read_fasta

        wanted: dict[str, list[int]] = {}
        for chrom, pos in sites:
            wanted.setdefault(chrom, []).append(pos)
        index_s, checksum = 0.0, 0
        for record in read_fasta(path):
            for pos in wanted.get(record.name, []):
                checksum += len(record.sequence[max(0, pos - WINDOW // 2) : pos + WINDOW // 2])
        return {"index_s": index_s, "fetch_s": time.perf_counter() - start, "bases": checksum}
    if reader == "pysam":
        import pysam

        pysam.faidx(str(path))
        index_s = time.perf_counter() - start
        handle = pysam.FastaFile(str(path))
        lengths = dict(zip(handle.references, handle.lengths, strict=True))

        def fetch(chrom: str, lo: int, hi: int) -> str:
            return handle.fetch(chrom, lo, hi)
    elif reader == "pyfaidx":
        import pyfaidx

        handle = pyfaidx.Fasta(str(path), sequence_always_upper=False)
        index_s = time.perf_counter() - start
        lengths = {name: len(handle[name]) for name in handle.keys()}

        def fetch(chrom: str, lo: int, hi: int) -> str:
            return str(handle[chrom][lo:hi])
    elif reader == "plantbimoe":
        from plantbimoe.genome import open_genome

        handle = open_genome(path)
        index_s = time.perf_counter() - start
        lengths = handle.lengths

        def fetch(chrom: str, lo: int, hi: int) -> bytes:
            return handle.fetch(chrom, lo, hi)
    else:
        raise ValueError(f"unknown reader {reader!r}")
    begin, checksum = time.perf_counter(), 0
    for chrom, pos in sites:
        checksum += len(fetch(chrom, max(0, pos - WINDOW // 2), min(lengths[chrom], pos + WINDOW // 2)))
    return {"index_s": index_s, "fetch_s": time.perf_counter() - begin, "bases": checksum}


def _run_measured(argv: list[str]) -> dict[str, Any]:
    """Run `argv` in a child process that we reap ourselves (wait4): wall seconds, its own peak RSS."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    # drain the pipes without reaping (communicate would reap the child and lose its rusage)
    chunks: dict[str, bytes] = {}

    def drain(name: str, stream) -> None:
        chunks[name] = stream.read()

    pipes = (("out", proc.stdout), ("err", proc.stderr))
    threads = [threading.Thread(target=drain, args=pipe) for pipe in pipes]
    for t in threads:
        t.start()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    for t in threads:
        t.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    out, err = chunks["out"].decode(), chunks["err"].decode()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}):\n{err[-3000:]}")
    last_err = (err.strip().splitlines() or [""])[-1].replace(f"{ROOT}/", "")  # no paths of this machine
    return {"wall_s": round(wall, 2), "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
            "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
            "stdout_last": (out.strip().splitlines() or [""])[-1], "stderr_last": last_err}


def run_access(paths: dict[str, Path], readers: list[str]) -> dict[str, Any]:
    results = {}
    for reader in readers:
        if reader in ("pysam", "pyfaidx") and importlib.util.find_spec(reader) is None:
            print(f"  {reader}: not installed, skipped (pip install {reader})", flush=True)
            continue
        for extra in _index_files(paths["fasta"]):
            extra.unlink(missing_ok=True)
        argv = [sys.executable, __file__, "--child", reader, str(paths["fasta"]), str(paths["vcf"])]
        measured = _run_measured(argv)
        results[reader] = {**json.loads(measured["stdout_last"]), "wall_s": measured["wall_s"],
                           "peak_rss_mib": measured["peak_rss_mib"]}
        print(f"  {reader}: {results[reader]}", flush=True)
    for extra in _index_files(paths["fasta"]):
        extra.unlink(missing_ok=True)
    return results


def run_vep(paths: dict[str, Path], workdir: Path) -> dict[str, Any]:
    results = {}
    for case in ("no_index", "indexed"):
        if case == "no_index":
            for extra in _index_files(paths["fasta"]):
                extra.unlink(missing_ok=True)
        out = workdir / f"scored_{case}.vcf"
        argv = [sys.executable, "-m", "plantbimoe.cli", "vep", str(paths["model"]), str(paths["vcf"]),
                str(paths["fasta"]), "-o", str(out), "--device", "cpu", "--quiet"]
        measured = _run_measured(argv)
        measured["index_files_after"] = [p.name for p in _index_files(paths["fasta"]) if p.exists()]
        results[case] = measured
        print(f"  vep {case}: {measured}", flush=True)
    return results


def _git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        print(json.dumps(child_access(*sys.argv[2:5])))
        return 0
    if len(sys.argv) > 1 and sys.argv[1] == "--prepare":
        paths = prepare(Path(sys.argv[2]), *map(int, sys.argv[3:6]))
        print(json.dumps({k: str(v) for k, v in paths.items()}))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("parts", nargs="+", choices=("access", "vep", "docs"),
                        help="docs: rewrite the block in --docs-file from the JSON (no measuring)")
    parser.add_argument("--docs-file", default=str(ROOT / "docs" / "genomes.md"))
    parser.add_argument("--label", default="after", help="name of this vep measurement (before, after)")
    parser.add_argument("--readers", nargs="+", default=["stream", "pysam", "pyfaidx", "plantbimoe"])
    parser.add_argument("--genome-mb", type=int, default=500)
    parser.add_argument("--snvs", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workdir", default=str(ROOT / "data" / "bench" / "genome_access"),
                        help="where the generated genome, VCF and model are kept (reused when present)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "genome_access.json"))
    args = parser.parse_args()
    out = Path(args.out)
    if args.parts == ["docs"]:
        update_docs(Path(args.docs_file), json.loads(out.read_text()))
        print(f"-> {args.docs_file}")
        return 0
    workdir = Path(args.workdir)
    commit, load_at_start = _git_commit(), os.getloadavg()
    start = time.perf_counter()
    # torch stays out of this process: a child's ru_maxrss starts at its parent's size at fork
    prepared = subprocess.run([sys.executable, __file__, "--prepare", str(workdir), str(args.genome_mb),
                               str(args.snvs), str(args.seed)], check=True, capture_output=True, text=True)
    paths = {k: Path(v) for k, v in json.loads(prepared.stdout.strip().splitlines()[-1]).items()}
    print(f"data ready in {time.perf_counter() - start:.0f} s: {paths['fasta'].name} "
          f"({paths['fasta'].stat().st_size / 2**20:.0f} MiB), {args.snvs} SNVs", flush=True)
    results = json.loads(out.read_text()) if out.is_file() else {}
    params = {"genome_mb": args.genome_mb, "chromosomes": len(CHROM_SHARES), "snvs": args.snvs,
              "seed": args.seed, "window": WINDOW,
              "fasta_mib": round(paths["fasta"].stat().st_size / 2**20, 1)}
    measured = {}
    if "access" in args.parts:
        measured["access"] = run_access(paths, args.readers)
    if "vep" in args.parts:
        measured["vep"] = run_vep(paths, workdir)
    machine = {**machine_info(), "loadavg_at_start": load_at_start, "loadavg_at_end": os.getloadavg()}
    context = {"machine": machine, "commit": commit, "params": params}  # machine_info imports torch: only now
    if "access" in measured:
        earlier = results.get("access", {}).get("readers", {})  # readers not re-run this time are kept
        stamp = {"commit": commit, "loadavg_at_start": load_at_start}
        stamped = {r: {**v, **stamp} for r, v in measured["access"].items()}
        results["access"] = {**context, "readers": {**earlier, **stamped}}
    if "vep" in measured:
        results.setdefault("vep", {})[args.label] = {**context, **measured["vep"]}
    write_json(out, results)
    if "access" in results:
        rows = [[r, f"{v['index_s']:.2f}", f"{v['fetch_s']:.2f}", f"{v['peak_rss_mib']:.0f}"]
                for r, v in results["access"]["readers"].items()]
        print(markdown_table(["reader", "index s", f"{args.snvs} windows s", "peak MiB"], rows))
    rows = [[label, case, f"{v['wall_s']:.1f}", f"{v['peak_rss_mib']:.0f}"]
            for label, run in results.get("vep", {}).items() for case, v in run.items() if "wall_s" in v]
    if rows:
        print(markdown_table(["code", "index", "vep wall s", "peak MiB"], rows))
    if "docs" in args.parts:
        update_docs(Path(args.docs_file), results)
    print(f"-> {out}")
    return 0


MARKERS = ("<!-- benchmark:genome_access:start -->", "<!-- benchmark:genome_access:end -->")


def docs_block(results: dict[str, Any]) -> str:
    """The measured figures as Markdown (tables from the JSON, the machine named)."""
    access, vep = results["access"], results["vep"]
    m, p = access["machine"], access["params"]
    lines = [f"Measured by `python benchmarks/genome_access.py` on {m['cpu_model']} ({m['cpu_count']} cores, "
             f"{m['memory_gib']} GiB, Python {m['python']}, torch {m['torch']}, {m['allocator']}), a machine "
             "shared with other jobs (load average in the JSON). Genome: "
             f"{p['genome_mb']} Mb in {p['chromosomes']} chromosomes, bgzip {p['fasta_mib']} MiB; "
             f"{p['snvs']} SNVs scattered over it; {p['window']}-bp windows. Each row ran in a fresh "
             "process; peak memory is its ru_maxrss.", "",
             "Reading the window of every SNV (index built from nothing first):", ""]
    names = {"stream": "streaming (plantbimoe.fasta, as before)", "pysam": "pysam.FastaFile (chosen)",
             "pyfaidx": "pyfaidx.Fasta (Biopython BGZF)", "plantbimoe": "plantbimoe.genome (pysam inside)"}
    rows = [[names.get(r, r), f"{v['index_s']:.1f}", f"{v['fetch_s']:.2f}", f"{v['peak_rss_mib']:.0f}",
             v.get("commit", access["commit"])] for r, v in access["readers"].items()]
    lines += [markdown_table(["reader", "index s", f"{p['snvs']} windows s", "peak MiB", "commit"], rows), "",
              "The streaming and plantbimoe.genome rows import plantbimoe, so torch (about 0.35 GiB) is part "
              "of their peak; the code before the change never reads an index, so its two VEP rows differ "
              "only by the load.", "",
              f"`plantbimoe vep` on the tiny model ({p['snvs']} SNVs, default window 512, CPU):", ""]
    cases = {"no_index": "no index yet", "indexed": "index present"}
    rows = [[label, cases.get(case, case), f"{v['wall_s']:.0f}", f"{v['cpu_s']:.0f}",
             f"{v['peak_rss_mib']:.0f}", run["commit"]]
            for label, run in vep.items() for case, v in run.items() if isinstance(v, dict) and "wall_s" in v]
    lines.append(markdown_table(["code", "genome index", "wall s", "CPU s", "peak MiB", "commit"], rows))
    return "\n".join(lines)


def update_docs(path: Path, results: dict[str, Any]) -> None:
    """Replace the text between the genome_access markers of `path` by `docs_block`."""
    text = path.read_text()
    start, end = text.index(MARKERS[0]) + len(MARKERS[0]), text.index(MARKERS[1])
    path.write_text(text[:start] + "\n" + docs_block(results) + "\n" + text[end:])


if __name__ == "__main__":
    sys.exit(main())
