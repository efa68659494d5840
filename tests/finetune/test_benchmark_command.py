"""`python -m tasks.benchmark` end to end on a tiny cap: every model of the table runs as its own
process, writes results.json and timing.json, the report (Markdown, CSV, PNG, docs block) follows,
and a second invocation skips the finished runs."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from datamodules.annotation_bench import ensure_benchmark
from tasks.benchmark import MODELS, main
from tasks.benchmark_report import replace_block

MAX_PER_CLASS = 40


@pytest.mark.slow
def test_benchmark_runs_models_and_floors_then_resumes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = tmp_path / "data"
    ensure_benchmark(data / "bench" / "arabidopsis_thaliana", max_per_class=MAX_PER_CLASS)
    out, doc = tmp_path / "report", tmp_path / "results.md"
    doc.write_text("# Results\n\nkept text\n")
    args = [
        "--out", str(out), "--tasks", "splice_donor", "--seeds", "1", "--jobs", "2", "--docs", str(doc),
        "--set", f"paths.data_dir={data}", f"+data.prepare.max_per_class={MAX_PER_CLASS}",
        "trainer.max_steps=2", "trainer.val_check_interval=2", "data.batch_size=8",
        "callbacks.progress_bar=null",
    ]
    assert main(args) == 0
    runs = out / "runs" / "splice_donor"
    assert sorted(p.name for p in runs.iterdir()) == sorted(MODELS)
    for model in MODELS:
        assert (runs / model / "seed1" / "results.json").is_file()
        assert (runs / model / "seed1" / "timing.json").is_file()
    with open(out / "results.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(r["model"] for r in rows) == sorted(MODELS)
    assert all(0.0 <= float(r["mean"]) <= 1.0 and r["metric"] == "auroc" for r in rows)
    assert (out / "results.png").stat().st_size > 0
    text = doc.read_text()
    assert text.startswith("# Results\n\nkept text\n") and "| splice_donor | auroc | cnn | 1 |" in text
    assert "strongest floor" in text

    caplog.clear()
    with caplog.at_level("INFO"):
        assert main(args) == 0
    assert "4 already done, 0 to run" in caplog.text
    assert doc.read_text().count("benchmark:models:full:start") == 1  # the block is replaced, not added


def test_replace_block_inserts_then_replaces(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    replace_block(doc, "k", "one\n")
    replace_block(doc, "other", "two\n")
    replace_block(doc, "k", "three\n")
    expected = "<!-- k:start -->\nthree\n<!-- k:end -->\n\n<!-- other:start -->\ntwo\n<!-- other:end -->\n"
    assert doc.read_text() == expected


def test_unknown_model_names_the_allowed_ones() -> None:
    with pytest.raises(SystemExit, match="allowed"):
        main(["--models", "transformer", "--report-only"])


def test_execute_leaves_runs_of_another_invocation_alone(tmp_path: Path) -> None:
    """A run finished by another invocation after this one planned it is kept, and one that another
    invocation holds the lock of is skipped (neither is started again)."""
    import fcntl

    from tasks.benchmark import Run, execute

    folder = tmp_path / "runs" / "splice_donor" / "cnn" / "seed1"
    folder.mkdir(parents=True)
    (folder / "results.json").write_text("{}")
    never = ("false",)  # a command that would fail if it were run
    assert execute(Run("splice_donor", "cnn", 1, folder, never), threads=1, digest="any")
    assert (folder / "results.json").read_text() == "{}"
    busy = tmp_path / "runs" / "splice_donor" / "kmer" / "seed1"
    busy.parent.mkdir(parents=True)
    with open(busy.parent / ".seed1.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        assert execute(Run("splice_donor", "kmer", 1, busy, never), threads=1, digest="any")
    assert not busy.exists()


def test_a_run_finished_with_another_recipe_runs_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """run_all reruns a finished run whose recorded recipe digest differs from today's, keeps one
    with today's digest and one that recorded none (made before runs recorded theirs)."""
    import json
    import sys

    from tasks.benchmark import Run, run_all
    from tasks.recipe import recipe_digest

    overrides = ("experiment=finetune_arabidopsis", "data/mpgb=embedded/tair10_splice_donor", "seed=1")
    digest = recipe_digest(overrides)
    runs = []
    for name, recorded in (("current", digest), ("stale", "0" * 16), ("unrecorded", None)):
        folder = tmp_path / "runs" / "splice_donor" / name / "seed1"
        folder.mkdir(parents=True)
        (folder / "results.json").write_text('{"old": true}')
        if recorded:
            (folder / "timing.json").write_text(json.dumps({"recipe": recorded}))
        write = f"open({str(folder / 'results.json')!r}, 'w').write('{{}}')"
        runs.append(Run("splice_donor", name, 1, folder, (sys.executable, "-c", write), overrides))
    with caplog.at_level("INFO"):
        assert run_all(runs, jobs=1) == 0
    assert "3 runs planned, 2 already done, 1 to run" in caplog.text
    assert "stale / seed 1: finished with another recipe" in caplog.text
    assert "1 finished runs recorded no recipe" in caplog.text
    current, stale, unrecorded = (r.folder for r in runs)
    for kept in (current, unrecorded):
        assert (kept / "results.json").read_text() == '{"old": true}'
    assert (stale / "results.json").read_text() == "{}"
    assert json.loads((stale / "timing.json").read_text())["recipe"] == digest

    from tasks.benchmark import record_recipes

    assert record_recipes(runs) == 1  # the unrecorded run; a later recipe change now reruns it
    assert json.loads((unrecorded / "timing.json").read_text())["recipe"] == digest
    assert record_recipes(runs) == 0


