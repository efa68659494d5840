"""The fine-tuning benchmark on the embedded TAIR10 tasks: our recipe beside honest floors, with seeds.

Runs every (task, model, seed) as its own process (``train.py``, ``baselines.kmer`` or
``tasks.linear_probe``) in ``<out>/runs/<task>/<model>/seed<S>/``, skips runs whose
``results.json`` exists and whose recorded recipe digest (``tasks.recipe``: the composed config
and the init weights) is today's (the command is resumable: stop it and start it again; a
changed recipe reruns what it changes), then writes the report (``tasks.benchmark_report``):

    python -m tasks.benchmark                        # full tier: 5 tasks x 4 models x 3 seeds
    python -m tasks.benchmark --tier quick           # 1 seed, capped data (minutes)
    python -m tasks.benchmark --study pooling        # PlantBiMoE with each pooling head
    python -m tasks.benchmark --study pretraining    # pretrained vs random init, low data, probes
    python -m tasks.benchmark --jobs 2 --docs docs/results.md
    python -m tasks.benchmark --set trainer.max_steps=3 --tasks splice_donor --seeds 1   # smoke test
"""

from __future__ import annotations

import argparse
import fcntl
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import yaml

from plantbimoe.atomic import atomic_write_text
from plantbimoe.cpu import usable_cores
from tasks.benchmark_report import write_report
from tasks.recipe import recipe_digest
from tasks.sequence import RESULTS_FILE

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[2]
TASKS = ("splice_donor", "splice_acceptor", "polyadenylation", "core_promoter", "lncrna")
TIMING_FILE = "timing.json"
KMER_WIDTHS = "[20,40,80,200,400]"


@dataclass(frozen=True)
class Model:
    """How one model of the table runs: ``train.py``, the k-mer baseline or the linear probe, with
    its overrides; `seeds` replaces the tier's, and `shared_with` names the study whose run folder
    holds the same run (same name, command and seed), so that it runs once for both tables."""

    runner: str  # "train" | "kmer" | "probe"
    overrides: tuple[str, ...] = ()
    seeds: tuple[int, ...] | None = None
    shared_with: str | None = None


# Lightning runs of the tables train in float32 whatever the CPU: a row then means the same on a
# machine with native bf16 (where trainer.precision=auto would pick bf16-mixed) and without.
TRAIN_PRECISION = "trainer.precision=32-true"
ENTRY_POINTS = {
    "train": ("train.py",),
    "kmer": ("-m", "baselines.kmer"),
    "probe": ("-m", "tasks.linear_probe"),
}


MODELS = {
    "plantbimoe": Model("train", ("task.run_label=plantbimoe",)),
    "cnn": Model("train", ("backbone=cnn", "task.run_label=cnn")),
    "kmer": Model("kmer", ()),
    "kmer+positional": Model("kmer", (f"+kmer.positional_width={KMER_WIDTHS}",)),
}
POOLING_STUDY = {
    f"plantbimoe-{name}": Model(
        "train", (*extra, f"task.pooling={name}", f"task.run_label=plantbimoe-{name}")
    )
    for name, extra in {
        "mean": (),
        "center": (),
        "center_window": ("task.pooling_window=32",),
        "attention": (),
    }.items()
}
# the shipped pretrained model (python -m tasks.model_card); --init-from replaces it
PRETRAINED = "arabidopsis-tiny"
LOW_DATA_SIZES = (250, 1000)


def pretraining_study(init_from: str = PRETRAINED) -> dict[str, Model]:
    """Pretrained vs random init at equal fine-tuning budget: linear probes of frozen features (the
    final layer's, and the best layer's on validation), 250 and 1,000 training examples and full
    data (the tier's seeds, beside the floors; at full data the random-init and floor runs are the
    models study's). Listed cheapest and most telling first: a stopped command leaves the probes
    and the 250-example pairs."""
    pretrained = (f"init_from={init_from}",)
    inits = {"plantbimoe": (), "plantbimoe-pretrained": pretrained}
    models = {
        "probe-random-init": Model("probe", ("task.run_label=probe-random-init",), (1,)),
        "probe-pretrained": Model("probe", (*pretrained, "task.run_label=probe-pretrained"), (1,)),
    }
    for name, extra in (("probe-random-init", ()), ("probe-pretrained", pretrained)):  # layer chosen on val
        label = f"task.run_label={name}-layers"
        models[f"{name}-layers"] = Model("probe", (*extra, "+probe_layers=all", label), (1,))
    for n in LOW_DATA_SIZES:
        size = (f"data.max_train_samples={n}",)
        for name, extra in inits.items():
            models[f"{name}-n{n}"] = Model("train", (*extra, *size, f"task.run_label={name}-n{n}"))
        models[f"kmer+positional-n{n}"] = Model("kmer", (*MODELS["kmer+positional"].overrides, *size))
        models[f"cnn-n{n}"] = Model("train", ("backbone=cnn", *size, f"task.run_label=cnn-n{n}"))
        if n == LOW_DATA_SIZES[0]:
            label = "task.run_label=plantbimoe-pretrained"
            models["plantbimoe-pretrained"] = Model("train", (*pretrained, label))
            for shared in ("plantbimoe", "kmer+positional", "cnn"):  # full data: the models study's runs
                floor = MODELS[shared]
                models[shared] = Model(floor.runner, floor.overrides, shared_with="models")
    return models


