"""FASTA -> webdataset shards: a first pass lists contigs, then a process pool writes the shards.

Layout of an output folder::

    index.json                  written last: parameters, splits, counts, the shard list
    train/<species>-<file>-00000.tar, val/..., test/...
    .build/                     resume state: build.json, contigs/<unit>.json, units/<unit>.json

Re-running the same build resumes: finished units are skipped, a unit cut short replays its
finished shards virtually and writes the rest, temporary files of the killed run are deleted.
A build with other parameters or another manifest in the same folder is refused.
"""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import os
import queue
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, Future, ProcessPoolExecutor, wait
from dataclasses import asdict
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from datamodules.shards import splits as holdout
from datamodules.shards.manifest import Manifest
from datamodules.shards.splits import SPLITS, HeldOutBlocks
from datamodules.shards.unit import BuildParams, Unit, build_unit
from datamodules.shards.writer import remove_stale_temporaries
from plantbimoe.atomic import atomic_write_text
from plantbimoe.fasta import fasta_index

log = logging.getLogger(__name__)
INDEX_NAME = "index.json"
FORMAT = "plantbimoe-shards/1"
CHUNK_SIZE = 1 << 24
_progress_queue: Any = None


def write_json(path: Path, data: Any) -> None:
    """Write JSON to a temporary name, then rename (never half-written)."""
    atomic_write_text(path, json.dumps(data, indent=1, sort_keys=True) + "\n")


def _list_contigs(path: str, cache: Path) -> dict[str, int]:
    stat = os.stat(path)
    key = {"path": path, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    if cache.is_file():
        cached = json.loads(cache.read_text())
        if cached.get("key") == key:
            return cached["lengths"]
    lengths = fasta_index(path)
    write_json(cache, {"key": key, "lengths": lengths})
    return lengths


def _init_worker(progress: Any) -> None:
    global _progress_queue
    _progress_queue = progress


def _run_unit(unit: Unit, params: BuildParams, out_dir: str, chunk_size: int) -> dict[str, Any]:
    report = _progress_queue.put if _progress_queue is not None else None
    return build_unit(unit, params, Path(out_dir), chunk_size, report)


class _Runner:
    """Runs jobs inline (one process) or in one process pool kept for the whole build.

    The pool forks where the platform can (no re-import of torch per worker), else spawns.
    """

    def __init__(self, processes: int) -> None:
        self.processes = processes
        self.pool: ProcessPoolExecutor | None = None
        self.progress: Any = None
        if processes > 1:
            method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
            context = mp.get_context(method)
            self.progress = context.Queue()
            self.pool = ProcessPoolExecutor(processes, mp_context=context, initializer=_init_worker,
                                            initargs=(self.progress,))

    def __enter__(self) -> _Runner:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)

    def run(self, jobs: list[tuple[Callable, tuple]], bar: tqdm, per_job: bool) -> list[Any]:
        """Results in job order; the bar advances per job, or by the bases that jobs report."""
        if self.pool is None:
            results = []
            for function, args in jobs:
                if function is _run_unit:
                    unit, params, out_dir, chunk_size = args
                    results.append(build_unit(unit, params, Path(out_dir), chunk_size, bar.update))
                else:
                    results.append(function(*args))
                if per_job:
                    bar.update(1)
            return results
        futures: list[Future] = [self.pool.submit(function, *args) for function, args in jobs]
        pending = set(futures)
        while pending:
            done, pending = wait(pending, timeout=0.2, return_when=FIRST_EXCEPTION)
            _drain(self.progress, None if per_job else bar.update)
            for future in done:
                if future.exception() is not None:
                    raise future.exception()
                if per_job:
                    bar.update(1)
        _drain(self.progress, None if per_job else bar.update)
        return [f.result() for f in futures]


def _drain(progress: Any, advance: Callable[[int], None] | None) -> None:
    while True:
        try:
            n = progress.get_nowait()
        except queue.Empty:
            return
        if advance is not None:
            advance(n)


def _check_state(out: Path, identity: dict[str, Any]) -> dict[str, Any] | None:
    """The finished index if this exact build is complete; raise if the folder holds another build."""
    for path in (out / INDEX_NAME, out / ".build" / "build.json"):
        if not path.is_file():
            continue
        found = json.loads(path.read_text())
        previous = {k: found.get(k) for k in identity}
        if previous != identity:
            changed = sorted(k for k in identity if previous.get(k) != identity[k])
            if "parameters" in changed:
                diff = {k: (previous["parameters"] or {}).get(k) for k, v in identity["parameters"].items()
                        if (previous["parameters"] or {}).get(k) != v}
                changed.append(f"(was {diff})")
            raise ValueError(f"{out} holds shards of another build (differs in {' '.join(changed)}); "
                             "delete that folder or choose another output folder")
        if path.name == INDEX_NAME:
            return found
    return None


def build_shards(manifest: Manifest, out_dir: str | os.PathLike[str], params: BuildParams | None = None,
                 processes: int | None = None, progress: bool = True,
                 chunk_size: int = CHUNK_SIZE) -> dict[str, Any]:
    """Build (or resume, or just load) the shards of `manifest` in `out_dir`; returns the index."""
    params = params or BuildParams()
    params.check()
    out = Path(out_dir)
    identity = {"format": FORMAT, "parameters": params.to_dict(), "manifest_digest": manifest.digest()}
    if (done := _check_state(out, identity)) is not None:
        return done
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / ".build" / "build.json", identity)
    if removed := remove_stale_temporaries(out):
        log.info("removed %d temporary shard files of an interrupted build", removed)
    files = [(s, i, path) for s in manifest.species for i, path in enumerate(s.fasta)]
    processes = max(1, min(processes or os.cpu_count() or 1, len(files)))
    with _Runner(processes) as runner:
        return _build(manifest, out, params, identity, files, runner, progress, chunk_size)