def test_the_report_leaves_out_runs_of_an_earlier_recipe_and_names_them(tmp_path: Path) -> None:
    import json

    from tasks.benchmark import Run, split_stale, stale_note
    from tasks.recipe import recipe_digest

    overrides = ("experiment=finetune_arabidopsis", "data/mpgb=embedded/tair10_splice_donor", "seed=1")
    runs = []
    for name, recorded in (("current", recipe_digest(overrides)), ("stale", "0" * 16), ("unrecorded", None),
                           ("unplanned", "1" * 16)):
        folder = tmp_path / "runs" / "splice_donor" / name / "seed1"
        folder.mkdir(parents=True)
        if recorded:
            (folder / "timing.json").write_text(json.dumps({"recipe": recorded}))
        runs.append(Run("splice_donor", name, 1, folder, (), overrides))
    current, stale = split_stale(runs, planned=runs[:3])
    assert [r.model for r in current] == ["current", "unrecorded", "unplanned"]
    assert [r.model for r in stale] == ["stale"]
    assert "1 runs made with an earlier recipe" in stale_note(stale)
    assert "splice_donor / stale (seed 1)" in stale_note(stale) and stale_note([]) == ""


def test_the_recipe_digest_follows_the_config_and_the_init_weights(tmp_path: Path) -> None:
    """Output folders, data paths and speed switches leave the digest alone; a recipe entry or
    the content of the init weights changes it."""
    from tasks.recipe import recipe_digest

    base = ["experiment=finetune_arabidopsis", "data/mpgb=embedded/tair10_lncrna", "seed=1"]
    digest = recipe_digest(base)
    assert recipe_digest([*base, "hydra.run.dir=elsewhere", f"paths.data_dir={tmp_path}"]) == digest
    assert recipe_digest([*base, "compile=true"]) == digest  # a speed switch, not a recipe
    assert recipe_digest([*base, "trainer.max_steps=300"]) != digest
    # an option added later, at the value that reproduces the behaviour from before it existed
    assert recipe_digest([*base, "~task.head_warmup_steps"]) == digest
    assert recipe_digest([*base, "task.head_warmup_steps=100"]) != digest
    weights = tmp_path / "init.ckpt"
    weights.write_bytes(b"one")
    first = recipe_digest([*base, f"init_from={weights}"])
    weights.write_bytes(b"second")  # another size too: the digest cache keys on size and mtime
    assert recipe_digest([*base, f"init_from={weights}"]) not in (first, digest)