STUDIES = {"models": MODELS, "pooling": POOLING_STUDY, "pretraining": pretraining_study()}
# quick: one seed on capped splits, to see in minutes that everything runs and roughly where it lands
TIERS = {
    "full": {"seeds": (1, 2, 3), "overrides": ()},
    "quick": {
        "seeds": (1,),
        "overrides": (
            "data.max_train_samples=1500",
            "data.max_val_samples=200",
            "data.max_test_samples=500",
            "trainer.max_steps=120",
            "trainer.val_check_interval=40",
        ),
    },
}


@dataclass(frozen=True)
class Run:
    """One (task, model, seed) of a table: where it runs, its command, and the Hydra overrides
    in that command (what its recipe digest is composed from)."""

    task: str
    model: str
    seed: int
    folder: Path
    command: tuple[str, ...]
    overrides: tuple[str, ...] = ()


def study_out(study: str, tier: str) -> Path:
    """The default output folder of a study and tier."""
    name = "reports/finetune_arabidopsis" + (f"_{study}" if study != "models" else "")
    return ROOT / (name + ("_quick" if tier == "quick" else ""))


def plan(
    out: Path,
    tasks: Sequence[str],
    models: dict[str, Model],
    seeds: Sequence[int] | None,
    overrides: Sequence[str],
    tier: str = "full",
    share: bool = True,
) -> list[Run]:
    """Every (task, model, seed) run with its folder and command line, seed by seed (a stopped
    benchmark leaves whole seeds of the table rather than some tasks with every seed). `seeds`
    None means the tier's, which a model's own `seeds` replace; named seeds apply to every model.
    With `share` false (another output folder or extra overrides) every run lives under `out`."""
    named = seeds is not None
    seeds = tuple(seeds) if named else TIERS[tier]["seeds"]
    runs = []
    for seed in seeds:
        for task in tasks:
            for name, model in models.items():
                own = model.seeds if model.seeds and not named else seeds
                if seed not in own:
                    continue
                root = study_out(model.shared_with, tier) if model.shared_with and share else out
                folder = root / "runs" / task / name / f"seed{seed}"
                entry = ENTRY_POINTS[model.runner]
                pinned = (TRAIN_PRECISION,) if model.runner == "train" else ()
                args = (
                    "experiment=finetune_arabidopsis",
                    f"data/mpgb=embedded/tair10_{task}",
                    f"seed={seed}",
                    f"hydra.run.dir={_relative(folder)}",
                    *pinned,
                    *model.overrides,
                    *overrides,
                )
                runs.append(Run(task, name, seed, folder, (sys.executable, *entry, *args), args))
    return runs


def _relative(folder: Path) -> str:
    """`folder` relative to the repository (the runs' working directory) when it lies inside it."""
    return os.path.relpath(folder, ROOT) if folder.is_relative_to(ROOT) else str(folder)


def recorded_recipe(run: Run) -> str | None:
    """The recipe digest a finished run recorded in its timing.json (None: none recorded)."""
    timing = run.folder / TIMING_FILE
    return json.loads(timing.read_text()).get("recipe") if timing.is_file() else None


def outdated(recorded: str | None, digest: str) -> bool:
    """True when a finished run recorded a recipe other than `digest` (runs finished before runs
    recorded theirs count as current)."""
    return recorded is not None and recorded != digest


def is_current(run: Run, digest: str) -> bool:
    """True when `run` finished with recipe `digest`, or finished before runs recorded theirs."""
    return (run.folder / RESULTS_FILE).is_file() and not outdated(recorded_recipe(run), digest)