def _build(manifest: Manifest, out: Path, params: BuildParams, identity: dict[str, Any],
           files: list[tuple[Any, int, str]], runner: _Runner, progress: bool,
           chunk_size: int) -> dict[str, Any]:
    with tqdm(total=len(files), desc=f"{manifest.corpus}: listing contigs", unit="file",
              disable=not progress) as bar:
        jobs = [(_list_contigs, (path, out / ".build" / "contigs" / f"{s.name}-{i:02d}.json"))
                for s, i, path in files]
        listed = runner.run(jobs, bar, per_job=True)
    contigs: dict[str, dict[str, int]] = {s.name: {} for s in manifest.species}
    origin: dict[tuple[str, str], str] = {}
    for (species, _, path), lengths in zip(files, listed, strict=True):
        for contig, size in lengths.items():
            if (species.name, contig) in origin:
                raise ValueError(f"species {species.name!r}: contig {contig!r} appears in both "
                                 f"{origin[species.name, contig]} and {path}; contig names must be unique")
            origin[species.name, contig] = path
            contigs[species.name][contig] = size
    explicit = {s.name: {"val": s.val, "test": s.test} for s in manifest.species}
    fractions = (params.val_fraction, params.test_fraction)
    splits = holdout.assign_splits(contigs, explicit, *fractions, params.min_holdout_length, params.seed)
    blocks = holdout.plan_blocks(contigs, splits, *fractions, params.window_length)
    if blocks is not None:
        splits[blocks.species][blocks.contig] = holdout.BLOCKS
        log.warning("%s: too few contigs to hold out whole ones; held out by position instead: %s",
                    manifest.corpus, blocks.describe())
    units = [Unit(s.name, s.accession, i, path, lengths, splits[s.name],
                  blocks if blocks is not None and blocks.species == s.name else None)
             for (s, i, path), lengths in zip(files, listed, strict=True)]
    results: dict[str, dict[str, Any]] = {}
    todo = []
    for unit in units:
        marker = out / ".build" / "units" / f"{unit.name}.json"
        if marker.is_file():
            results[unit.name] = json.loads(marker.read_text())
        else:
            todo.append(unit)
    todo.sort(key=lambda u: -sum(u.lengths.values()))
    total = sum(sum(u.lengths.values()) for u in units)
    finished = total - sum(sum(u.lengths.values()) for u in todo)
    with tqdm(total=total, initial=finished, desc=f"{manifest.corpus}: writing shards", unit="bp",
              unit_scale=True, disable=not progress) as bar:
        jobs = [(_run_unit, (unit, params, str(out), chunk_size)) for unit in todo]
        written = runner.run(jobs, bar, per_job=False)
        for unit, result in zip(todo, written, strict=True):
            write_json(out / ".build" / "units" / f"{unit.name}.json", result)
            results[unit.name] = result
    index = _assemble_index(manifest, params, identity, contigs, splits, [results[u.name] for u in units],
                            blocks)
    write_json(out / INDEX_NAME, index)
    for split in ("val", "test"):
        if not index["splits"][split]["windows"]:
            fraction = getattr(params, f"{split}_fraction")
            log.warning(holdout.empty_split_message(split, manifest.corpus, fraction, str(out)))
    return index


def _assemble_index(manifest: Manifest, params: BuildParams, identity: dict[str, Any],
                    contigs: dict[str, dict[str, int]], splits: dict[str, dict[str, str]],
                    results: list[dict[str, Any]], blocks: HeldOutBlocks | None) -> dict[str, Any]:
    species: dict[str, Any] = {}
    for entry in manifest.species:
        species[entry.name] = {
            "accession": entry.accession, "files": list(entry.fasta), "weight": entry.weight,
            "contigs": {c: [n, splits[entry.name][c]] for c, n in contigs[entry.name].items()},
            "short_contigs": {"count": 0, "bases": 0},
            "splits": {split: None for split in SPLITS}, "held_out_blocks": None}
    if blocks is not None:
        species[blocks.species]["held_out_blocks"] = {**asdict(blocks), "description": blocks.describe(),
                                                      "crossing_windows_dropped": 0}
    by_split: dict[str, Any] = {split: {"windows": 0, "window_bases": 0, "dropped_n_windows": 0,
                                        "dropped_n_bases": 0, "shards": []} for split in SPLITS}
    for result in results:
        record = species[result["species"]]
        for key in ("count", "bases"):
            record["short_contigs"][key] += result["short_contigs"][key]
        if record["held_out_blocks"] is not None:
            record["held_out_blocks"]["crossing_windows_dropped"] += result.get("block_crossing_windows", 0)
        for split, stats in result["splits"].items():
            merged = record["splits"][split]
            record["splits"][split] = stats if merged is None else {
                k: [a + b for a, b in zip(v, stats[k], strict=True)] if isinstance(v, list) else v + stats[k]
                for k, v in merged.items()}
            for key in ("windows", "window_bases", "dropped_n_windows", "dropped_n_bases"):
                by_split[split][key] += stats[key]
        for shard in result["shards"]:
            if shard["windows"]:
                by_split[shard["split"]]["shards"].append(
                    {k: shard[k] for k in ("path", "species", "windows", "bases")})
    for split in SPLITS:
        by_split[split]["shards"].sort(key=lambda s: s["path"])
    return {**identity, "corpus": manifest.corpus, "base_counts_order": "ACGTN", "species": species,
            "splits": by_split}