def execute(run: Run, threads: int, digest: str) -> bool:
    """Run one job (fresh folder, output in run.log, wall time and recipe `digest` in
    timing.json); True on success.

    A run finished meanwhile with this recipe (by another invocation) is kept, and one that
    another invocation is running (it holds the run's lock file) is left to it: two benchmark
    commands never collide."""
    run.folder.parent.mkdir(parents=True, exist_ok=True)
    with open(run.folder.parent / f".{run.folder.name}.lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("%s / %s / seed %d: running in another invocation", run.task, run.model, run.seed)
            return True
        if is_current(run, digest):
            return True
        return _execute(run, threads, digest)


def _execute(run: Run, threads: int, digest: str) -> bool:
    if run.folder.exists():
        shutil.rmtree(run.folder)  # unfinished, or finished with another recipe: start from nothing
    run.folder.mkdir(parents=True)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "HYDRA_FULL_ERROR": "1"}
    start = time.perf_counter()
    with open(run.folder / "run.log", "w") as handle:
        code = subprocess.call(run.command, stdout=handle, stderr=subprocess.STDOUT, cwd=ROOT, env=env)
    wall = time.perf_counter() - start
    if code != 0 or not (run.folder / RESULTS_FILE).is_file():
        log.error("%s / %s / seed %d failed (exit %d): see %s", run.task, run.model, run.seed, code,
                  run.folder / "run.log")
        return False
    timing = {"wall_seconds": round(wall, 1), "threads": threads, "command": list(run.command[1:]),
              "recipe": digest}
    atomic_write_text(run.folder / TIMING_FILE, json.dumps(timing, indent=2) + "\n")
    log.info("%s / %s / seed %d done in %.0f s", run.task, run.model, run.seed, wall)
    return True


def run_all(runs: list[Run], jobs: int) -> int:
    """Run what has no results.json yet, or has one from another recipe (a changed config or
    retrained init weights: tasks.recipe), `jobs` at a time; returns the number of failed runs."""
    digests = {run.folder: recipe_digest(run.overrides) for run in runs}
    finished_runs = [r for r in runs if (r.folder / RESULTS_FILE).is_file()]
    recorded = {r.folder: recorded_recipe(r) for r in finished_runs}
    todo = [r for r in runs if r.folder not in recorded or outdated(recorded[r.folder], digests[r.folder])]
    for r in todo:
        if r.folder in recorded:
            log.warning("%s / %s / seed %d: finished with another recipe (%s, now %s); running it again",
                        r.task, r.model, r.seed, recorded[r.folder], digests[r.folder])
    unknown = sum(1 for r in finished_runs if recorded[r.folder] is None)
    if unknown:
        log.info("%d finished runs recorded no recipe (made before runs did) and are kept", unknown)
    log.info("%d runs planned, %d already done, %d to run (%d at a time)",
             len(runs), len(runs) - len(todo), len(todo), jobs)
    threads = max(1, usable_cores() // jobs)
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        ok = list(pool.map(lambda r: execute(r, threads, digests[r.folder]), todo))
    return ok.count(False)


def record_recipes(runs: list[Run]) -> int:
    """Write today's recipe digest into the timing.json of each finished run of `runs` that
    recorded none; returns how many."""
    count = 0
    for run in runs:
        if (run.folder / RESULTS_FILE).is_file() and recorded_recipe(run) is None:
            timing = run.folder / TIMING_FILE
            values = json.loads(timing.read_text()) if timing.is_file() else {}
            values["recipe"] = recipe_digest(run.overrides)
            atomic_write_text(timing, json.dumps(values, indent=2) + "\n")
            count += 1
    return count


def split_stale(runs: list[Run], planned: list[Run]) -> tuple[list[Run], list[Run]]:
    """(runs to report, stale runs): a finished run of `planned` whose recorded recipe digest is
    not today's (a changed config or retrained init weights) is stale until it reruns; runs that
    recorded no digest, or lie outside the plan (other options), are reported."""
    overrides = {run.folder: run.overrides for run in planned}
    current, stale = [], []
    for run in runs:
        planned_run = run.folder in overrides
        old = planned_run and outdated(recorded_recipe(run), recipe_digest(overrides[run.folder]))
        (stale if old else current).append(run)
    return current, stale


def stale_note(stale: list[Run]) -> str:
    """One Markdown line naming the runs left out of a report because their recipe changed."""
    if not stale:
        return ""
    by_model: dict[tuple[str, str], list[int]] = {}
    for run in stale:
        by_model.setdefault((run.task, run.model), []).append(run.seed)
    names = "; ".join(f"{task} / {model} (seed {', '.join(map(str, seeds))})"
                      for (task, model), seeds in by_model.items())
    return (f"Left out until the benchmark command reruns them ({len(stale)} runs made with an earlier "
            f"recipe: another config or other init weights): {names}.\n")


def finished(out: Path, models: Sequence[str]) -> list[Run]:
    """Every finished run under `out` (any task, model or seed, including those of earlier
    invocations with other options), tasks in TASKS order, then `models` order, then seed."""
    found = []
    for results in out.glob(f"runs/*/*/seed*/{RESULTS_FILE}"):
        folder = results.parent
        task, model, seed = folder.parent.parent.name, folder.parent.name, int(folder.name[4:])
        found.append(Run(task, model, seed, folder, ()))
    return in_table_order(found, models)


def in_table_order(runs: list[Run], models: Sequence[str]) -> list[Run]:
    """`runs` in TASKS order, then `models` order, then seed."""
    rank = {name: i for i, name in enumerate(models)}
    task_rank = {name: i for i, name in enumerate(TASKS)}
    return sorted(runs, key=lambda r: (task_rank.get(r.task, len(TASKS)), r.task,
                                       rank.get(r.model, len(rank)), r.model, r.seed))


def full_training_cap(tier: str) -> int:
    """The training-set cap of a tier's full-data runs (the quick tier's, else the experiment's)."""
    for override in TIERS[tier]["overrides"]:
        if override.startswith("data.max_train_samples="):
            return int(override.split("=", 1)[1])
    experiment = yaml.safe_load((ROOT / "conf/experiment/finetune_arabidopsis.yaml").read_text())
    return int(experiment["data"]["max_train_samples"])


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tier", choices=sorted(TIERS), default="full")
    parser.add_argument("--study", choices=sorted(STUDIES), default="models",
                        help="models: our recipe and the floors; pooling: one PlantBiMoE run per pooling; "
                             "pretraining: pretrained vs random init (full, low-data, linear probe)")
    parser.add_argument("--out", default=None, help="default: reports/finetune_arabidopsis[_<study>][_quick]")
    parser.add_argument("--init-from", default=PRETRAINED,
                        help=f"pretraining study: the pretrained model (default: the shipped {PRETRAINED})")
    parser.add_argument("--tasks", nargs="+", choices=TASKS, default=list(TASKS))
    parser.add_argument("--models", nargs="+", default=None, help="a subset of the study's models")
    parser.add_argument("--seeds", nargs="+", type=int, default=None,
                        help="default: the tier's (the probes: seed 1); named seeds apply to every model")
    parser.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE",
                        help="extra Hydra overrides for every run (after the tier's)")
    parser.add_argument("--jobs", type=int, default=1,
                        help="runs at a time (each gets usable cores / jobs threads)")
    parser.add_argument("--docs", default=None, help="also replace the report block in this Markdown file")
    parser.add_argument("--report-only", action="store_true", help="write the report from finished runs")
    parser.add_argument("--record-recipes", action="store_true",
                        help="record today's recipe digest for the selected finished runs that recorded "
                             "none (runs made before digests were kept, once you know they used today's "
                             "recipe), so that a later recipe change reruns them; runs nothing")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Command line: plan, run what is missing, write the report."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    study = pretraining_study(args.init_from) if args.study == "pretraining" else STUDIES[args.study]
    models = dict(study)
    if args.models:
        unknown = sorted(set(args.models) - set(models))
        if unknown:
            raise SystemExit(f"unknown model(s) {unknown} in --study {args.study}: allowed {sorted(models)}")
        models = {name: models[name] for name in args.models}
    tier = TIERS[args.tier]
    out = Path(args.out).resolve() if args.out else study_out(args.study, args.tier)
    overrides = [*tier["overrides"], *args.set]
    share = args.out is None and not args.set
    runs = plan(out, args.tasks, models, args.seeds, overrides, args.tier, share)
    if args.record_recipes:
        print(f"recorded today's recipe for {record_recipes(runs)} finished run(s)")
        return 0
    failed = 0 if args.report_only else run_all(runs, max(1, args.jobs))
    title = f"{args.study} study, {args.tier} tier"
    docs = Path(args.docs) if args.docs else None
    # the report covers the whole study, whichever models and seeds this invocation ran
    every = plan(out, TASKS, study, None, overrides, args.tier, share)
    shared = [r for r in every if not r.folder.is_relative_to(out) and (r.folder / RESULTS_FILE).is_file()]
    report, stale = split_stale(in_table_order(finished(out, list(study)) + shared, list(study)), every)
    if stale:
        log.warning("%d finished runs used an earlier recipe and are left out of the report until rerun",
                    len(stale))
    curve = full_training_cap(args.tier) if args.study == "pretraining" else None
    key = f"benchmark:{args.study}:{args.tier}"
    for path in write_report(out, report, title, docs, key, curve, stale_note(stale)):
        print(f"wrote {path}")
    if failed:
        print(f"{failed} run(s) failed: see their run.log; run again to retry them", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
